"""HeatmapUNet (decoder stops at the heatmap resolution) vs the starter design, side by side.

The starter design (the challenge baseline's shape) uses the same encoder but decodes all the way to
the input resolution, applies the head there and resizes the heatmaps bilinearly to 64×64.
Both models take 256×256 images and give 64×64 heatmaps of 3 keypoints. Measured in one run:
parameters, forward FLOPs (``torch.utils.flop_counter.FlopCounterMode``), CPU latency at batch 1
and 8 (eager and channels_last; ``--compile`` adds ``torch.compile``), the machine's peak fp32
GFLOP/s (best of several 2048×2048 matmuls) and the fraction of it each model reaches. Timings of
the two models are interleaved (A, B, A, B, ...) so that noise hits both alike.

Usage::

    python benchmarks/bench_model.py --quick
    python benchmarks/bench_model.py            # more repetitions
    python benchmarks/bench_model.py --compile  # also torch.compile (slow to compile)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from sslkeypoint.encoders import UNetEncoder
from sslkeypoint.models import HeatmapUNet

INPUT = 256
HEATMAP = 64
KEYPOINTS = 3


class StarterUNet(nn.Module):
    """Same encoder, decoder to full resolution, head there, bilinear resize to the heatmap size."""

    def __init__(self, encoder: nn.Module, num_keypoints: int, out_size: int) -> None:
        super().__init__()
        self.net = HeatmapUNet(encoder, num_keypoints, heatmap_stride=1)
        self.out_size = out_size

    def forward(self, x: Tensor) -> Tensor:
        y = self.net(x)
        return F.interpolate(y, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def peak_gflops(n: int = 2048, repeats: int = 6) -> dict[str, float]:
    """Best-of-``repeats`` GFLOP/s of an ``n``×``n``×``n`` fp32 matmul, through two backends.

    ``torch.mm`` goes to the BLAS (MKL, which may take a slower path on non-Intel CPUs); the same
    product written as a 1×1 convolution over ``n`` pixels goes to oneDNN, the library that runs the
    models' convolutions. The peak is the better of the two.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    x = torch.randn(1, n, 32, n // 32).contiguous(memory_format=torch.channels_last)
    w = torch.randn(n, n, 1, 1)
    out = {}
    for name, fn in {"blas_mm": lambda: torch.mm(a, b), "onednn_matmul": lambda: F.conv2d(x, w)}.items():
        fn()
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        out[name] = 2 * n**3 / best / 1e9
    out["peak"] = max(out.values())
    return out


def count_flops(model: nn.Module, x: Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


def time_interleaved(
    fns: dict[str, Callable[[], object]], warmup: int, repeats: int
) -> dict[str, list[float]]:
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "model.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder = UNetEncoder(in_chans=1)  # the paper's widths; shared by both designs
    models: dict[str, nn.Module] = {
        "HeatmapUNet": HeatmapUNet(encoder, KEYPOINTS, heatmap_stride=INPUT // HEATMAP).eval(),
        "starter": StarterUNet(encoder, KEYPOINTS, HEATMAP).eval(),
    }
    x1 = torch.rand(1, 1, INPUT, INPUT)
    info: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        with torch.inference_mode():
            assert model(x1).shape == (1, KEYPOINTS, HEATMAP, HEATMAP)
        info[name] = {
            "params": sum(p.numel() for p in model.parameters()),
            "gflop_per_image": count_flops(model, x1) / 1e9,
        }

    peaks = peak_gflops()
    # The oneDNN matmul is also timed inside every round, next to the models, so that the peak is
    # taken under the same load as the models (the machines are shared).
    n = 2048
    xm = torch.randn(1, n, 32, n // 32).contiguous(memory_format=torch.channels_last)
    wm = torch.randn(n, n, 1, 1)
    in_run_best = float("inf")
    layouts = ["eager", "channels_last"] + (["compile"] if args.compile else [])
    batches = [1, 8]
    reps = {1: (1, 3), 8: (0, 2)} if args.quick else {1: (2, 7), 8: (1, 4)}
    rows: list[dict[str, Any]] = []
    for layout in layouts:
        runners: dict[str, nn.Module] = {}
        for name, model in models.items():
            if layout == "channels_last":
                model = model.to(memory_format=torch.channels_last)
            elif layout == "compile":
                model = model.to(memory_format=torch.contiguous_format)
                model = torch.compile(model)  # type: ignore[assignment]
            else:
                model = model.to(memory_format=torch.contiguous_format)
            runners[name] = model
        for batch in batches:
            x = torch.rand(batch, 1, INPUT, INPUT)
            if layout == "channels_last":
                x = x.contiguous(memory_format=torch.channels_last)

            def make(m: nn.Module, x: Tensor = x) -> Callable[[], object]:
                def run() -> object:
                    with torch.inference_mode():
                        return m(x)

                return run

            warmup, repeats = reps[batch]
            if layout == "compile":
                warmup = max(warmup, 1)
            fns = {name: make(m) for name, m in runners.items()}
            fns["_peak"] = lambda: F.conv2d(xm, wm)
            times = time_interleaved(fns, warmup, repeats)
            in_run_best = min(in_run_best, *times.pop("_peak"))
            for name, ts in times.items():
                best = min(ts)
                gflops = info[name]["gflop_per_image"] * batch / best
                rows.append(
                    {
                        "model": name,
                        "layout": layout,
                        "batch": batch,
                        "best_s": best,
                        "median_s": statistics.median(ts),
                        "repeats": len(ts),
                        "gflop_per_s": gflops,
                    }
                )
    peaks["onednn_matmul_in_run"] = 2 * n**3 / in_run_best / 1e9
    peaks["peak"] = peak = max(peaks.values())
    for r in rows:
        r["fraction_of_peak"] = r["gflop_per_s"] / peak

    def lookup(model: str, layout: str, batch: int) -> dict[str, Any]:
        return next(r for r in rows if (r["model"], r["layout"], r["batch"]) == (model, layout, batch))

    speedups = {
        f"{layout}_b{b}": lookup("starter", layout, b)["best_s"] / lookup("HeatmapUNet", layout, b)["best_s"]
        for layout in layouts
        for b in batches
    }
    flop_ratio = info["starter"]["gflop_per_image"] / info["HeatmapUNet"]["gflop_per_image"]
    default_best = max((r for r in rows if r["model"] == "HeatmapUNet"), key=lambda r: r["fraction_of_peak"])

    cpu = cpu_name()
    print(f"CPU: {cpu}, {args.threads} threads, torch {torch.__version__}; input {INPUT}x{INPUT}x1, "
          f"heatmaps {KEYPOINTS}x{HEATMAP}x{HEATMAP}")
    print(f"peak fp32 2048^3 matmul: {peak:.1f} GFLOP/s (BLAS mm {peaks['blas_mm']:.1f}, "
          f"oneDNN {peaks['onednn_matmul']:.1f}, oneDNN between model runs "
          f"{peaks['onednn_matmul_in_run']:.1f})")
    print(f"{'model':<12} {'params':>10} {'GFLOP/img':>10}")
    for name, d in info.items():
        print(f"{name:<12} {d['params'] / 1e6:>9.2f}M {d['gflop_per_image']:>10.2f}")
    print(f"\n{'model':<12} {'layout':<14} {'batch':>5} {'best ms':>9} {'median ms':>10} {'GFLOP/s':>8} {'% peak':>7}")
    for r in rows:
        print(f"{r['model']:<12} {r['layout']:<14} {r['batch']:>5} {r['best_s'] * 1e3:>9.1f} "
              f"{r['median_s'] * 1e3:>10.1f} {r['gflop_per_s']:>8.1f} {100 * r['fraction_of_peak']:>6.1f}%")
    print(f"\nFLOPs ratio starter / HeatmapUNet: {flop_ratio:.2f}x")
    for key, s in speedups.items():
        print(f"speed-up of HeatmapUNet over starter ({key}): {s:.2f}x")
    print(f"HeatmapUNet best fraction of peak: {100 * default_best['fraction_of_peak']:.1f}% "
          f"({default_best['layout']}, batch {default_best['batch']})")

    result = {
        "hardware": {"cpu": cpu, "threads": args.threads, "torch": torch.__version__},
        "quick": args.quick,
        "input_size": [INPUT, INPUT],
        "heatmap_size": [HEATMAP, HEATMAP],
        "peak_gflop_per_s": peaks,
        "models": info,
        "timings": rows,
        "flop_ratio_starter_over_heatmapunet": flop_ratio,
        "speedup_heatmapunet_over_starter": speedups,
        "heatmapunet_best_fraction_of_peak": default_best["fraction_of_peak"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

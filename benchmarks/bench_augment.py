"""MoCo v2 view augmentation: batched kornia pipeline vs lightly's per-sample MoCoV2Transform.

Both produce two augmented views per image from the same random 256×256 8-bit images, on the CPU
with 2 threads:

* ``sslkeypoint`` — :func:`sslkeypoint.augment.moco_v2_augmentation` called twice on a float
  ``(B, C, 256, 256)`` batch in ``[0, 1]`` (what a collated batch looks like);
* ``lightly`` — ``lightly.transforms.MoCoV2Transform(normalize=None)`` called on one PIL image at a
  time, as a DataLoader would in the main process, then the views stacked into two ``(B, C, s, s)``
  tensors (what ``default_collate`` does).

Decoding is excluded from both. Besides wall-clock throughput (what a training loop sees) the
run records process CPU time per image, a steadier measure of work on a loaded machine (the
batched pipeline may use both threads; PIL works on one). Two input kinds: 1-channel images (lightly gets PIL mode ``"L"``,
which it accepts and keeps at one channel; sslkeypoint runs ``in_chans=1``) and 3-channel images
(PIL ``"RGB"`` with three equal channels vs ``in_chans=3``). Timings alternate between the two
pipelines and report medians, and the ratio is the median of per-round ratios (the machine is
shared and noisy).

Usage::

    python benchmarks/bench_augment.py            # full run
    python benchmarks/bench_augment.py --quick    # short run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from _common import cpu_model
from lightly.transforms import MoCoV2Transform
from PIL import Image

from sslkeypoint.augment import moco_v2_augmentation

RESULTS = Path(__file__).parent / "results" / "augment.json"


def run_case(mode: str, batch: int, size: int, crop: int, rounds: int) -> dict[str, Any]:
    """Time both pipelines on ``batch`` images of PIL ``mode`` (``"L"`` or ``"RGB"``)."""
    in_chans = 1 if mode == "L" else 3
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (batch, size, size), dtype=np.uint8)
    arrays = gray if mode == "L" else np.repeat(gray[..., None], 3, axis=-1)
    pil_images = [Image.fromarray(a, mode) for a in arrays]
    tensor = torch.from_numpy(arrays).float().div_(255.0)
    tensor = tensor[:, None] if mode == "L" else tensor.permute(0, 3, 1, 2).contiguous()

    lightly_tf = MoCoV2Transform(input_size=crop, normalize=None)
    ours = moco_v2_augmentation(crop, in_chans=in_chans)

    def run_lightly() -> tuple[torch.Tensor, torch.Tensor]:
        # normalize=None still ends in ToTensor: every view is a (C, crop, crop) tensor
        views = [cast(list[torch.Tensor], lightly_tf(img)) for img in pil_images]
        return torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])

    def run_ours() -> tuple[torch.Tensor, torch.Tensor]:
        return ours(tensor), ours(tensor)

    def timed(fn: Any) -> tuple[float, Any]:
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    def cpu_timed(fn: Any) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - wall, time.process_time() - cpu

    # warm-up (and a shape check: both give two (B, C, crop, crop) views)
    _, (l1, _) = timed(run_lightly)
    _, (o1, _) = timed(run_ours)
    assert tuple(l1.shape) == tuple(o1.shape) == (batch, in_chans, crop, crop), (l1.shape, o1.shape)

    t_lightly, t_ours, ratios, cpu_lightly, cpu_ours = [], [], [], [], []
    for _ in range(rounds):
        tl, cl = cpu_timed(run_lightly)
        to, co = cpu_timed(run_ours)
        t_lightly.append(tl)
        t_ours.append(to)
        cpu_lightly.append(cl)
        cpu_ours.append(co)
        ratios.append(tl / to)
    med_l, med_o = statistics.median(t_lightly), statistics.median(t_ours)
    return {
        "input": f"{in_chans}-channel {size}x{size} uint8",
        "lightly_fed": f"PIL mode {mode!r}",
        "sslkeypoint_in_chans": in_chans,
        "batch": batch,
        "crop": crop,
        "rounds": rounds,
        "lightly_images_per_s": batch / med_l,
        "sslkeypoint_images_per_s": batch / med_o,
        "lightly_ms_per_batch": 1000 * med_l,
        "sslkeypoint_ms_per_batch": 1000 * med_o,
        "speedup_median_of_rounds": statistics.median(ratios),
        "speedup_min_round": min(ratios),
        "speedup_max_round": max(ratios),
        "lightly_cpu_ms_per_image": 1000 * statistics.median(cpu_lightly) / batch,
        "sslkeypoint_cpu_ms_per_image": 1000 * statistics.median(cpu_ours) / batch,
        "cpu_time_ratio": statistics.median(cpu_lightly) / statistics.median(cpu_ours),
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument(
        "--batch", type=int, default=None, help="images per batch (64; 32 with --quick)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (7; 3 with --quick)")
    parser.add_argument("--size", type=int, default=256, help="input side in px")
    parser.add_argument("--crop", type=int, default=224, help="output view side in px")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON output file")
    args = parser.parse_args()
    batch = args.batch or (32 if args.quick else 64)
    rounds = args.rounds or (3 if args.quick else 7)

    torch.set_num_threads(2)
    torch.manual_seed(0)
    cases = [run_case(mode, batch, args.size, args.crop, rounds) for mode in ("L", "RGB")]

    header = (
        f"{'input':<26} {'lightly img/s':>13} {'sslkeypoint img/s':>17} {'speedup':>8} {'(range)':>11} "
        f"{'CPU-time ratio':>14}"
    )
    print(f"MoCo v2 two views per image, CPU {cpu_model()}, 2 threads")
    print(header)
    print("-" * len(header))
    for c in cases:
        rng = f"{c['speedup_min_round']:.2f}-{c['speedup_max_round']:.2f}"
        print(
            f"{c['input']:<26} {c['lightly_images_per_s']:>13.0f} {c['sslkeypoint_images_per_s']:>17.0f} "
            f"{c['speedup_median_of_rounds']:>7.2f}x {rng:>11} {c['cpu_time_ratio']:>13.2f}x"
        )
    print(
        f"load average (1 min) during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    result = {
        "benchmark": "augment",
        "description": "MoCo v2 two-view augmentation, batched kornia (sslkeypoint) vs per-sample lightly",
        "quick": args.quick,
        "hardware": {"cpu": cpu_model(), "torch_threads": torch.get_num_threads()},
        "versions": {
            "torch": torch.__version__,
            "kornia": version("kornia"),
            "lightly": version("lightly"),
        },
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""How much pre-training does two-stage SSL need before it helps the IUGC U-Net?

A one-seed scan around the example's ``quick`` profile on its synthetic IUGC-format data (120
labelled training images, 12 unlabelled videos of 12 frames, 30 validation images). Each scan
point changes the pre-training only: stage-1 epochs, stage-2 epochs, MoCo queue, input size, and
the stage-1 key momentum, temperature and crop scale — every one a field of the profile's
:class:`~sslkeypoint.configs.PretrainConfig` (``profile.pretrain``, ``profile.pretrain_temporal``;
the input size also of ``profile.finetune``), changed with :func:`dataclasses.replace`
(:func:`point_profile`). Each point runs the example's own stage functions:
:func:`iugc_aop.stages.stage_pretrain`, :func:`~iugc_aop.stages.stage_select`,
:func:`~iugc_aop.stages.stage_pretrain_temporal`, then :func:`~iugc_aop.stages.stage_finetune`
of ``unet`` (random init) and ``ssl_unet`` (from the stage-2 encoder) at two label budgets (the
demo's 60 and 10) with the profile's fine-tuning recipe, and
:func:`~iugc_aop.stages.stage_evaluate` on the **Validation** split only (the Testing split is
never looked at here, so the scan can be used to choose a profile).

Recorded per point: final InfoNCE loss of both stages against chance (``ln(queue + 1)``), the
screening's precision/recall against the synthetic truth
(:func:`iugc_aop.formats.truth.screening_scores`; a free signal of what the stage-1 features
see), pre-training seconds, and Validation MRE (512-px pixels) / AoP MAE of ``unet`` and
``ssl_unet`` with their difference.

Usage (one process per core, each single-threaded; then collect)::

    python benchmarks/bench_ssl_scan.py --points s1_5 s1_60 &
    python benchmarks/bench_ssl_scan.py --points s1_30 s1_30_q64 &
    wait; python benchmarks/bench_ssl_scan.py --collect

A trial run away from the committed results::

    python benchmarks/bench_ssl_scan.py --points s1_5 --work runs/scan
    python benchmarks/bench_ssl_scan.py --collect --work runs/scan --json runs/ssl_scan.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from _common import cpu_model

from iugc_aop.demo import prepare_demo_data
from iugc_aop.formats.truth import load_truth, screening_scores
from iugc_aop.profiles import Profile, get_profile
from iugc_aop.stages import (
    stage_evaluate,
    stage_finetune,
    stage_pretrain,
    stage_pretrain_temporal,
    stage_select,
)

ROOT = Path(__file__).resolve().parent
BUDGETS = (60, 10)

#: Scan points: changes to the ``quick`` profile's MoCo v2 settings (stage-1 epochs, stage-2 epochs,
#: queue, input; ``moco``: fields of the stage-1 :class:`~sslkeypoint.methods.MoCoV2Method`, or
#: ``augment`` of its :class:`~sslkeypoint.configs.PretrainConfig`). The method is the example's
#: ``moco`` pre-training throughout: a scan of its settings, not of methods.
POINTS: dict[str, dict[str, Any]] = {
    "s1_5": {"s1_epochs": 5},
    "s1_30": {"s1_epochs": 30},
    "s1_60": {"s1_epochs": 60},
    "s1_30_q64": {"s1_epochs": 30, "queue": 64},
    "s1_30_s2_20": {"s1_epochs": 30, "s2_epochs": 20},
    "s1_30_in128": {"s1_epochs": 30, "input": 128},
    "s1_30_m99": {"s1_epochs": 30, "moco": {"momentum": 0.99}},
    "s1_30_crop50": {"s1_epochs": 30, "moco": {"augment": {"scale": (0.5, 1.0)}}},
    "s1_30_t01": {"s1_epochs": 30, "moco": {"temperature": 0.1}},
    "s1_60_m99": {"s1_epochs": 60, "moco": {"momentum": 0.99}},
}


def _quiet() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def point_profile(base: Profile, spec: dict[str, Any]) -> Profile:
    """The ``quick`` profile with one scan point's changes.

    ``s1_epochs`` / ``s2_epochs`` set the stages' ``max_epochs``; ``queue`` the stage-1 queue (and
    stage 2's, where smaller); ``moco`` holds further stage-1 method fields (``momentum``,
    ``temperature``) or its ``augment``; ``input`` the network input of every stage (the heatmap
    keeps its stride). Each point has its own run folder, and the stage fingerprints hold the whole
    configs.
    """
    s1, s2, ft = base.pretrain, base.pretrain_temporal, base.finetune
    moco = dict(spec.get("moco", {}))
    augment = moco.pop("augment", None)
    m1 = dataclasses.replace(s1.method, queue_size=spec.get("queue", s1.method.queue_size), **moco)
    m2 = dataclasses.replace(s2.method, queue_size=min(spec.get("queue", s2.method.queue_size), s2.method.queue_size))
    s1 = dataclasses.replace(s1, max_epochs=spec.get("s1_epochs", s1.max_epochs), method=m1,
                             **({"augment": augment} if augment is not None else {}))
    s2 = dataclasses.replace(s2, max_epochs=spec.get("s2_epochs", s2.max_epochs), method=m2)
    if "input" in spec:
        n = int(spec["input"])
        stride = ft.heatmap_stride
        s1 = dataclasses.replace(s1, image_size=(n, n))
        s2 = dataclasses.replace(s2, image_size=(n, n))
        ft = dataclasses.replace(ft, input_size=(n, n), heatmap_size=(n // stride, n // stride))
    return base.with_overrides(pretrain=s1, pretrain_temporal=s2, finetune=ft)


def _val(res: Any) -> dict[str, float]:
    m = res.metrics["validation"]
    return {"mre_px": float(m["mre_px"]), "aop_mae_deg": float(m["aop_mae_deg"])}


def run_point(name: str, work: Path, root: Path, progress: bool) -> dict[str, Any]:
    """Pre-train, screen, fine-tune and evaluate (Validation) one scan point."""
    spec = POINTS[name]
    profile = point_profile(get_profile("quick"), spec)
    run = work / name
    trainer = dataclasses.replace(profile.trainer, accelerator="cpu", devices=1)
    kw: dict[str, Any] = {"progress": progress}
    t0 = time.perf_counter()
    s1 = stage_pretrain(root, run, profile, trainer=trainer, **kw)
    sel = stage_select(root, run, profile, **kw)
    s2 = stage_pretrain_temporal(root, run, profile, trainer=trainer, **kw)
    pre_seconds = time.perf_counter() - t0
    truth = load_truth(root)
    scores = screening_scores(truth, sel.names, sel.kept) if truth is not None else {}
    # unet depends only on the input size: share it between points of one size.
    base_run = work / f"unet_in{profile.input_size[0]}"
    out: dict[str, Any] = {
        "spec": spec,
        "stage1": {"epochs": profile.pretrain.max_epochs, "steps": s1.global_step, "final_loss": s1.final_loss,
                   "queue": s1.queue_size, "chance": math.log(s1.queue_size + 1), "seconds": s1.seconds},
        "stage2": {"epochs": profile.pretrain_temporal.max_epochs, "steps": s2.global_step, "final_loss": s2.final_loss,
                   "queue": s2.queue_size, "chance": math.log(s2.queue_size + 1), "seconds": s2.seconds},
        "screening": {"kept": len(sel.kept), "of": len(sel.names), "precision": scores.get("precision"),
                      "recall": scores.get("recall")},
        "pretrain_seconds": pre_seconds,
        "validation": {},
    }
    for budget in BUDGETS:
        row: dict[str, Any] = {}
        for variant, folder in (("unet", base_run), ("ssl_unet", run)):
            label = f"{variant}_b{budget}"
            stage_finetune(variant, root, folder, profile, label_budget=budget, name=label, trainer=trainer, **kw)
            ev = stage_evaluate(variant, root, folder, profile, splits=("validation",), name=label, **kw)
            row[variant] = _val(ev)
        row["d_mre_px"] = row["ssl_unet"]["mre_px"] - row["unet"]["mre_px"]
        row["d_aop_deg"] = row["ssl_unet"]["aop_mae_deg"] - row["unet"]["aop_mae_deg"]
        out["validation"][str(budget)] = row
    out["seconds"] = time.perf_counter() - t0
    (run / "scan_point.json").write_text(json.dumps(out, indent=2, default=str))
    return out


def table(points: dict[str, Any]) -> str:
    lines = [
        "Validation split (30 images), 512-px pixels, seed 0; Δ = ssl_unet − unet (negative = SSL better); "
        "loss = last stage-1/2 epoch's InfoNCE vs chance ln(queue + 1); pre-train seconds are wall time "
        "with other scan processes sharing the cores",
        "",
        "| point | stage 1 loss / chance | stage 2 loss / chance | screening P/R | pre-train s | "
        + " | ".join(f"{b} labels: unet / ssl MRE, Δ MRE, Δ AoP" for b in BUDGETS) + " |",
        "|---|---|---|---|---:|" + "---|" * len(BUDGETS),
    ]
    for name, p in points.items():
        s1, s2, sc = p["stage1"], p["stage2"], p["screening"]
        cells = [
            f"{name}", f"{s1['final_loss']:.2f} / {s1['chance']:.2f} ({s1['steps']} steps)",
            f"{s2['final_loss']:.2f} / {s2['chance']:.2f} ({s2['steps']} steps)",
            f"{sc['precision']:.2f} / {sc['recall']:.2f}" if sc["precision"] is not None else "–",
            f"{p['pretrain_seconds']:.0f}",
        ]
        for b in BUDGETS:
            v = p["validation"][str(b)]
            cells.append(f"{v['unet']['mre_px']:.2f} / {v['ssl_unet']['mre_px']:.2f}, {v['d_mre_px']:+.2f}, "
                         f"{v['d_aop_deg']:+.2f}°")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--points", nargs="+", choices=sorted(POINTS), default=None,
                   help="scan points to run (default: all, one after the other)")
    p.add_argument("--collect", action="store_true", help="only gather finished points into the table/JSON")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    p.add_argument("--work", type=Path, default=Path("runs/bench_ssl_scan"), help="working folder (resumes)")
    p.add_argument("--json", type=Path, default=ROOT / "results" / "ssl_scan.json",
                   help="JSON output (default: %(default)s; give another path for trial runs)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(argv)
    _quiet()
    torch.set_num_threads(args.threads)
    root = prepare_demo_data(args.work, get_profile("quick"), seed=0, progress=not args.no_progress)
    if not args.collect:
        for name in args.points or list(POINTS):
            t = time.perf_counter()
            res = run_point(name, args.work, root, progress=not args.no_progress)
            print(f"{name}: {time.perf_counter() - t:.0f} s  {json.dumps(res['validation'])}", flush=True)
    points = {}
    for name in POINTS:
        f = args.work / name / "scan_point.json"
        if f.is_file():
            points[name] = json.loads(f.read_text())
    text = table(points)
    result = {"benchmark": "ssl_scan", "hardware": {"cpu": cpu_model(), "threads": args.threads,
                                                    "torch": torch.__version__},
              "split": "validation", "seed": 0, "budgets": list(BUDGETS),
              "base_profile": get_profile("quick").to_dict(), "points": points, "table": text}
    if args.collect or args.points is None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

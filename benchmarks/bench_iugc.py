"""Does two-stage SSL help the IUGC landmark U-Net, and at which label budgets?

On synthetic IUGC-format data (:mod:`iugc_aop.synth`, the ``quick`` profile's size: 120 labelled
training images, 12 unlabelled videos of 12 frames, 60 testing images), for each seed:

1. stage 1 — MoCo v2 on every unlabelled frame plus the training images without their labels;
2. screening — sequences scored against the ``ExampleN.jpg`` references with the stage-1 encoder
   (the profile's cut), the kept ones used by
3. stage 2 — MoCo v2 on adjacent frames, from the stage-1 encoder; and, for the ablation, stage 2
   on *all* sequences (no screening);
4. stage 3 — heatmap fine-tuning at each label budget (the first ``N`` images of a seeded
   permutation of the training set, nested across budgets, 8:2 train/validation as in the paper),
   from four starting points: random init (``unet``), stage 1 + screened stage 2 (``ssl_unet``),
   stage 1 + stage 2 on all sequences (``ssl_no_screening``) and stage 1 only
   (``ssl_stage1_only``).

Stages 1–2 and the screening are the example's own stage functions
(:func:`iugc_aop.stages.stage_pretrain`, :func:`~iugc_aop.stages.stage_select`,
:func:`~iugc_aop.stages.stage_pretrain_temporal`), run once per seed and shared by every
budget; the screening is scored against the synthetic truth with
:func:`iugc_aop.formats.truth.screening_scores`. Fine-tuning calls
:func:`sslkeypoint.recipes.run_finetuning` directly, with the ``unet`` variant's config
(:func:`iugc_aop.variants.finetune_config`: exact codec, DARK decoding) and only the encoder
initialisation changed, so that every run gets the same number of optimiser steps (``--steps``;
no early stopping, constant learning rate) with a validation every ``--eval-every`` steps (the
training part of a small budget is repeated to make an epoch that long) and the checkpoint with
the best validation MRE kept: budgets and variants differ only in data and initialisation.
Metrics are on the Testing split, in original (512-px) pixels, from
:func:`iugc_aop.stages.evaluate_records`: MRE and AoP MAE, mean ± std over seeds, with the
per-seed values in the JSON.

The pre-training and fine-tuning settings come from the example's ``quick`` profile
(:mod:`iugc_aop.profiles`: 96-px input, 24-px heatmaps, U-Net widths 8–64 + 128, five MoCo
epochs per pre-training stage, fine-tuning Adam 3e-3); every stage runs on one CPU
(:class:`sslkeypoint.configs.TrainerConfig`). ``benchmarks/bench_ssl_scan.py`` scans
the pre-training settings (epochs, queue, momentum, temperature, crop scale, input size) on the
Validation split.

Usage::

    python benchmarks/bench_iugc.py                 # 3 seeds, budgets 10 30 100 (~30 min, 2 cores)
    python benchmarks/bench_iugc.py --quick         # 1 seed, budgets 10 30, short runs (minutes)
    python benchmarks/bench_iugc.py --seeds 5 --budgets 10 30 60 100 --steps 500
    python benchmarks/bench_iugc.py --quick --work runs/bench_iugc --json runs/iugc.json
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import platform
import statistics
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
    evaluate_records,
    labelled_subset,
    load_dataset,
    stage_pretrain,
    stage_pretrain_temporal,
    stage_select,
)
from iugc_aop.variants import VARIANTS as MODEL_VARIANTS
from iugc_aop.variants import finetune_config, make_codec
from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.data import KeypointRecord, split_records
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.recipes import run_finetuning

ROOT = Path(__file__).resolve().parent
#: Every starting point is fine-tuned as the example's ``unet`` variant (U-Net, exact codec).
FINETUNE_VARIANT = MODEL_VARIANTS["unet"]
#: Fine-tuning starting points, in table order.
VARIANTS: tuple[str, ...] = ("unet", "ssl_unet", "ssl_no_screening", "ssl_stage1_only")
DESCRIPTIONS = {
    "unet": "U-Net, random init (no SSL)",
    "ssl_unet": "stage 1 + stage 2 on screened sequences",
    "ssl_no_screening": "stage 1 + stage 2 on all sequences",
    "ssl_stage1_only": "stage 1 only",
}


def _quiet() -> None:
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*")
    warnings.filterwarnings("ignore", category=FutureWarning)


def _profile(quick: bool) -> Profile:
    """The ``quick`` profile; with ``--quick``, two epochs per pre-training stage."""
    profile = get_profile("quick")
    if quick:
        profile = profile.with_overrides(
            pretrain=dataclasses.replace(profile.pretrain, max_epochs=2),
            pretrain_temporal=dataclasses.replace(profile.pretrain_temporal, max_epochs=2),
        )
    return profile


def _trainers(profile: Profile) -> tuple[TrainerConfig, TrainerConfig]:
    """Where the stages run: the profile's trainer on one CPU, for pre-training and for fine-tuning.

    Fine-tuning is deterministic (repeatable on a CPU), logs every 5 steps and skips the sanity
    validation.
    """
    pretrain = dataclasses.replace(profile.trainer, accelerator="cpu", devices=1, num_workers=0)
    finetune = dataclasses.replace(pretrain, deterministic=True, log_every_n_steps=5, num_sanity_val_steps=0)
    return pretrain, finetune


def _stage(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a stage, resuming; a stage folder left by other settings is recomputed.

    The stage cache removes only a folder that a stage made (it holds the stage's marker); any
    other error is raised.
    """
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        if "other settings" not in str(err):
            raise
        print(f"{err} -- recomputing", flush=True)
        return fn(*args, force=True, **kwargs)


def _split(subset: list[KeypointRecord], profile: Profile, seed: int, batch: int,
           eval_every: int) -> tuple[list[KeypointRecord], list[KeypointRecord]]:
    """8:2 split of a budget; the training part repeated so an epoch is ~``eval_every`` steps.

    Validation (and the best-checkpoint choice) then happens every ~``eval_every`` steps at every
    budget, instead of after every step at the smallest one.
    """
    train, val = split_records(subset, val_fraction=profile.finetune.val_fraction, seed=seed)
    reps = max(1, round(eval_every * batch / len(train)))
    return list(train) * reps, list(val)


def _finetune_config(profile: Profile, seed: int, init: Path | None) -> FinetuneConfig:
    """The ``unet`` variant's config from ``init``, trained for a step budget at a constant learning rate."""
    return dataclasses.replace(
        finetune_config(FINETUNE_VARIANT, profile, init_encoder=init, seed=seed),
        max_epochs=100_000,  # the step budget decides
        early_stopping_patience=1_000_000,  # no early stopping: every run gets the same steps
        lr_patience=1_000_000,  # constant learning rate (plateau epochs differ across budgets)
    )


def _evaluate(checkpoint: Path, records: list[KeypointRecord]) -> dict[str, float]:
    """Testing MRE (512-px pixels) and AoP MAE (degrees) of a checkpoint."""
    predictor = KeypointPredictor.from_checkpoint(checkpoint, device="cpu", batch_size=16)
    m, _ = evaluate_records(predictor, records, progress=False)
    return {"mre_px": float(m["mre_px"]), "aop_mae_deg": float(m["aop_mae_deg"])}


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else 0.0)


def run(args: argparse.Namespace) -> dict[str, Any]:
    _quiet()
    torch.set_num_threads(args.threads)
    profile = _profile(args.quick)
    trainer, finetune_trainer = _trainers(profile)
    work = Path(args.work) / ("quick" if args.quick else "default")
    work.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    t0 = time.perf_counter()
    root = prepare_demo_data(work, profile, seed=0, progress=progress)
    ds = load_dataset(root)
    truth = load_truth(root)
    train, testing = list(ds.train), list(ds.testing)
    if max(args.budgets) > len(train):
        raise SystemExit(f"budget {max(args.budgets)} exceeds the {len(train)} labelled training images")
    frames = sum(len(seq) for seq in ds.sequences.values())
    print(f"data: {len(train)} labelled training images, {len(ds.sequences)} sequences "
          f"({frames} frames), {len(ds.references)} references, {len(testing)} testing images "
          f"[{time.perf_counter() - t0:.0f} s]", flush=True)

    runs: list[dict[str, Any]] = []
    pretraining: dict[str, Any] = {}
    for seed in range(args.seeds):
        sdir = work / f"seed{seed}"
        kw: dict[str, Any] = {"progress": progress, "trainer": trainer}
        s1 = _stage(stage_pretrain, root, sdir, profile, seed=seed, **kw)
        sel = _stage(stage_select, root, sdir, profile, encoder_path=s1.encoder_path, progress=progress)
        scores = screening_scores(truth, sel.names, sel.kept) if truth is not None else {}
        precision, recall = scores.get("precision"), scores.get("recall")
        s2 = _stage(stage_pretrain_temporal, root, sdir, profile, sequences="selected", seed=seed, **kw)
        s2all = _stage(stage_pretrain_temporal, root, sdir, profile, sequences="all", seed=seed,
                       name="stage2_all", **kw)
        pretraining[str(seed)] = {
            "stage1": {"steps": s1.global_step, "seconds": s1.seconds, "final_loss": s1.final_loss},
            "screening": {"kept": sel.kept, "of": len(sel.names), "threshold": sel.threshold,
                          "precision": precision, "recall": recall},
            "stage2": {"steps": s2.global_step, "seconds": s2.seconds, "final_loss": s2.final_loss},
            "stage2_all": {"steps": s2all.global_step, "seconds": s2all.seconds,
                           "final_loss": s2all.final_loss},
        }
        print(f"seed {seed}: stage 1 {s1.global_step} steps ({s1.seconds:.0f} s); screening kept "
              f"{len(sel.kept)}/{len(sel.names)} (precision {precision}, recall {recall}); "
              f"stage 2 {s2.global_step} steps ({s2.seconds:.0f} s), on all sequences "
              f"{s2all.global_step} steps ({s2all.seconds:.0f} s)", flush=True)
        inits = {"unet": None, "ssl_unet": s2.encoder_path, "ssl_no_screening": s2all.encoder_path,
                 "ssl_stage1_only": s1.encoder_path}
        for budget in args.budgets:
            subset = labelled_subset(train, budget, seed)
            pair = _split(subset, profile, seed, profile.finetune.batch_size, args.eval_every)
            for variant in VARIANTS:
                t = time.perf_counter()
                init = inits[variant]
                # The folder names the encoder it starts from: a re-computed pre-training never
                # resumes a fine-tuning run of the old one.
                tag = "random" if init is None else hashlib.sha256(Path(init).read_bytes()).hexdigest()[:10]
                config = _finetune_config(profile, seed, init)
                folder = sdir / f"b{budget}_steps{args.steps}_val{args.eval_every}" / f"{variant}-{tag}"
                res = run_finetuning(config, pair, folder, trainer=finetune_trainer,
                                     codec=make_codec(FINETUNE_VARIANT, config), max_steps=args.steps,
                                     progress=False)
                if res.best_checkpoint is None:
                    raise RuntimeError(f"fine-tuning {variant} (seed {seed}, budget {budget}) wrote no checkpoint")
                metrics = _evaluate(res.best_checkpoint, testing)
                seconds = time.perf_counter() - t
                runs.append({"seed": seed, "budget": budget, "variant": variant, **metrics,
                             "val_mre_px": res.best_metrics.get("val/mre_px"), "best_epoch": res.best_epoch,
                             "steps": res.global_step, "seconds": seconds})
                print(f"  seed {seed} budget {budget:>3} {variant:<17} MRE {metrics['mre_px']:6.2f} px  "
                      f"AoP {metrics['aop_mae_deg']:5.2f} deg  ({res.global_step} steps, {seconds:.0f} s)",
                      flush=True)

    summary: dict[str, Any] = {}
    for budget in args.budgets:
        for variant in VARIANTS:
            rows = [r for r in runs if r["budget"] == budget and r["variant"] == variant]
            mre = _mean_std([r["mre_px"] for r in rows])
            aop = _mean_std([r["aop_mae_deg"] for r in rows])
            summary[f"{variant}@{budget}"] = {"variant": variant, "budget": budget, "mre_px_mean": mre[0],
                                              "mre_px_std": mre[1], "aop_mae_deg_mean": aop[0],
                                              "aop_mae_deg_std": aop[1], "seeds": len(rows)}
    # Paired differences (ssl variant minus unet, same seed and budget): the SSL effect itself.
    effects: dict[str, Any] = {}
    for budget in args.budgets:
        for variant in VARIANTS[1:]:
            d_mre, d_aop = [], []
            for seed in range(args.seeds):
                base = next(r for r in runs if (r["seed"], r["budget"], r["variant"]) == (seed, budget, "unet"))
                other = next(r for r in runs if (r["seed"], r["budget"], r["variant"]) == (seed, budget, variant))
                d_mre.append(other["mre_px"] - base["mre_px"])
                d_aop.append(other["aop_mae_deg"] - base["aop_mae_deg"])
            m, a = _mean_std(d_mre), _mean_std(d_aop)
            effects[f"{variant}@{budget}"] = {"d_mre_px_mean": m[0], "d_mre_px_std": m[1],
                                              "d_aop_deg_mean": a[0], "d_aop_deg_std": a[1],
                                              "wins": sum(d < 0 for d in d_mre), "seeds": args.seeds}
    return {
        "benchmark": "iugc_ssl",
        "hardware": {"cpu": cpu_model(), "threads": args.threads, "python": platform.python_version(),
                     "torch": torch.__version__},
        "settings": {"quick": args.quick, "seeds": args.seeds, "budgets": list(args.budgets),
                     "finetune_steps": args.steps, "profile": profile.to_dict(),
                     "data": {"train": len(train), "sequences": len(ds.sequences), "frames": frames,
                              "testing": len(testing)}},
        "variants": DESCRIPTIONS,
        "pretraining": pretraining,
        "runs": runs,
        "summary": summary,
        "ssl_effect_vs_unet": effects,
        "total_seconds": time.perf_counter() - t0,
    }


def table(result: dict[str, Any]) -> str:
    """Markdown table: one row per (budget, variant), mean ± std over seeds, paired Δ vs unet."""
    seeds = result["settings"]["seeds"]
    lines = [
        f"Testing split, 512-px pixels; mean ± std over {seeds} seed(s); "
        f"{result['settings']['finetune_steps']} fine-tuning steps per run; Δ = paired difference to "
        "`unet` (negative = better), wins = seeds where the variant beats `unet` on MRE",
        "",
        "| labels | variant | MRE (px) | AoP MAE (°) | Δ MRE (px) | Δ AoP (°) | wins |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for budget in result["settings"]["budgets"]:
        for variant in VARIANTS:
            s = result["summary"][f"{variant}@{budget}"]
            row = (f"| {budget} | {variant} | {s['mre_px_mean']:.2f} ± {s['mre_px_std']:.2f} | "
                   f"{s['aop_mae_deg_mean']:.2f} ± {s['aop_mae_deg_std']:.2f} |")
            if variant == "unet":
                row += " – | – | – |"
            else:
                e = result["ssl_effect_vs_unet"][f"{variant}@{budget}"]
                row += (f" {e['d_mre_px_mean']:+.2f} ± {e['d_mre_px_std']:.2f} | "
                        f"{e['d_aop_deg_mean']:+.2f} ± {e['d_aop_deg_std']:.2f} | {e['wins']}/{e['seeds']} |")
            lines.append(row)
    hw = result["hardware"]
    lines += ["", f"total {result['total_seconds'] / 60:.1f} min on {hw['cpu']} ({hw['threads']} threads)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="1 seed, budgets 10 and 30, 2 pre-training epochs per stage, 40 fine-tuning steps")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default 3; --quick 1)")
    p.add_argument("--budgets", type=int, nargs="+", default=None,
                   help="labelled-image budgets (default 10 30 100; --quick 10 30)")
    p.add_argument("--steps", type=int, default=None,
                   help="fine-tuning optimiser steps per run (default 300; --quick 40)")
    p.add_argument("--eval-every", type=int, default=20,
                   help="fine-tuning steps between validations (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: %(default)s; on a shared 2-core machine one thread "
                   "per process was 3x faster than two)")
    p.add_argument("--work", type=Path, default=Path("runs/bench_iugc"),
                   help="working folder for data and runs (default: %(default)s; runs resume)")
    p.add_argument("--json", type=Path, default=ROOT / "results" / "iugc.json",
                   help="JSON output (default: %(default)s; give another path for trial runs)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(argv)
    args.seeds = args.seeds if args.seeds is not None else (1 if args.quick else 3)
    args.budgets = sorted(args.budgets if args.budgets is not None else ([10, 30] if args.quick else [10, 30, 100]))
    args.steps = args.steps if args.steps is not None else (40 if args.quick else 300)
    if min(args.budgets) < 5:
        p.error("budgets must be >= 5 (the 8:2 split needs a validation image)")
    result = run(args)
    text = table(result)
    result["table"] = text
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print()
    print(text)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

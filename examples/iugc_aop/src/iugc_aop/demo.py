"""The whole pipeline in one call: data, stage 1, screening, stage 2, every variant, the submission, the report."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from iugc_aop.formats.truth import load_truth, screening_scores
from iugc_aop.profiles import Profile, get_profile
from iugc_aop.report import write_report
from iugc_aop.stages import (
    EvaluationResult,
    FinetuneStageResult,
    choose_labelled,
    load_dataset,
    stage_evaluate,
    stage_finetune,
    stage_pretrain,
    stage_pretrain_temporal,
    stage_select,
)
from iugc_aop.stages.cache import fingerprint
from iugc_aop.stages.common import PathLike, data_is_real, say
from iugc_aop.submission import evaluate_submission, export_submission
from iugc_aop.synth import SynthConfig, holds_synthetic_iugc, write_synthetic_iugc
from iugc_aop.variants import DEMO_VARIANTS, get_pretraining, get_variant
from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.configs import TrainerConfig
from sslkeypoint.data import file_digest, records_fingerprint

__all__ = ["DemoResult", "prepare_demo_data", "run_demo", "threads_for_load", "variant_line"]


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes:
        out_dir: The demo folder.
        data_root: The data used.
        report: ``report.md``.
        metrics_json: ``metrics.json`` (variant → Testing metrics).
        submission_dir: The challenge folder of the profile's recommended variant,
            ``out_dir/submission`` (``None`` when that variant was not run); every variant's is in
            ``out_dir/submissions/<variant>``.
        headline: Variant → ``{"mre_px", "aop_mae_deg"}`` on Testing.
        stage_seconds: Stage → wall seconds.
        seconds: Total wall time.
        load: ``os.getloadavg()`` at the start and at the end.
        verdict: The report's statement on whether SSL helps in this run.
    """

    out_dir: Path
    data_root: Path
    report: Path
    metrics_json: Path
    submission_dir: Path | None
    headline: dict[str, dict[str, float]]
    stage_seconds: dict[str, float]
    seconds: float
    load: dict[str, list[float]] = field(default_factory=dict)
    verdict: str = ""


def prepare_demo_data(out_dir: PathLike, profile: Profile | str, seed: int = 0, progress: bool = True) -> Path:
    """Write (once) the profile's synthetic IUGC-format data set to ``out_dir/data``.

    Data already there is reused when its ``synthetic_truth.json`` records the same settings and
    seed; a folder ``out_dir/data`` that is not such a data set is never written into.

    Raises:
        iugc_aop.synth.SyntheticFolderError: If ``out_dir/data`` holds files but no synthetic data
            set of this pipeline (a ``ValueError``).
    """
    profile = get_profile(profile)
    root = Path(out_dir) / "data"
    config = SynthConfig.preset(profile.synthetic_size, **profile.synthetic_overrides)
    if holds_synthetic_iugc(root, config, seed):
        return root
    say(f"writing synthetic IUGC-format data ({profile.synthetic_size} {profile.synthetic_overrides or ''}, "
        f"seed {seed}) to {root}")
    write_synthetic_iugc(root, config, seed=seed, progress=progress, workers=max(1, min(2, os.cpu_count() or 1)))
    return root


def _submission_stage(variant: str, checkpoint: Path, submission_dir: Path, out: Path, root: Path,
                      force: bool, progress: bool = True) -> dict[str, Any]:
    """Export a variant's challenge folder and score it on Testing (skipped when done)."""
    tag = submission_dir.resolve().relative_to(out.resolve()).as_posix().replace("/", "_")
    marker = out / "eval" / f"{tag}_testing.json"
    testing = load_dataset(root, ("testing",)).testing
    key = fingerprint([file_digest(checkpoint), records_fingerprint(testing)])
    if not force and marker.is_file() and (submission_dir / "model.py").is_file():
        try:
            saved = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable (edited by hand, or cut short by an older version): redone
            saved = None
        if isinstance(saved, dict) and saved.get("fingerprint") == key and "metrics" in saved:
            return dict(saved["metrics"])
    export_submission(checkpoint, submission_dir, metadata={"variant": variant})
    metrics = dict(evaluate_submission(submission_dir, testing, progress=progress))
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, json.dumps({"fingerprint": key, "variant": variant, "checkpoint": str(checkpoint),
                                  "metrics": metrics}, indent=2, default=str))
    return metrics


def threads_for_load(current: int, cores: int, load: float) -> int:
    """Intra-op threads for torch on a machine that other jobs keep busy: the cores they leave free.

    Threads that wait on each other for a busy core make every step slower, not faster (a demo of
    4 minutes on two quiet cores took 46 beside other jobs). Never more than ``current``.

    Examples:
        >>> threads_for_load(current=2, cores=2, load=0.1), threads_for_load(current=2, cores=2, load=1.6)
        (2, 1)
        >>> threads_for_load(current=8, cores=16, load=12.0)
        4
    """
    free = max(1, cores - round(load))
    return max(1, min(current, free))


def variant_line(number: int, total: int, name: str, result: EvaluationResult, seconds: float) -> str:
    """One line for a finished variant: its error on the evaluation split(s) and its time.

    Examples:
        >>> from pathlib import Path
        >>> r = EvaluationResult("unet", Path("c"), {"testing": {"mre_px": 9.04, "aop_mae_deg": 8.92}}, {}, 3.0,
        ...                      Path("e"))
        >>> variant_line(2, 3, "unet", r, 95.4)
        'variant 2/3 unet: testing MRE 9.04 px, AoP error 8.92° (95 s)'
    """
    parts = [f"{split} MRE {m['mre_px']:.2f} px, AoP error "
             + (f"{m['aop_mae_deg']:.2f}°" if math.isfinite(m["aop_mae_deg"]) else "undefined (no predicted angle)")
             for split, m in result.metrics.items() if "mre_px" in m and "aop_mae_deg" in m]
    reused = ", reused" if result.skipped else ""
    return f"variant {number}/{total} {name}: {'; '.join(parts) or 'no evaluation split'} ({seconds:.0f} s{reused})"


def run_demo(
    out_dir: PathLike,
    profile: Profile | str = "quick",
    data_root: PathLike | None = None,
    *,
    seed: int | None = None,
    variants: Sequence[str] | None = None,
    label_budget: int | Literal["profile"] | None = "profile",
    select: str | None = None,
    force: bool = False,
    progress: bool = True,
    trainer: TrainerConfig | None = None,
) -> DemoResult:
    """Run everything: data, stage 1, screening, stage 2, every variant, the submissions, the report.

    Data without unlabelled sequences (PSFHS) have no screening and no stage 2: the SSL variants
    start from the stage-1 encoder, and the report says so. Real data (PSFHS, or an IUGC folder not
    written by :mod:`iugc_aop.synth`) use the profile's real-image settings
    (:data:`~iugc_aop.profiles.REAL_PROFILES`) when it has them.

    Args:
        out_dir: Demo folder. Holds ``data/`` (synthetic data, when ``data_root`` is not given),
            the stage folders, ``submissions/<variant>/`` (a challenge folder for every variant),
            ``submission/`` (the profile's recommended variant), ``report.md``, ``metrics.json``
            and ``figures/``.
        profile: Profile or its name.
        data_root: An IUGC or PSFHS folder to use instead of synthetic data.
        seed: Seed of the data and every stage (default: the profile's).
        variants: Variants to train and report (default: the profile's, else
            :data:`~iugc_aop.variants.DEMO_VARIANTS`, and the profile's recommended variant).
        label_budget: Labelled training cases used by fine-tuning (``"profile"``: the profile's;
            ``None``: all).
        select: How the labelled cases are chosen (:data:`~iugc_aop.stages.SELECTIONS`; default:
            the profile's): every variant trains on the same cases.
        force: Re-run stages that are already done.
        progress: Progress bars.
        trainer: Where the training stages run (default: the profile's).

    Returns:
        A :class:`DemoResult`.
    """
    t0 = time.perf_counter()
    load_start = list(os.getloadavg())
    threads = threads_for_load(torch.get_num_threads(), os.cpu_count() or 1, load_start[0])
    if threads < torch.get_num_threads():
        say(f"the machine is busy (load {load_start[0]:.1f} on {os.cpu_count()} cores): torch uses {threads} "
            f"thread(s) instead of {torch.get_num_threads()}; expect the run to take longer than on a quiet machine")
        torch.set_num_threads(threads)
    real = data_root is not None and data_is_real(data_root)
    profile = get_profile(profile, real=real)
    if label_budget != "profile":
        profile = profile.with_overrides(label_budget=label_budget)
    seed = profile.seed if seed is None else seed
    if variants is None:
        variants = list(dict.fromkeys([*(profile.variants or DEMO_VARIANTS), profile.recommended]))
    out = Path(out_dir)
    if data_root is not None:  # one clear error naming what is missing, before anything is written
        load_dataset(data_root)
    out.mkdir(parents=True, exist_ok=True)
    say(profile.describe())
    times: dict[str, float] = {}
    cpu_times: dict[str, float] = {}

    def timed(key: str, fn: Any, *a: Any, **kw: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        res = fn(*a, **kw)
        times[key] = round(time.perf_counter() - t, 2)
        cpu_times[key] = round(time.process_time() - c, 2)
        return res

    root = Path(data_root) if data_root is not None else timed("data", prepare_demo_data, out, profile, seed, progress)
    load_dataset(root)  # the whole layout up front: one clear error if anything is missing
    common: dict[str, Any] = {"force": force, "progress": progress}
    training: dict[str, Any] = {"seed": seed, "trainer": trainer, **common}
    has_sequences = bool(load_dataset(root, ("unlabeled",)).sequences)
    pretrainings = list(dict.fromkeys(p for p in (get_variant(v).pretraining for v in variants) if p is not None))
    if has_sequences and "moco" not in pretrainings:
        pretrainings.insert(0, "moco")  # the MoCo v2 stage 1 also gives the screening its features
    pretrain = [timed(get_pretraining(p).folder, stage_pretrain, root, out, profile, pretraining=p, **training)
                for p in pretrainings]
    sel = None
    selection_truth = None
    if has_sequences:
        sel = timed("select", stage_select, root, out, profile, **common)
        pretrain.append(timed("stage2", stage_pretrain_temporal, root, out, profile, **training))
        truth = load_truth(root)
        selection_truth = screening_scores(truth, sel.names, sel.kept) if truth is not None else None
    else:
        say("no unlabelled sequences in the data: no screening and no stage 2; the SSL variants start "
            "from the stage-1 encoder")
    select = select or profile.select
    labels = timed("labels", choose_labelled, root, out, profile, profile.label_budget, strategy=select, seed=seed,
                   **common)
    say(f"labelled cases: {len(labels.records)} ({labels.strategy}), from {labels.groups} similarity groups")
    fts: dict[str, FinetuneStageResult] = {}
    evals: dict[str, EvaluationResult] = {}
    for number, name in enumerate(variants, start=1):
        fts[name] = timed(f"finetune {name}", stage_finetune, name, root, out, profile,
                          labelled_cases=labels.records, **training)
        evals[name] = timed(f"evaluate {name}", stage_evaluate, name, root, out, profile, **common)
        say(variant_line(number, len(variants), name, evals[name], times[f"finetune {name}"] + times[f"evaluate {name}"]))
    submission_dir: Path | None = None
    submissions: dict[str, dict[str, Any]] = {}
    t = time.perf_counter()
    for name, ft in fts.items():
        submissions[name] = _submission_stage(name, ft.checkpoint, out / "submissions" / name, out, root, force,
                                              progress)
    recommended = profile.recommended if profile.recommended in fts else None
    if recommended is not None:
        submission_dir = out / "submission"
        _submission_stage(recommended, fts[recommended].checkpoint, submission_dir, out, root, force, progress)
    times["submissions"] = round(time.perf_counter() - t, 2)
    times["total before report"] = round(time.perf_counter() - t0, 2)
    load_end = list(os.getloadavg())
    report = write_report(
        out, profile, root, evals, finetunes=fts, pretrain=pretrain, selection=sel, selection_truth=selection_truth,
        submissions=submissions, recommended=recommended, stage_seconds=times, stage_cpu_seconds=cpu_times,
        labels=labels,
        load={"start": load_start, "end": load_end}, seed=seed,
    )
    seconds = time.perf_counter() - t0
    times["total"] = round(seconds, 2)
    headline = {k: {"mre_px": v["mre_px"], "aop_mae_deg": v["aop_mae_deg"]} for k, v in report.metrics.items()}
    write_text_atomic(out / "run.json", json.dumps({
        "data_root": str(root), "profile": profile.to_dict(), "seed": seed, "stage_seconds": times,
        "selection_truth": selection_truth, "load": {"start": load_start, "end": load_end},
        "cpu_count": os.cpu_count(),
    }, indent=2))
    return DemoResult(out, root, report.report, report.metrics_json, submission_dir, headline, times, seconds,
                      {"start": load_start, "end": load_end}, report.verdict)

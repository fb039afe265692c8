"""The three-stage pipeline of the IUGC example, as plain resumable stage functions.

Every stage takes the data root (a real IUGC 2025 folder or a synthetic one), a run folder and a
:class:`~iugc_aop.profiles.Profile`, writes its outputs under the run folder, skips work already
done (a finished stage leaves ``stage.json``; an interrupted training run resumes from its
``last.ckpt``) and returns a small result dataclass:

* :func:`stage_pretrain` — stage 1, MoCo v2 on unlabelled frames and training images
  (``RUN/stage1/``);
* :func:`stage_select` — screening of the sequences against the ``ExampleN.jpg`` references
  (``RUN/select/``);
* :func:`stage_pretrain_temporal` — stage 2, MoCo v2 on adjacent frames of the kept sequences
  (``RUN/stage2/``);
* :func:`stage_finetune` — stage 3, heatmap fine-tuning of one :data:`VARIANTS` entry
  (``RUN/finetune/<variant>/``);
* :func:`stage_evaluate` — Validation and Testing metrics and per-image predictions
  (``RUN/eval/<variant>/``);
* :func:`run_demo` — all of the above, the challenge submission and the report
  (``RUN/report.md``, ``RUN/metrics.json``, ``RUN/figures/``, ``RUN/submission/``).

The variants of the report (:data:`VARIANTS`):

* ``resnet_unet`` — a timm ResNet encoder (randomly initialised: no weights can be downloaded) in
  the same :class:`~sslkeypoint.models.HeatmapUNet`, exact codec;
* ``unet_starter`` — the U-Net without SSL, trained and decoded with the IUGC starter's codec
  (:class:`iugc_aop.starter.StarterCodec`: truncated Gaussian centres, argmax, ``x/W`` scaling);
* ``unet`` — the U-Net without SSL, exact codec (:class:`~sslkeypoint.heatmaps.HeatmapCodec`,
  DARK decoding);
* ``ssl_unet`` — the U-Net initialised from the stage-2 encoder, exact codec;
* ``ssl_unet_starter_codec`` — ``ssl_unet``'s recipe with the starter's codec.

Errors are measured in the original images' pixels (512×512 for IUGC). For the starter-codec
variants the decoded input-pixel landmarks are mapped back with the starter's ``x · W / W_in``
scaling, as the starter does; the other variants use the exact pixel-centre map.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from iugc_aop.profiles import Profile, get_profile
from iugc_aop.reader import LANDMARK_NAMES, IUGCDataset, read_iugc
from sslkeypoint.data import KeypointRecord

__all__ = [
    "VARIANTS",
    "DemoResult",
    "EvaluationResult",
    "FinetuneStageResult",
    "PretrainStageResult",
    "SelectionResult",
    "TrainerOptions",
    "Variant",
    "labelled_subset",
    "load_dataset",
    "make_codec",
    "prepare_demo_data",
    "run_demo",
    "stage_evaluate",
    "stage_finetune",
    "stage_pretrain",
    "stage_pretrain_temporal",
    "stage_select",
]

PathLike = str | os.PathLike[str]
SPLITS = ("validation", "testing")
_STAGE_FILE = "stage.json"


# --------------------------------------------------------------------------------------------
# Variants, options, results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One row of the report.

    Attributes:
        name: Key in ``metrics.json`` and folder name.
        title: Human-readable description.
        encoder: ``"unet"`` (the profile's U-Net) or ``"resnet"`` (the profile's timm ResNet).
        ssl: Initialise the encoder from the stage-2 encoder.
        codec: ``"exact"`` (:class:`~sslkeypoint.heatmaps.HeatmapCodec`, DARK) or ``"starter"``
            (:class:`iugc_aop.starter.StarterCodec`).
    """

    name: str
    title: str
    encoder: Literal["unet", "resnet"]
    ssl: bool
    codec: Literal["exact", "starter"]


#: The report's variants, in table order.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("resnet_unet", "ResNet encoder U-Net (random init), exact codec", "resnet", False, "exact"),
        Variant("unet_starter", "U-Net, no SSL, IUGC starter codec", "unet", False, "starter"),
        Variant("unet", "U-Net, no SSL, exact codec", "unet", False, "exact"),
        Variant("ssl_unet", "U-Net with two-stage SSL, exact codec", "unet", True, "exact"),
        Variant("ssl_unet_starter_codec", "U-Net with two-stage SSL, IUGC starter codec", "unet", True,
                "starter"),
    )
}


@dataclass(frozen=True)
class TrainerOptions:
    """Lightning settings passed through to every training stage.

    Attributes:
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``.
        devices: Devices per node (``"auto"``, an int or a list).
        strategy: ``"auto"`` or ``"ddp"`` (several GPUs).
        precision: ``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``.
    """

    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    precision: str = "32-true"


@dataclass
class PretrainStageResult:
    """What :func:`stage_pretrain` / :func:`stage_pretrain_temporal` produced.

    Attributes:
        stage: ``"stage1"`` or ``"stage2"`` (the folder name).
        out_dir: The stage folder.
        encoder_path: ``encoder.safetensors`` (the query encoder).
        checkpoint: ``checkpoints/last.ckpt``.
        items: Training items (images, or frame pairs).
        global_step: Optimiser steps.
        final_loss: Last epoch's InfoNCE loss.
        seconds: Wall time of this call.
        skipped: Whether the stage was already done.
        queue_size: MoCo queue length used (after capping); chance-level InfoNCE is
            ``ln(queue_size + 1)``.
    """

    stage: str
    out_dir: Path
    encoder_path: Path
    checkpoint: Path | None
    items: int
    global_step: int
    final_loss: float | None
    seconds: float
    skipped: bool = False
    queue_size: int = 0


@dataclass
class SelectionResult:
    """What :func:`stage_select` produced.

    Attributes:
        out_dir: ``RUN/select``.
        json_path: ``selection.json``: the cut, every frame score and the kept sequences.
        plot_path: ``screening_scores.png``.
        names: Names of all screened sequences.
        kept: Names of the kept sequences.
        sequences: Frame paths of the kept sequences (what stage 2 trains on).
        threshold: The frame cut applied (cosine similarity).
        precision: Share of kept sequences that are good (synthetic data only, else ``None``).
        recall: Share of good sequences kept (synthetic data only, else ``None``).
        seconds: Wall time of this call.
        skipped: Whether the stage was already done.
    """

    out_dir: Path
    json_path: Path
    plot_path: Path
    names: list[str]
    kept: list[str]
    sequences: list[list[Path]]
    threshold: float
    precision: float | None
    recall: float | None
    seconds: float
    skipped: bool = False


@dataclass
class FinetuneStageResult:
    """What :func:`stage_finetune` produced.

    Attributes:
        variant: Variant name.
        out_dir: The run folder (``finetune/<variant>`` by default).
        checkpoint: Best checkpoint (lowest validation MRE).
        best_metrics: Its hold-out metrics (``val/mre_px`` in original px, ...).
        best_epoch: Its epoch.
        epochs: Epochs run.
        labelled: Labelled images used (train + hold-out).
        seconds: Wall time of this call.
        skipped: Whether the run was already done.
    """

    variant: str
    out_dir: Path
    checkpoint: Path
    best_metrics: dict[str, float]
    best_epoch: int | None
    epochs: int
    labelled: int
    seconds: float
    skipped: bool = False


@dataclass
class EvaluationResult:
    """What :func:`stage_evaluate` produced.

    Attributes:
        variant: Variant name.
        checkpoint: The evaluated checkpoint.
        metrics: Split name → :meth:`sslkeypoint.metrics.KeypointEvaluator.compute` output (plain
            numbers) plus ``dropped`` (unreadable images).
        predictions: Split name → per-image CSV (predicted and true landmarks, errors, AoP).
        ms_per_image: Median wall time of one image through the predictor (load, resize,
            network, decode), batch size 1, milliseconds.
        out_dir: ``eval/<variant>``.
        skipped: Whether the results were already there.
    """

    variant: str
    checkpoint: Path
    metrics: dict[str, dict[str, Any]]
    predictions: dict[str, Path]
    ms_per_image: float
    out_dir: Path
    skipped: bool = False


@dataclass
class DemoResult:
    """What :func:`run_demo` produced.

    Attributes:
        out_dir: The demo folder.
        data_root: The data used.
        report: ``report.md``.
        metrics_json: ``metrics.json`` (variant → Testing metrics).
        submission_dir: The Codabench folder of ``ssl_unet`` (``None`` if it could not be made).
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


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _done(folder: Path, fingerprint: str, force: bool) -> dict[str, Any] | None:
    """The saved result of a finished stage, ``None`` to (re)run it.

    Raises:
        ValueError: If the stage was finished with other settings and ``force`` is not set.
    """
    marker = folder / _STAGE_FILE
    if not marker.is_file():
        if force and folder.exists():
            shutil.rmtree(folder)
        return None
    saved = json.loads(marker.read_text())
    if saved.get("fingerprint") == fingerprint and not force:
        return dict(saved.get("result", {}))
    if not force:
        raise ValueError(
            f"{folder} was made with other settings (profile {saved.get('profile')!r}, or other "
            "data, seed or options): use another run folder, or force a re-run (--force)"
        )
    shutil.rmtree(folder)
    return None


def _mark_done(folder: Path, fingerprint: str, profile: Profile, result: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"fingerprint": fingerprint, "profile": profile.name, "result": result}
    (folder / _STAGE_FILE).write_text(json.dumps(payload, indent=2, default=str))


def _data_key(data_root: Path) -> str:
    return str(Path(data_root).resolve())


def load_dataset(
    data_root: PathLike, parts: Sequence[str] = ("train", "unlabeled", "validation", "testing"),
    progress: bool = True,
) -> IUGCDataset:
    """Read the parts of an IUGC folder a stage needs (layout checked, images decoded lazily).

    Raises:
        iugc_aop.reader.IUGCLayoutError: When a required folder or file is missing (all listed).
    """
    return read_iugc(data_root, parts=parts, check_images=False, progress=progress)


def labelled_subset(records: Sequence[KeypointRecord], budget: int | None, seed: int = 0) -> list[KeypointRecord]:
    """The first ``budget`` records of a seeded permutation, in their original order.

    Budgets are nested: for one seed the 10-image subset lies inside the 30-image one.

    Args:
        records: Labelled training records.
        budget: Number to keep (``None`` or ``>= len(records)``: all).
        seed: Permutation seed.

    Returns:
        The subset.

    Examples:
        >>> recs = list(range(10))
        >>> small, large = labelled_subset(recs, 3, seed=1), labelled_subset(recs, 6, seed=1)
        >>> len(small), set(small) <= set(large)
        (3, True)
    """
    items = list(records)
    if budget is None or budget >= len(items):
        return items
    order = np.random.default_rng(seed).permutation(len(items))[:budget]
    return [items[i] for i in sorted(order.tolist())]


def make_codec(kind: str, profile: Profile) -> Any:
    """The codec of a variant: ``"exact"`` → HeatmapCodec, ``"starter"`` → StarterCodec."""
    if kind == "exact":
        from sslkeypoint.heatmaps import HeatmapCodec

        return HeatmapCodec(profile.input_size, profile.heatmap_size, profile.sigma)
    if kind == "starter":
        from iugc_aop.starter import StarterCodec

        return StarterCodec(profile.input_size, profile.heatmap_size, profile.sigma)
    raise ValueError(f"unknown codec {kind!r}; expected 'exact' or 'starter'")


def _variant(name: str | Variant) -> Variant:
    if isinstance(name, Variant):
        return name
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; expected one of {list(VARIANTS)}")
    return VARIANTS[name]


def _deterministic(options: TrainerOptions) -> bool:
    # Deterministic CPU runs are repeatable; several CUDA kernels have no deterministic version.
    return options.accelerator == "cpu" or not torch.cuda.is_available()


def _pretrain_config(profile: Profile, stage: int, seed: int, options: TrainerOptions) -> Any:
    from sslkeypoint.tasks.pretrain import PretrainConfig

    s = profile.stage1 if stage == 1 else profile.stage2
    common: dict[str, Any] = {
        "image_size": profile.input_size,
        "in_chans": 1,
        "encoder": "unet",
        "encoder_kwargs": profile.unet_kwargs(),
        "queue_size": s.queue_size,
        "split_bn": s.split_bn,
        "batch_size": s.batch_size,
        "max_epochs": s.epochs,
        "lr": s.lr,
        "weight_decay": s.weight_decay,
        "plateau": s.plateau,
        "num_workers": profile.num_workers,
        "seed": seed,
        "precision": options.precision,
        "accelerator": options.accelerator,
        "devices": options.devices,
        "strategy": options.strategy,
        "log_every_n_steps": 1,
    }
    return PretrainConfig.stage1(**common) if stage == 1 else PretrainConfig.stage2(**common)


def _final_loss(metrics: dict[str, float]) -> float | None:
    for key in ("train_loss_epoch", "train_loss"):
        if key in metrics and math.isfinite(metrics[key]):
            return float(metrics[key])
    return None


def _run_pretrain_stage(
    stage: int, name: str, run_dir: Path, profile: Profile, fingerprint: str, force: bool,
    progress: bool, options: TrainerOptions, seed: int, **data: Any,
) -> PretrainStageResult:
    from sslkeypoint.tasks.pretrain import run_pretraining

    start = time.perf_counter()
    out = run_dir / name
    saved = _done(out, fingerprint, force)
    if saved is not None:
        return PretrainStageResult(
            stage=name, out_dir=out, encoder_path=out / "encoder.safetensors",
            checkpoint=out / "checkpoints" / "last.ckpt", items=int(saved.get("items", 0)),
            global_step=int(saved.get("global_step", 0)), final_loss=saved.get("final_loss"),
            seconds=time.perf_counter() - start, skipped=True, queue_size=int(saved.get("queue_size", 0)),
        )
    s = profile.stage1 if stage == 1 else profile.stage2
    config = _pretrain_config(profile, stage, seed, options)
    res = run_pretraining(config, out_dir=out, resume=True, max_steps=s.max_steps, progress=progress, **data)
    items = len(data["images"]) if "images" in data else sum(max(0, len(q) - 1) for q in data["sequences"])
    result = PretrainStageResult(
        stage=name, out_dir=out, encoder_path=res.encoder_path, checkpoint=res.last_checkpoint,
        items=items, global_step=res.global_step, final_loss=_final_loss(res.metrics),
        seconds=time.perf_counter() - start, queue_size=res.queue_size,
    )
    _mark_done(out, fingerprint, profile, {
        "items": items, "global_step": res.global_step, "final_loss": result.final_loss,
        "queue_size": res.queue_size, "seconds": result.seconds,
    })
    return result


# --------------------------------------------------------------------------------------------
# Stage 1
# --------------------------------------------------------------------------------------------


def stage_pretrain(
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    seed: int | None = None,
    name: str = "stage1",
    force: bool = False,
    progress: bool = True,
    options: TrainerOptions | None = None,
) -> PretrainStageResult:
    """Stage 1: MoCo v2 on every unlabelled frame and the labelled training images (labels unused).

    Args:
        data_root: IUGC folder (``Training/`` is read).
        run_dir: Run folder; the stage writes ``run_dir/<name>/`` (checkpoints, CSV logs,
            ``encoder.safetensors``, ``stage.json``).
        profile: Profile or its name.
        seed: Seed (default: the profile's).
        name: Sub-folder name (one per seed when several are compared).
        force: Re-run even if done (the folder is deleted first).
        progress: Progress bars.
        options: Lightning accelerator / devices / strategy / precision.

    Returns:
        A :class:`PretrainStageResult`.

    Raises:
        iugc_aop.reader.IUGCLayoutError: If ``Training/`` is incomplete.
    """
    profile = get_profile(profile)
    options = options or TrainerOptions()
    seed = profile.seed if seed is None else seed
    ds = load_dataset(data_root, ("train", "unlabeled"), progress=False)
    images = [Path(r.path) for r in ds.train] + [p for frames in ds.sequences.values() for p in frames]
    fp = _fingerprint({"stage": 1, "profile": asdict(profile.stage1), "net": _net_key(profile),
                       "seed": seed, "data": _data_key(Path(data_root)), "n": len(images)})
    _say(f"stage 1: MoCo v2 on {len(images)} images ({len(ds.train)} labelled training images "
         f"without labels + {ds.num_frames} frames) -> {Path(run_dir) / name}")
    return _run_pretrain_stage(1, name, Path(run_dir), profile, fp, force, progress, options, seed,
                               images=images)


def _net_key(profile: Profile) -> dict[str, Any]:
    return {"input": list(profile.input_size), "widths": list(profile.widths),
            "bottleneck": profile.bottleneck_width}


# --------------------------------------------------------------------------------------------
# Screening
# --------------------------------------------------------------------------------------------


def _load_unet_encoder(profile: Profile, weights: Path) -> torch.nn.Module:
    from sslkeypoint.encoders import create_encoder
    from sslkeypoint.weights import load_state_dict_file

    encoder = create_encoder("unet", in_chans=1, **profile.unet_kwargs())
    encoder.load_state_dict(load_state_dict_file(weights), strict=True)
    return encoder.eval()


def _plot_scores_simple(result: Any, path: Path) -> Path:
    """Frame scores per sequence without the histogram (for nearly constant scores)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(min(4 + 0.4 * len(result.frame_scores), 16), 4))
    for i, s in enumerate(result.frame_scores):
        colour = "tab:blue" if bool(result.sequence_mask[i]) else "tab:gray"
        ax.scatter([i] * s.numel(), s.numpy(), s=10, color=colour)
    ax.axhline(result.threshold, color="tab:red", linestyle="--", label=f"cut {result.threshold:.6f}")
    ax.set_xticks(range(len(result.names)), result.names, rotation=90, fontsize=7)
    ax.set_ylabel("max cosine similarity to a reference")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def stage_select(
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    encoder_path: PathLike | None = None,
    force: bool = False,
    progress: bool = True,
) -> SelectionResult:
    """Screen the unlabelled sequences against the ``ExampleN.jpg`` reference images.

    Every frame and reference is embedded with the stage-1 encoder (pooled deepest features); a
    frame's score is its highest cosine similarity to a reference; the profile's
    :class:`~iugc_aop.profiles.Screening` decides the frame cut and which sequences are kept
    (at least ``min_sequences``, the best by median score, so stage 2 always has data). On
    synthetic data the choice is scored against ``synthetic_truth.json`` (precision / recall of
    good sequences).

    Args:
        data_root: IUGC folder.
        run_dir: Run folder; writes ``run_dir/select/selection.json`` and
            ``screening_scores.png``.
        profile: Profile or its name.
        encoder_path: Extractor weights (default ``run_dir/stage1/encoder.safetensors``).
        force: Re-run even if done.
        progress: Progress bars.

    Returns:
        A :class:`SelectionResult`.

    Raises:
        FileNotFoundError: If the stage-1 encoder does not exist (run ``pretrain`` first).
        ValueError: If the data has no reference images or no sequences.
    """
    from iugc_aop.synth import load_truth
    from sslkeypoint.ssl.selection import plot_scores, screen_sequences

    start = time.perf_counter()
    profile = get_profile(profile)
    run = Path(run_dir)
    out = run / "select"
    weights = Path(encoder_path) if encoder_path is not None else run / "stage1" / "encoder.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"stage-1 encoder {weights} not found: run the 'pretrain' stage first")
    ds = load_dataset(data_root, ("unlabeled",), progress=False)
    if not ds.references:
        raise ValueError(f"{data_root}: no ExampleN.jpg reference images in 'Training/Unlabeled cases'")
    names = [n for n, frames in ds.sequences.items() if len(frames) >= 2]
    if not names:
        raise ValueError(f"{data_root}: no unlabelled sequence with 2 or more frames")
    fp = _fingerprint({"screening": asdict(profile.screening), "net": _net_key(profile),
                       "weights": [weights.stat().st_size, weights.stat().st_mtime_ns],
                       "data": _data_key(Path(data_root))})
    json_path, plot_path = out / "selection.json", out / "screening_scores.png"
    saved = _done(out, fp, force)
    if saved is not None:
        kept = list(saved["kept"])
        return SelectionResult(out, json_path, plot_path, names, kept, [ds.sequences[k] for k in kept],
                               float(saved["threshold"]), saved.get("precision"), saved.get("recall"),
                               time.perf_counter() - start, skipped=True)
    sc = profile.screening
    _say(f"screening {len(names)} sequences ({sum(len(ds.sequences[n]) for n in names)} frames) "
         f"against {len(ds.references)} reference images, {sc.criterion()}")
    extractor = _load_unet_encoder(profile, weights)
    result = screen_sequences(
        extractor, ds.references, [ds.sequences[n] for n in names], rule=sc.rule,  # type: ignore[arg-type]
        min_fraction=sc.min_fraction, names=names, size=profile.input_size, in_chans=1,
        batch_size=profile.eval_batch_size, progress=progress, **sc.criterion(),
    )
    keep = result.sequence_mask.clone()
    if int(keep.sum()) < sc.min_sequences:
        medians = torch.stack([s.float().quantile(0.5) for s in result.frame_scores])
        for i in medians.argsort(descending=True)[: sc.min_sequences].tolist():
            keep[i] = True
        result.sequence_mask = keep
    kept = [names[i] for i in result.selected]
    out.mkdir(parents=True, exist_ok=True)
    try:
        plot_scores(result, plot_path)
    except ValueError:  # scores too close together for a histogram (an untrained extractor)
        _plot_scores_simple(result, plot_path)
    precision = recall = None
    truth = load_truth(data_root)
    summary = result.to_dict()
    if truth is not None:
        good = {n for n, s in truth.get("sequences", {}).items() if s.get("good")}
        hits = sum(n in good for n in kept)
        precision = hits / len(kept) if kept else math.nan
        recall = hits / len(good & set(names)) if good & set(names) else math.nan
        summary["truth"] = {"good": sorted(good), "precision": precision, "recall": recall}
    summary["kept"] = kept
    json_path.write_text(json.dumps(summary, indent=2))
    seconds = time.perf_counter() - start
    _mark_done(out, fp, profile, {"kept": kept, "threshold": result.threshold, "precision": precision,
                                  "recall": recall, "seconds": seconds})
    return SelectionResult(out, json_path, plot_path, names, kept, [ds.sequences[k] for k in kept],
                           result.threshold, precision, recall, seconds)


# --------------------------------------------------------------------------------------------
# Stage 2
# --------------------------------------------------------------------------------------------


def stage_pretrain_temporal(
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    sequences: Literal["selected", "all"] | Sequence[Sequence[PathLike]] = "selected",
    init_from: PathLike | None = None,
    seed: int | None = None,
    name: str = "stage2",
    force: bool = False,
    progress: bool = True,
    options: TrainerOptions | None = None,
) -> PretrainStageResult:
    """Stage 2: MoCo v2 on pairs of adjacent frames, initialised from stage 1.

    Args:
        data_root: IUGC folder.
        run_dir: Run folder; writes ``run_dir/<name>/``.
        profile: Profile or its name.
        sequences: ``"selected"`` (the sequences kept by :func:`stage_select`, read from
            ``run_dir/select/selection.json``), ``"all"`` (no screening, an ablation) or explicit
            frame lists.
        init_from: Stage-1 checkpoint or encoder (default ``run_dir/stage1/checkpoints/last.ckpt``).
        seed: Seed (default: the profile's).
        name: Sub-folder name.
        force: Re-run even if done.
        progress: Progress bars.
        options: Lightning settings.

    Returns:
        A :class:`PretrainStageResult`.

    Raises:
        FileNotFoundError: If stage 1 or the selection is missing.
    """
    profile = get_profile(profile)
    options = options or TrainerOptions()
    seed = profile.seed if seed is None else seed
    run = Path(run_dir)
    init = Path(init_from) if init_from is not None else run / "stage1" / "checkpoints" / "last.ckpt"
    if not init.is_file():
        raise FileNotFoundError(f"stage-1 result {init} not found: run the 'pretrain' stage first")
    if isinstance(sequences, str):
        ds = load_dataset(data_root, ("unlabeled",), progress=False)
        if sequences == "all":
            seqs = [list(v) for v in ds.sequences.values() if len(v) >= 2]
        elif sequences == "selected":
            sel = run / "select" / "selection.json"
            if not sel.is_file():
                raise FileNotFoundError(f"{sel} not found: run the 'select' stage first")
            kept = json.loads(sel.read_text())["kept"]
            missing = [k for k in kept if k not in ds.sequences]
            if missing:
                raise ValueError(f"{sel} names sequences that {data_root} does not hold: {missing[:5]}")
            seqs = [list(ds.sequences[k]) for k in kept]
        else:
            raise ValueError(f"sequences must be 'selected', 'all' or frame lists; got {sequences!r}")
    else:
        seqs = [[Path(p) for p in s] for s in sequences]
    fp = _fingerprint({"stage": 2, "profile": asdict(profile.stage2), "net": _net_key(profile), "seed": seed,
                       "init": str(init), "seqs": [[str(p) for p in s] for s in seqs]})
    _say(f"stage 2: MoCo v2 on adjacent frames of {len(seqs)} sequences "
         f"({sum(len(s) - 1 for s in seqs)} pairs), from {init} -> {run / name}")
    return _run_pretrain_stage(2, name, run, profile, fp, force, progress, options, seed,
                               sequences=seqs, init_from=init)


# --------------------------------------------------------------------------------------------
# Stage 3
# --------------------------------------------------------------------------------------------


def _finetune_config(
    variant: Variant, profile: Profile, init_encoder: Path | None, seed: int, options: TrainerOptions
) -> Any:
    from sslkeypoint.tasks.finetune import FinetuneConfig

    ft = profile.finetune
    encoder, kwargs = ("unet", profile.unet_kwargs()) if variant.encoder == "unet" else (profile.resnet, {})
    return FinetuneConfig(
        input_size=profile.input_size,
        heatmap_size=profile.heatmap_size,
        sigma=profile.sigma,
        in_chans=1,
        num_keypoints=len(LANDMARK_NAMES),
        keypoint_names=LANDMARK_NAMES,
        aop_indices=(0, 1, 2),
        encoder=encoder,
        encoder_kwargs=kwargs,
        init_encoder=str(init_encoder) if init_encoder is not None else None,
        lr=ft.lr,
        batch_size=ft.batch_size,
        max_epochs=ft.epochs,
        early_stopping_patience=ft.patience,
        lr_patience=ft.lr_patience,
        val_fraction=ft.val_fraction,
        seed=seed,
        augment=ft.augment,
        refine="dark" if variant.codec == "exact" else "none",
        num_workers=profile.num_workers,
        precision=options.precision,
        accelerator=options.accelerator,
        devices=options.devices,  # type: ignore[arg-type]
        strategy=options.strategy,
        deterministic=_deterministic(options),
        log_every_n_steps=1,
    )


def _codec_callback(codec: Any) -> Any:
    """A Lightning callback that makes the fine-tuning module train and validate with ``codec``."""
    import pytorch_lightning as pl

    class UseCodec(pl.Callback):
        """Replace the module's codec before any step runs (and again after a resume)."""

        def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
            pl_module.codec = codec

    return UseCodec()


def stage_finetune(
    variant: str | Variant,
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    label_budget: int | Literal["profile"] | None = "profile",
    seed: int | None = None,
    init_encoder: PathLike | None = None,
    name: str | None = None,
    force: bool = False,
    progress: bool = True,
    options: TrainerOptions | None = None,
) -> FinetuneStageResult:
    """Stage 3: fine-tune one variant on the labelled training images (8:2 hold-out split).

    Args:
        variant: A :data:`VARIANTS` name (or :class:`Variant`).
        data_root: IUGC folder.
        run_dir: Run folder; writes ``run_dir/finetune/<name>/``.
        profile: Profile or its name.
        label_budget: Labelled images used (``"profile"``: the profile's; ``None``: all); the
            subset is :func:`labelled_subset` with the run's seed.
        seed: Seed of the subset, the split and the training (default: the profile's).
        init_encoder: Encoder weights for an SSL variant (default
            ``run_dir/stage2/encoder.safetensors``); ignored by the other variants.
        name: Sub-folder name (default: the variant's name).
        force: Re-run even if done.
        progress: Progress bars.
        options: Lightning settings.

    Returns:
        A :class:`FinetuneStageResult`.

    Raises:
        FileNotFoundError: If an SSL variant's encoder is missing (run ``pretrain-temporal``).
    """
    from sslkeypoint.tasks.finetune import run_finetuning

    start = time.perf_counter()
    v = _variant(variant)
    profile = get_profile(profile)
    options = options or TrainerOptions()
    seed = profile.seed if seed is None else seed
    budget = profile.label_budget if label_budget == "profile" else label_budget
    run = Path(run_dir)
    out = run / "finetune" / (name or v.name)
    init: Path | None = None
    if v.ssl:
        init = Path(init_encoder) if init_encoder is not None else run / "stage2" / "encoder.safetensors"
        if not init.is_file():
            raise FileNotFoundError(f"SSL encoder {init} not found: run 'pretrain-temporal' first")
    ds = load_dataset(data_root, ("train",), progress=False)
    records = labelled_subset(ds.train, budget, seed)
    init_key = [str(init), init.stat().st_size, init.stat().st_mtime_ns] if init is not None else None
    fp = _fingerprint({"variant": asdict(v), "profile": asdict(profile.finetune), "net": _net_key(profile),
                       "resnet": profile.resnet, "sigma": profile.sigma, "heatmap": list(profile.heatmap_size),
                       "seed": seed, "budget": budget, "init": init_key, "data": _data_key(Path(data_root))})
    saved = _done(out, fp, force)
    if saved is not None and Path(saved.get("checkpoint", "")).is_file():
        return FinetuneStageResult(v.name, out, Path(saved["checkpoint"]), dict(saved.get("best_metrics", {})),
                                   saved.get("best_epoch"), int(saved.get("epochs", 0)), len(records),
                                   time.perf_counter() - start, skipped=True)
    config = _finetune_config(v, profile, init, seed, options)
    callbacks = [] if v.codec == "exact" else [_codec_callback(make_codec(v.codec, profile))]
    _say(f"stage 3: fine-tuning {v.name} ({v.title}) on {len(records)} labelled images -> {out}")
    res = run_finetuning(config, records, out, resume=True, max_steps=profile.finetune.max_steps,
                         progress=progress, callbacks=callbacks)
    ckpt = res.best_checkpoint or res.last_checkpoint
    if ckpt is None:
        raise RuntimeError(f"fine-tuning {v.name} wrote no checkpoint under {out}")
    seconds = time.perf_counter() - start
    (out / "variant.json").write_text(json.dumps({**asdict(v), "labelled": len(records), "seed": seed,
                                                  "budget": budget}, indent=2))
    _mark_done(out, fp, profile, {"checkpoint": str(ckpt), "best_metrics": res.best_metrics,
                                  "best_epoch": res.best_epoch, "epochs": res.epochs, "seconds": seconds})
    return FinetuneStageResult(v.name, out, Path(ckpt), dict(res.best_metrics), res.best_epoch, res.epochs,
                               len(records), seconds)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _predictor(checkpoint: Path, variant: Variant, profile: Profile, device: str) -> Any:
    from sslkeypoint.inference import KeypointPredictor

    lib = KeypointPredictor.from_checkpoint(checkpoint, device=device, batch_size=profile.eval_batch_size)
    if variant.codec == "exact":
        return lib
    return KeypointPredictor(lib.model, make_codec(variant.codec, profile), refine="none", in_chans=lib.in_chans,
                             device=device, batch_size=profile.eval_batch_size,
                             keypoint_names=LANDMARK_NAMES, aop_indices=(0, 1, 2))


def _to_original(kp_in: torch.Tensor, sizes: torch.Tensor, input_size: tuple[int, int], codec: str) -> torch.Tensor:
    from sslkeypoint.heatmaps import keypoints_to_original

    if codec == "exact":
        return keypoints_to_original(kp_in, sizes.float(), input_size)
    # The starter's map back: x * W / W_in, no half-pixel terms.
    scale = torch.stack([sizes[:, 1].float() / input_size[1], sizes[:, 0].float() / input_size[0]], -1)
    return kp_in * scale[:, None, :]


@torch.inference_mode()
def evaluate_records(
    predictor: Any, records: Sequence[KeypointRecord], codec_kind: str = "exact", *, progress: bool = True,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and per-image rows of a predictor on labelled records (original pixels).

    Images go through ``predictor.preprocess`` exactly as in :meth:`KeypointPredictor.predict`;
    heatmap errors compare the network's heatmaps with the targets its codec makes from the
    labels.

    Args:
        predictor: A :class:`~sslkeypoint.inference.KeypointPredictor`.
        records: Labelled records.
        codec_kind: ``"exact"`` or ``"starter"`` (how input pixels map back to the original).
        progress: Progress bar.

    Returns:
        ``(metrics, rows)``: the evaluator's output plus ``dropped``, and one dict per image.
    """
    from tqdm.auto import tqdm

    from sslkeypoint.geometry import angle_of_progression
    from sslkeypoint.heatmaps import keypoints_to_input
    from sslkeypoint.metrics import KeypointEvaluator

    ev = KeypointEvaluator(list(LANDMARK_NAMES), aop_indices=(0, 1, 2))
    rows: list[dict[str, Any]] = []
    dropped = 0
    bs = predictor.batch_size
    chunks = [records[i : i + bs] for i in range(0, len(records), bs)]
    for chunk in tqdm(chunks, desc="evaluate", unit="batch", disable=not progress):
        images, sizes, gts, kept = [], [], [], []
        for rec in chunk:
            try:
                img, size = predictor.preprocess(rec.path)
            except (OSError, ValueError) as exc:
                dropped += 1
                _say(f"  skipped {rec.path}: {exc}")
                continue
            images.append(img)
            sizes.append(size)
            gts.append(torch.as_tensor(np.asarray(rec.keypoints, dtype=np.float64)))
            kept.append(rec)
        if not images:
            continue
        x = torch.stack(images).to(predictor.device)
        size_t = torch.tensor(sizes, dtype=torch.long)
        gt = torch.stack(gts)
        heatmaps = predictor.model(x).float().cpu()
        kp_in, scores = predictor.codec.decode(heatmaps, refine=predictor.refine, blur_kernel=predictor.blur_kernel)
        pred = _to_original(kp_in.double(), size_t, predictor.input_size, codec_kind)
        visible = torch.isfinite(gt).all(-1)
        gt_in = keypoints_to_input(gt.float(), size_t.float(), predictor.input_size)
        target = predictor.codec.encode(gt_in, visible)
        ev.update(pred, gt, visible, pred_heatmaps=heatmaps, target_heatmaps=target.float())
        err = (pred - gt).norm(dim=-1)
        aop_p = angle_of_progression(pred[:, 0], pred[:, 1], pred[:, 2])
        aop_g = angle_of_progression(gt[:, 0], gt[:, 1], gt[:, 2])
        for i, rec in enumerate(kept):
            row: dict[str, Any] = {"filename": rec.meta.get("filename", Path(rec.path).name), "path": str(rec.path)}
            for k, n in enumerate(LANDMARK_NAMES):
                row[f"{n}_x"], row[f"{n}_y"] = float(pred[i, k, 0]), float(pred[i, k, 1])
                row[f"{n}_true_x"], row[f"{n}_true_y"] = float(gt[i, k, 0]), float(gt[i, k, 1])
                row[f"{n}_err_px"] = float(err[i, k])
                row[f"{n}_score"] = float(scores[i, k])
            row["mre_px"] = float(err[i].mean())
            row["aop_deg"], row["aop_true_deg"] = float(aop_p[i]), float(aop_g[i])
            row["aop_err_deg"] = abs(float(aop_p[i]) - float(aop_g[i]))
            rows.append(row)
    metrics = ev.compute()
    metrics["dropped"] = dropped
    return _plain(metrics), rows


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def time_predictor(predictor: Any, paths: Sequence[PathLike], warmup: int = 2) -> float:
    """Median milliseconds per image of ``predictor.predict(path)`` one image at a time."""
    if not paths:
        return math.nan
    for p in list(paths)[:warmup]:
        predictor.predict(p)
    times = []
    for p in paths:
        t = time.perf_counter()
        predictor.predict(p)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000.0)


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        if not rows:
            f.write("")
            return
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def stage_evaluate(
    variant: str | Variant,
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    checkpoint: PathLike | None = None,
    splits: Sequence[str] = SPLITS,
    name: str | None = None,
    device: str = "cpu",
    force: bool = False,
    progress: bool = True,
) -> EvaluationResult:
    """Evaluate a fine-tuned variant on the Validation and Testing splits (original pixels).

    Writes ``run_dir/eval/<name>/metrics.json`` (split → metrics, ``ms_per_image``) and one
    ``<split>_predictions.csv`` per split.

    Args:
        variant: A :data:`VARIANTS` name (decides the codec).
        data_root: IUGC folder.
        run_dir: Run folder.
        profile: Profile or its name.
        checkpoint: Checkpoint to evaluate (default: the variant's best, from its ``stage.json``).
        splits: Splits to evaluate.
        name: Sub-folder name (default: the variant's name).
        device: Inference device.
        force: Re-evaluate even if done.
        progress: Progress bars.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        FileNotFoundError: If the variant has not been fine-tuned.
    """
    v = _variant(variant)
    profile = get_profile(profile)
    run = Path(run_dir)
    label = name or v.name
    if checkpoint is None:
        marker = run / "finetune" / label / _STAGE_FILE
        if not marker.is_file():
            raise FileNotFoundError(f"{marker} not found: fine-tune {label!r} first ('finetune --variant {label}')")
        checkpoint = json.loads(marker.read_text())["result"]["checkpoint"]
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} not found")
    out = run / "eval" / label
    fp = _fingerprint({"ckpt": [str(ckpt), ckpt.stat().st_size, ckpt.stat().st_mtime_ns], "splits": list(splits),
                       "variant": asdict(v), "data": _data_key(Path(data_root))})
    saved = _done(out, fp, force)
    if saved is not None:
        return EvaluationResult(v.name, ckpt, saved["metrics"], {s: out / f"{s}_predictions.csv" for s in splits},
                                float(saved["ms_per_image"]), out, skipped=True)
    ds = load_dataset(data_root, tuple(splits), progress=False)
    predictor = _predictor(ckpt, v, profile, device)
    metrics: dict[str, dict[str, Any]] = {}
    predictions: dict[str, Path] = {}
    for split in splits:
        records = ds.split(split)
        m, rows = evaluate_records(predictor, records, v.codec, progress=progress)
        metrics[split] = m
        predictions[split] = out / f"{split}_predictions.csv"
        _write_rows(predictions[split], rows)
    timing = [Path(r.path) for r in ds.split(splits[-1])[: profile.timing_images]]
    ms = time_predictor(predictor, timing)
    _mark_done(out, fp, profile, {"metrics": metrics, "ms_per_image": ms, "checkpoint": str(ckpt)})
    (out / "metrics.json").write_text(json.dumps({"variant": v.name, "checkpoint": str(ckpt), "metrics": metrics,
                                                  "ms_per_image": ms}, indent=2))
    return EvaluationResult(v.name, ckpt, metrics, predictions, ms, out)


# --------------------------------------------------------------------------------------------
# Demo
# --------------------------------------------------------------------------------------------


def prepare_demo_data(out_dir: PathLike, profile: Profile | str, seed: int = 0, progress: bool = True) -> Path:
    """Write (once) the profile's synthetic IUGC-format data set to ``out_dir/data``."""
    from iugc_aop.synth import SynthConfig, load_truth, write_synthetic_iugc

    profile = get_profile(profile)
    root = Path(out_dir) / "data"
    config = SynthConfig.preset(profile.synthetic_size, **profile.synthetic_overrides)
    wanted = json.loads(json.dumps(config.to_dict()))
    truth = load_truth(root) if root.is_dir() else None
    if truth is None or truth.get("seed") != seed or truth.get("config") != wanted:
        _say(f"writing synthetic IUGC-format data ({profile.synthetic_size} "
             f"{profile.synthetic_overrides or ''}, seed {seed}) to {root}")
        write_synthetic_iugc(root, config, seed=seed, progress=progress, workers=max(1, min(2, os.cpu_count() or 1)),
                             contact_sheet=False)
    return root


def export_and_evaluate_submission(
    checkpoint: PathLike, submission_dir: PathLike, records: Sequence[KeypointRecord]
) -> dict[str, Any] | None:
    """Export the challenge folder and evaluate it through the challenge interface.

    Returns ``None`` when :mod:`iugc_aop.submission` is not available.
    """
    try:
        from iugc_aop.submission import evaluate_submission, export_submission
    except ImportError as err:  # pragma: no cover - the module ships with the package
        _say(f"challenge submission not available ({err}); metrics come from the library predictor")
        return None
    export_submission(Path(checkpoint), Path(submission_dir))
    return _plain(dict(evaluate_submission(Path(submission_dir), records)))


def _submission_stage(
    checkpoint: Path, submission_dir: Path, root: Path, force: bool
) -> dict[str, Any] | None:
    """Export ``ssl_unet``'s challenge folder and score it on Testing (skipped when done)."""
    marker = submission_dir.parent / "eval" / "submission_testing.json"
    key = _fingerprint([str(checkpoint), checkpoint.stat().st_size, checkpoint.stat().st_mtime_ns,
                        _data_key(root)])
    if not force and marker.is_file() and (submission_dir / "model.py").is_file():
        saved = json.loads(marker.read_text())
        if saved.get("fingerprint") == key:
            return dict(saved["metrics"])
    testing = load_dataset(root, ("testing",), progress=False).testing
    metrics = export_and_evaluate_submission(checkpoint, submission_dir, testing)
    if metrics is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": key, "checkpoint": str(checkpoint), "metrics": metrics},
                                     indent=2, default=str))
    return metrics


def run_demo(
    out_dir: PathLike,
    profile: Profile | str = "quick",
    data_root: PathLike | None = None,
    *,
    seed: int | None = None,
    variants: Sequence[str] = tuple(VARIANTS),
    force: bool = False,
    progress: bool = True,
    options: TrainerOptions | None = None,
) -> DemoResult:
    """Run everything: data, stage 1, screening, stage 2, every variant, the submission, the report.

    Args:
        out_dir: Demo folder. Holds ``data/`` (synthetic data, when ``data_root`` is not given),
            the stage folders, ``submission/``, ``report.md``, ``metrics.json`` and ``figures/``.
        profile: Profile or its name.
        data_root: An IUGC folder to use instead of synthetic data.
        seed: Seed of the data and every stage (default: the profile's).
        variants: Variants to train and report.
        force: Re-run stages that are already done.
        progress: Progress bars.
        options: Lightning settings.

    Returns:
        A :class:`DemoResult`.
    """
    from iugc_aop.report import write_report

    t0 = time.perf_counter()
    load_start = list(os.getloadavg())
    profile = get_profile(profile)
    options = options or TrainerOptions()
    seed = profile.seed if seed is None else seed
    out = Path(out_dir)
    if data_root is not None:  # one clear error naming what is missing, before anything is written
        load_dataset(data_root, progress=False)
    out.mkdir(parents=True, exist_ok=True)
    _say(profile.describe())
    times: dict[str, float] = {}

    def timed(key: str, fn: Any, *a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        res = fn(*a, **kw)
        times[key] = round(time.perf_counter() - t, 2)
        return res

    root = Path(data_root) if data_root is not None else timed("data", prepare_demo_data, out, profile, seed, progress)
    load_dataset(root, progress=False)  # the whole layout up front: one clear error if anything is missing
    common: dict[str, Any] = {"force": force, "progress": progress}
    s1 = timed("stage1", stage_pretrain, root, out, profile, seed=seed, options=options, **common)
    sel = timed("select", stage_select, root, out, profile, **common)
    s2 = timed("stage2", stage_pretrain_temporal, root, out, profile, seed=seed, options=options, **common)
    fts: dict[str, FinetuneStageResult] = {}
    evals: dict[str, EvaluationResult] = {}
    for name in variants:
        fts[name] = timed(f"finetune {name}", stage_finetune, name, root, out, profile, seed=seed,
                          options=options, **common)
        evals[name] = timed(f"evaluate {name}", stage_evaluate, name, root, out, profile, **common)
    submission_dir: Path | None = None
    submission_metrics: dict[str, Any] | None = None
    if "ssl_unet" in fts:
        t = time.perf_counter()
        submission_dir = out / "submission"
        submission_metrics = _submission_stage(fts["ssl_unet"].checkpoint, submission_dir, root, force)
        if submission_metrics is None:
            submission_dir = None
        times["submission"] = round(time.perf_counter() - t, 2)
    times["total before report"] = round(time.perf_counter() - t0, 2)
    load_end = list(os.getloadavg())
    report = write_report(
        out, profile, root, evals, finetunes=fts, pretrain=[s1, s2], selection=sel,
        submission_metrics=submission_metrics, submission_dir=submission_dir, stage_seconds=times,
        load={"start": load_start, "end": load_end}, seed=seed,
    )
    seconds = time.perf_counter() - t0
    times["total"] = round(seconds, 2)
    headline = {k: {"mre_px": v["mre_px"], "aop_mae_deg": v["aop_mae_deg"]} for k, v in report.metrics.items()}
    (out / "run.json").write_text(json.dumps({"data_root": str(root), "profile": profile.to_dict(), "seed": seed,
                                              "stage_seconds": times, "load": {"start": load_start, "end": load_end},
                                              "cpu_count": os.cpu_count()}, indent=2))
    return DemoResult(out, root, report.report, report.metrics_json, submission_dir, headline, times, seconds,
                      {"start": load_start, "end": load_end}, report.verdict)

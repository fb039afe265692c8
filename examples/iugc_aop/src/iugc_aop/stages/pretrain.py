"""Stages 1 and 2: pre-training on unlabelled frames, then MoCo v2 on adjacent frames of the screened sequences."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from iugc_aop.profiles import Profile, get_profile
from iugc_aop.stages.cache import StageCache
from iugc_aop.stages.common import PathLike, data_is_real, load_dataset, say, unlabelled_pool
from iugc_aop.variants import get_pretraining
from sslkeypoint.configs import PretrainConfig, TrainerConfig
from sslkeypoint.data import data_fingerprint, file_digest
from sslkeypoint.recipes import run_pretraining

__all__ = ["PretrainStageResult", "stage_pretrain", "stage_pretrain_temporal"]


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
        final_loss: Last epoch's loss (InfoNCE for a contrastive method, squared error for reconstruction).
        seconds: Wall time of this call.
        skipped: Whether the stage was already done.
        queue_size: MoCo queue length used (after capping; 0 without a queue); chance-level
            InfoNCE is ``ln(queue_size + 1)``.
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


def _final_loss(metrics: dict[str, float]) -> float | None:
    for key in ("train_loss_epoch", "train_loss"):
        if key in metrics and math.isfinite(metrics[key]):
            return float(metrics[key])
    return None


def _run(
    config: PretrainConfig, name: str, run_dir: Path, profile: Profile, data_key: Any, force: bool, progress: bool,
    trainer: TrainerConfig, **data: Any,
) -> PretrainStageResult:
    start = time.perf_counter()
    out = run_dir / name
    cache = StageCache(out, {"config": config.to_dict(), "data": data_key}, profile.name)
    with cache.lock():
        saved = cache.load(force)
        if saved is not None:
            return PretrainStageResult(
                stage=name, out_dir=out, encoder_path=out / "encoder.safetensors",
                checkpoint=out / "checkpoints" / "last.ckpt", items=int(saved.get("items", 0)),
                global_step=int(saved.get("global_step", 0)), final_loss=saved.get("final_loss"),
                seconds=time.perf_counter() - start, skipped=True, queue_size=int(saved.get("queue_size", 0)),
            )
        cache.start()
        res = run_pretraining(config, out_dir=out, trainer=trainer, resume=True, progress=progress, **data)
        items = len(data["images"]) if "images" in data else sum(max(0, len(q) - 1) for q in data["sequences"])
        result = PretrainStageResult(
            stage=name, out_dir=out, encoder_path=res.encoder_path, checkpoint=res.last_checkpoint, items=items,
            global_step=res.global_step, final_loss=_final_loss(res.metrics), seconds=time.perf_counter() - start,
            queue_size=res.queue_size,
        )
        cache.finish({"items": items, "global_step": res.global_step, "final_loss": result.final_loss,
                      "queue_size": res.queue_size, "seconds": result.seconds})
        return result


def stage_pretrain(
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    pretraining: str = "moco",
    extra_images: Sequence[PathLike] = (),
    seed: int | None = None,
    name: str | None = None,
    force: bool = False,
    progress: bool = True,
    trainer: TrainerConfig | None = None,
) -> PretrainStageResult:
    """Stage 1: a pre-training on every unlabelled image and the labelled training images (labels unused).

    The images are the training cases, the frames of every sequence and the unordered unlabelled
    images (:attr:`~iugc_aop.formats.IUGCDataset.unlabelled`, e.g. PSFHS), each file once, plus
    ``extra_images``.

    Args:
        data_root: IUGC folder (``Training/`` is read).
        run_dir: Run folder; the stage writes ``run_dir/<name>/`` (checkpoints, CSV logs,
            ``encoder.safetensors``, ``unet.safetensors`` for a pre-training of the decoder too,
            ``stage.json``).
        profile: Profile or its name.
        pretraining: A :data:`~iugc_aop.variants.PRETRAININGS` name (default: MoCo v2, the paper's).
        extra_images: More unlabelled image files (e.g. another data set of the same modality).
        seed: Seed (default: the profile's).
        name: Sub-folder name (default: the pre-training's folder, ``stage1`` for MoCo v2).
        force: Re-run even if done (the stage folder is removed first).
        progress: Progress bars.
        trainer: Where to run (default: the profile's :class:`~sslkeypoint.configs.TrainerConfig`).

    Returns:
        A :class:`PretrainStageResult`.

    Raises:
        iugc_aop.formats.IUGCLayoutError: If ``Training/`` is incomplete.
    """
    profile = get_profile(profile, real=data_is_real(data_root))
    seed = profile.seed if seed is None else seed
    pre = get_pretraining(pretraining)
    name = name or pre.folder
    ds = load_dataset(data_root, ("train", "unlabeled"))
    own = unlabelled_pool(ds)
    images = list(dict.fromkeys([*own, *(Path(p) for p in extra_images)]))
    config = dataclasses.replace(pre.config(profile), seed=seed)
    extra = f" + {len(images) - len(own)} other images" if len(images) > len(own) else ""
    say(f"stage 1: {config.method.describe()} on {len(images)} images ({len(ds.train)} labelled training images "
        f"without labels + {ds.num_frames} frames + {len(ds.unlabelled)} unordered images{extra}, each image "
        f"once) -> {Path(run_dir) / name}")
    return _run(config, name, Path(run_dir), profile, data_fingerprint(images), force, progress,
                trainer or profile.trainer, images=images)


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
    trainer: TrainerConfig | None = None,
) -> PretrainStageResult:
    """Stage 2: MoCo v2 on pairs of adjacent frames, initialised from stage 1.

    Args:
        data_root: IUGC folder.
        run_dir: Run folder; writes ``run_dir/<name>/``.
        profile: Profile or its name.
        sequences: ``"selected"`` (the sequences kept by :func:`~iugc_aop.stages.stage_select`,
            read from ``run_dir/select/selection.json``), ``"all"`` (no screening, an ablation) or
            explicit frame lists.
        init_from: Stage-1 checkpoint or encoder (default ``run_dir/stage1/checkpoints/last.ckpt``).
        seed: Seed (default: the profile's).
        name: Sub-folder name.
        force: Re-run even if done.
        progress: Progress bars.
        trainer: Where to run (default: the profile's).

    Returns:
        A :class:`PretrainStageResult`.

    Raises:
        FileNotFoundError: If stage 1 or the selection is missing.
    """
    profile = get_profile(profile, real=data_is_real(data_root))
    seed = profile.seed if seed is None else seed
    run = Path(run_dir)
    init = Path(init_from) if init_from is not None else run / "stage1" / "checkpoints" / "last.ckpt"
    if not init.is_file():
        raise FileNotFoundError(f"stage-1 result {init} not found: run the 'pretrain' stage first")
    if isinstance(sequences, str):
        ds = load_dataset(data_root, ("unlabeled",))
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
    config = dataclasses.replace(profile.pretrain_temporal, seed=seed)
    data_key = {"sequences": data_fingerprint(seqs), "init": file_digest(init)}
    say(f"stage 2: MoCo v2 on adjacent frames of {len(seqs)} sequences "
        f"({sum(len(s) - 1 for s in seqs)} pairs), from {init} -> {run / name}")
    return _run(config, name, run, profile, data_key, force, progress, trainer or profile.trainer,
                sequences=seqs, init_from=init)

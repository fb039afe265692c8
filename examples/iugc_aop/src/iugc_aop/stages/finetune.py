"""Stage 3: heatmap fine-tuning of one variant on a budget of labelled images."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from iugc_aop.formats import IUGCDataset
from iugc_aop.profiles import Profile, get_profile
from iugc_aop.stages.cache import StageCache
from iugc_aop.stages.common import (
    PathLike,
    data_is_real,
    load_dataset,
    repeatable,
    say,
    similarity_group,
    unlabelled_pool,
)
from iugc_aop.variants import Variant, finetune_config, get_pretraining, get_variant, make_codec
from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.configs import TrainerConfig
from sslkeypoint.data import (
    KeypointRecord,
    data_fingerprint,
    file_digest,
    records_fingerprint,
    split_records,
)
from sslkeypoint.heatmaps import codec_to_dict
from sslkeypoint.recipes import run_finetuning

__all__ = ["FinetuneStageResult", "holdout_split", "labelled_subset", "ssl_encoder_path", "stage_finetune"]

T = TypeVar("T")


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
        pseudo_labels: Pseudo-label counts of every student round (pseudo-label variants), else empty.
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
    pseudo_labels: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def labelled_subset(records: Sequence[T], budget: int | None, seed: int = 0) -> list[T]:
    """The first ``budget`` records of a seeded permutation, in their original order.

    Budgets are nested: for one seed the 10-image subset lies inside the 30-image one.

    Args:
        records: Labelled training records.
        budget: Number to keep (``None`` or ``>= len(records)``: all).
        seed: Permutation seed.

    Returns:
        The subset.

    Raises:
        ValueError: If ``budget`` is not a whole number >= 1 (or ``None``).

    Examples:
        >>> recs = list(range(10))
        >>> small, large = labelled_subset(recs, 3, seed=1), labelled_subset(recs, 6, seed=1)
        >>> len(small), set(small) <= set(large)
        (3, True)
    """
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ValueError(f"a label budget is a whole number >= 1, or None for all; got {budget!r}")
    items = list(records)
    if budget is None or budget >= len(items):
        return items
    order = np.random.default_rng(seed).permutation(len(items))[:budget]
    return [items[i] for i in sorted(order.tolist())]


def ssl_encoder_path(run_dir: PathLike, dataset: IUGCDataset, pretraining: str = "moco") -> Path:
    """The pre-trained weights a variant of ``pretraining`` starts from.

    MoCo v2 (``"moco"``): stage 2's encoder, or stage 1's for data without sequences (PSFHS:
    single images have no stage 2). Another pre-training: its stage-1 folder's
    ``unet.safetensors`` when it trains the decoder too, else its ``encoder.safetensors``.
    """
    pre = get_pretraining(pretraining)
    if pre.temporal and dataset.sequences:
        return Path(run_dir) / "stage2" / "encoder.safetensors"
    return Path(run_dir) / pre.folder / ("unet.safetensors" if pre.trains_decoder else "encoder.safetensors")


def holdout_split(
    records: Sequence[KeypointRecord], val_fraction: float, seed: int
) -> tuple[list[KeypointRecord], list[KeypointRecord]]:
    """The fine-tuning hold-out split of the labelled records, by similarity group.

    :func:`sslkeypoint.data.split_records` with ``group``: records sharing ``meta["group"]``
    (PSFHS similarity groups) stay on one side; a record without one is its own group, so IUGC
    data is split record by record as before.

    Examples:
        >>> import numpy as np
        >>> recs = [KeypointRecord(f"{i}.png", np.zeros((3, 2)), meta={"group": i // 2}) for i in range(10)]
        >>> train, val = holdout_split(recs, 0.2, seed=0)
        >>> sorted({r.meta["group"] for r in train} & {r.meta["group"] for r in val})
        []
    """
    return split_records(list(records), val_fraction=val_fraction, seed=seed, group=similarity_group)


def stage_finetune(
    variant: str | Variant,
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    label_budget: int | Literal["profile"] | None = "profile",
    seed: int | None = None,
    init_encoder: PathLike | None = None,
    labelled_cases: Sequence[KeypointRecord] | None = None,
    name: str | None = None,
    force: bool = False,
    progress: bool = True,
    trainer: TrainerConfig | None = None,
) -> FinetuneStageResult:
    """Stage 3: fine-tune one variant on the labelled training images (8:2 hold-out split by group).

    Args:
        variant: A :data:`~iugc_aop.variants.VARIANTS` name (or :class:`~iugc_aop.variants.Variant`).
        data_root: IUGC folder.
        run_dir: Run folder; writes ``run_dir/finetune/<name>/``.
        profile: Profile or its name.
        label_budget: Labelled images used (``"profile"``: the profile's; ``None``: all); the
            subset is :func:`labelled_subset` with the run's seed.
        seed: Seed of the subset, the split and the training (default: the profile's).
        init_encoder: Pre-trained weights for a variant with a pre-training (default
            :func:`ssl_encoder_path`, e.g. ``run_dir/stage2/encoder.safetensors``, or stage 1's for
            data without sequences); ignored by the other variants.
        labelled_cases: The labelled training cases to use, chosen by the caller (e.g. with
            :func:`sslkeypoint.selection.select_images`); ``None``: :func:`labelled_subset` of
            ``label_budget``.
        name: Sub-folder name (default: the variant's name).
        force: Re-run even if done.
        progress: Progress bars.
        trainer: Where to run (default: the profile's; deterministic on a CPU).

    Returns:
        A :class:`FinetuneStageResult`.

    Raises:
        FileNotFoundError: If an SSL variant's encoder is missing (run ``pretrain-temporal``).
    """
    start = time.perf_counter()
    v = get_variant(variant)
    profile = get_profile(profile, real=data_is_real(data_root))
    seed = profile.seed if seed is None else seed
    budget = profile.label_budget if label_budget == "profile" else label_budget
    run = Path(run_dir)
    out = run / "finetune" / (name or v.name)
    ds = load_dataset(data_root, ("train", "unlabeled"))
    init: Path | None = None
    if v.pretraining is not None:
        init = Path(init_encoder) if init_encoder is not None else ssl_encoder_path(run, ds, v.pretraining)
        if not init.is_file():
            stage = ("'pretrain-temporal'" if ds.sequences and get_pretraining(v.pretraining).temporal
                     else f"'pretrain --pretraining {v.pretraining}'")
            raise FileNotFoundError(f"pre-trained weights {init} not found: run {stage} first")
    records = list(labelled_cases) if labelled_cases is not None else labelled_subset(ds.train, budget, seed)
    config = finetune_config(v, profile, init, seed)
    split = holdout_split(records, config.val_fraction, seed)
    unlabelled = unlabelled_pool(ds, leave_out=split[1]) if v.uses_unlabelled else None
    codec = make_codec(v, config)
    init_key = file_digest(init) if init is not None else None
    key = {"config": {**config.run_settings(), "init_encoder": None}, "init": init_key, "codec": codec_to_dict(codec),
           "data": {"labelled": len(records), "content": records_fingerprint(records),
                    **({"unlabelled": data_fingerprint(unlabelled)} if unlabelled is not None else {})}}
    cache = StageCache(out, key, profile.name)
    with cache.lock():
        saved = cache.load(force)
        if saved is not None and cache.path(saved.get("checkpoint", "")).is_file():
            return FinetuneStageResult(v.name, out, cache.path(saved["checkpoint"]), dict(saved.get("best_metrics", {})),
                                       saved.get("best_epoch"), int(saved.get("epochs", 0)), len(records),
                                       time.perf_counter() - start, skipped=True,
                                       pseudo_labels=list(saved.get("pseudo_labels", [])))
        cache.start()
        pool = f" and {len(unlabelled)} unlabelled images" if unlabelled is not None else ""
        say(f"stage 3: fine-tuning {v.name} ({v.title}) on {len(records)} labelled images{pool} -> {out}")
        res = run_finetuning(config, split, out, trainer=repeatable(trainer or profile.trainer), codec=codec,
                             resume=True, progress=progress, unlabelled=unlabelled)
        ckpt = res.best_checkpoint or res.last_checkpoint
        if ckpt is None:
            raise RuntimeError(f"fine-tuning {v.name} wrote no checkpoint under {out}")
        seconds = time.perf_counter() - start
        described = {"name": v.name, "title": v.title, "encoder": v.encoder, "codec": v.codec,
                     "pretraining": v.pretraining, "method": v.method.to_dict()}
        write_text_atomic(out / "variant.json", json.dumps({**described, "labelled": len(records), "seed": seed,
                                                      "budget": budget,
                                                      "unlabelled": len(unlabelled) if unlabelled else 0}, indent=2))
        cache.finish({"checkpoint": cache.stored(ckpt), "best_metrics": res.best_metrics, "best_epoch": res.best_epoch,
                      "epochs": res.epochs, "seconds": seconds, "pseudo_labels": res.pseudo_labels})
        return FinetuneStageResult(v.name, out, Path(ckpt), dict(res.best_metrics), res.best_epoch, res.epochs,
                                   len(records), seconds, pseudo_labels=list(res.pseudo_labels))

"""What every stage shares: reading the data it needs, messages, the trainer of a stage."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from collections.abc import Hashable, Sequence
from pathlib import Path

import torch

from iugc_aop.formats import IUGCDataset, is_psfhs, read_iugc, read_psfhs
from sslkeypoint.configs import TrainerConfig
from sslkeypoint.data import KeypointRecord

__all__ = [
    "PSFHS_SPLIT_SEED",
    "PSFHS_TEST_FRACTION",
    "PathLike",
    "data_is_real",
    "load_dataset",
    "psfhs_cache_dir",
    "repeatable",
    "say",
    "similarity_group",
    "unlabelled_pool",
]

PathLike = str | os.PathLike[str]


def say(message: str) -> None:
    """A progress message on stderr (stdout carries the commands' results)."""
    print(message, file=sys.stderr, flush=True)


#: Seed of the PSFHS testing split: fixed, so that every run and seed is scored on the same cases.
PSFHS_SPLIT_SEED = 0
#: Share of the PSFHS similarity groups held out for testing.
PSFHS_TEST_FRACTION = 0.2


def psfhs_cache_dir(data_root: PathLike) -> Path:
    """Where the PNG copies of a PSFHS ``image_mha/`` folder are kept (a per-user cache folder).

    ``$XDG_CACHE_HOME/iugc_aop/psfhs-<digest of the folder's absolute path>`` (``~/.cache`` when
    ``XDG_CACHE_HOME`` is not set): the data folder itself is never written into.
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(Path(data_root).resolve()).encode()).hexdigest()[:16]
    return base / "iugc_aop" / f"psfhs-{digest}"


def load_dataset(
    data_root: PathLike, parts: Sequence[str] = ("train", "unlabeled", "validation", "testing"), progress: bool = False
) -> IUGCDataset:
    """Read the parts of a data folder a stage needs (layout checked, images decoded lazily).

    An IUGC 2025 folder is read with :func:`~iugc_aop.formats.read_iugc`. A PSFHS folder
    (:func:`~iugc_aop.formats.is_psfhs`) is read whole with :func:`~iugc_aop.formats.read_psfhs`:
    :data:`PSFHS_TEST_FRACTION` of its similarity groups form ``testing`` (fixed by
    :data:`PSFHS_SPLIT_SEED`), every other case is a labelled training case (the fine-tuning
    stage draws its label budget from them and holds out a share by group), and ``validation``
    is empty; the images of the training groups are also the stage-1 images.

    Raises:
        iugc_aop.formats.IUGCLayoutError: When a required folder or file is missing (all listed).
    """
    if is_psfhs(data_root):
        return read_psfhs(data_root, seed=PSFHS_SPLIT_SEED, test_fraction=PSFHS_TEST_FRACTION, val_fraction=0.0,
                          cache_dir=psfhs_cache_dir(data_root), progress=progress)
    return read_iugc(data_root, parts=parts, check_images=False, progress=progress)


def data_is_real(data_root: PathLike) -> bool:
    """Whether a data folder holds real images: PSFHS, or IUGC data not written by :mod:`iugc_aop.synth`."""
    root = Path(data_root)
    return is_psfhs(root) or not (root / "synthetic_truth.json").is_file()


def similarity_group(record: KeypointRecord) -> Hashable:
    """The similarity group of a case: ``meta["group"]`` (PSFHS), else the case's own file.

    Examples:
        >>> import numpy as np
        >>> similarity_group(KeypointRecord("a.png", np.zeros((3, 2)), meta={"group": 7}))
        ('group', 7)
        >>> similarity_group(KeypointRecord("a.png", np.zeros((3, 2))))
        ('file', 'a.png')
    """
    group = record.meta.get("group")
    return ("group", group) if group is not None else ("file", str(record.path))


def unlabelled_pool(dataset: IUGCDataset, leave_out: Sequence[KeypointRecord] = ()) -> list[Path]:
    """The unlabelled images of the mean-teacher variants and of pre-training: every training image, each once.

    The labelled training cases (without their labels: the teacher's predictions supervise the
    network on every one of them), the unordered unlabelled images and the frames of every
    sequence. Validation and Testing images are never part of it.

    Args:
        dataset: The data.
        leave_out: Cases whose similarity groups stay out of the pool: the fine-tuning hold-out
            cases, so that neither they nor their near-duplicate frames are trained on and the
            validation figures that pick the best checkpoint are those of unseen images.
    """
    held_out = {similarity_group(r) for r in leave_out}
    excluded = {Path(r.path) for r in dataset.train if similarity_group(r) in held_out}
    listed = [Path(r.path) for r in dataset.train] + list(dataset.unlabelled)
    listed += [p for frames in dataset.sequences.values() for p in frames]
    return [p for p in dict.fromkeys(listed) if p not in excluded]


def repeatable(trainer: TrainerConfig) -> TrainerConfig:
    """``trainer`` with deterministic algorithms on a CPU (repeatable runs); several CUDA kernels have none."""
    cpu = trainer.accelerator == "cpu" or not torch.cuda.is_available()
    return dataclasses.replace(trainer, deterministic=cpu)

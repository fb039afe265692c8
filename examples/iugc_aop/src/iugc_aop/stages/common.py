"""What every stage shares: reading the data it needs, messages, the trainer of a stage."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence

import torch

from iugc_aop.formats import IUGCDataset, read_iugc
from sslkeypoint.configs import TrainerConfig

__all__ = ["PathLike", "load_dataset", "repeatable", "say"]

PathLike = str | os.PathLike[str]


def say(message: str) -> None:
    """A progress message on stderr (stdout carries the commands' results)."""
    print(message, file=sys.stderr, flush=True)


def load_dataset(
    data_root: PathLike, parts: Sequence[str] = ("train", "unlabeled", "validation", "testing"), progress: bool = False
) -> IUGCDataset:
    """Read the parts of an IUGC folder a stage needs (layout checked, images decoded lazily).

    Raises:
        iugc_aop.formats.IUGCLayoutError: When a required folder or file is missing (all listed).
    """
    return read_iugc(data_root, parts=parts, check_images=False, progress=progress)


def repeatable(trainer: TrainerConfig) -> TrainerConfig:
    """``trainer`` with deterministic algorithms on a CPU (repeatable runs); several CUDA kernels have none."""
    cpu = trainer.accelerator == "cpu" or not torch.cuda.is_available()
    return dataclasses.replace(trainer, deterministic=cpu)

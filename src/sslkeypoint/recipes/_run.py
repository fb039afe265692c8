"""What both recipes share: run files, the run-folder check, stopping on a signal."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

from sslkeypoint._utils import plain
from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.data import file_digest
from sslkeypoint.lightning.checkpoint_io import describe_checkpoint
from sslkeypoint.runs import RunFolder, RunInterrupted, open_run_folder
from sslkeypoint.weights import check_weight_path

__all__: list[str] = []


#: Lightning's loggers of boilerplate lines (devices found, a cloud-logging tip, "fit stopped").
_LIGHTNING_INFO = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                   "lightning_fabric.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def quiet_lightning() -> None:
    """Keep Lightning's boilerplate out of a run's output: its informational lines (which devices
    exist, advertisements) go below WARNING unless the user configured those loggers, and a
    deprecation warning of Lightning's own code under recent torch is hidden. Warnings the user
    can act on stay."""
    import logging
    import warnings

    for name in _LIGHTNING_INFO:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(plain(data), indent=2, default=str))


def _weights_identity(path: str | PathLike[str] | None) -> dict[str, str] | None:
    """A weight file as its name and content digest: a run is tied to the weights, not to their place."""
    if path is None:
        return None
    return {"file": Path(path).name, "digest": file_digest(check_weight_path(path))}


def _open(out: Path, kind: str, settings: dict[str, Any], data: str, legacy: dict[str, Any], resume: bool,
          fit: pl.Trainer, upgrade: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None) -> RunFolder:
    """Check the run folder (every process), then record it (process 0)."""
    run = open_run_folder(out, kind, settings, data, resume=resume, legacy_settings=legacy,
                          writer=fit.is_global_zero, upgrade=upgrade)
    if fit.is_global_zero:
        for note in run.notes:  # rare and worth seeing: a copied, moved, adopted or restarted folder
            print(note, file=sys.stderr, flush=True)
        run.write()
    return run


def _saved_checkpoint(path: Path) -> str | None:
    """``"checkpoints/last.ckpt (after epoch E, step S)"`` for a checkpoint file, else ``None``."""
    return describe_checkpoint(path) if path.is_file() else None


@contextlib.contextmanager
def _stops_on_signal(fit: pl.Trainer, out: Path, saved: Callable[[], list[str]],
                     on_stop: Callable[[int], None]) -> Iterator[None]:
    """Turn Lightning's exit on ``SIGTERM`` (status 0) or ``SIGINT`` (status 1) into :class:`RunInterrupted`.

    ``on_stop(signum)`` records the partial result first; the message says what was saved.
    """
    try:
        yield
    except SystemExit as exc:
        if isinstance(exc, RunInterrupted):
            raise
        if isinstance(exc, SIGTERMException):
            signum = signal.SIGTERM
        elif isinstance(exc.__context__, KeyboardInterrupt):
            signum = signal.SIGINT
        else:
            raise
        on_stop(signum)
        stop = RunInterrupted(signum, out, saved() if fit.is_global_zero else [])
        if fit.is_global_zero:
            print(stop, file=sys.stderr, flush=True)
        raise stop from None

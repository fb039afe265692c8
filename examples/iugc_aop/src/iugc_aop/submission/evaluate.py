"""Load a submission folder the way the challenge does and score it on labelled records."""

from __future__ import annotations

import importlib.util
import math
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iugc_aop.landmarks import LANDMARK_NAMES, MEASURES
from sslkeypoint.data import KeypointRecord, open_image
from sslkeypoint.metrics import KeypointMetrics

__all__ = ["evaluate_submission", "load_submission"]


def load_submission(submission_dir: str | Path) -> Any:
    """Import ``model.py`` from a submission folder by its path and return ``model().load(dir)``.

    This is what the challenge does: the module is loaded from the file (under a unique module
    name, so several submissions can be loaded in one process), instantiated with no argument,
    and given the folder.

    Args:
        submission_dir: The folder with ``model.py`` (and the files its ``load`` reads).

    Returns:
        The loaded ``model`` instance (whatever ``load`` returned, else the instance itself).

    Raises:
        FileNotFoundError: If ``model.py`` is missing.
        ValueError: If it defines no ``model`` class.

    Examples:
        >>> load_submission("no_such_folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: the submission folder no_such_folder has no model.py
    """
    folder = Path(submission_dir)
    path = folder / "model.py"
    if not path.is_file():
        raise FileNotFoundError(f"the submission folder {folder} has no model.py")
    name = f"_iugc_submission_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    cls = getattr(module, "model", None)
    if cls is None:
        raise ValueError(f"{path} defines no class 'model'")
    instance = cls()
    loaded = instance.load(str(folder))
    return loaded if loaded is not None else instance


def evaluate_submission(
    submission_dir: str | Path,
    records: Sequence[KeypointRecord],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a submission folder through the challenge interface on labelled records.

    Each record's image is decoded as the library reads it, upright (an EXIF orientation applied:
    :func:`sslkeypoint.data.open_image`, the pixels the labels were placed in), converted to RGB
    and given to the submission's ``predict``; the ``(6,)`` answers are scored against the records' keypoints
    (PS1, PS2, FH1, in original pixels) with
    :class:`~sslkeypoint.metrics.KeypointMetrics` (``keypoint_names=LANDMARK_NAMES``,
    ``measures=MEASURES``: the AoP as ``aop``).

    Args:
        submission_dir: The folder with ``model.py``.
        records: Labelled records (``keypoints`` ``(3, 2)`` in original pixels).
        progress: Show a progress bar.

    Returns:
        The metrics' dict (``mre_px``, ``aop_mae_deg``, ``per_landmark_px``, ``missing``,
        ``failed``, ``count``, ...) plus ``predictions`` (one dict per record: ``path``,
        ``keypoints`` ``[[x, y], ...]`` in original pixels and each measure, ``aop`` in
        degrees) and ``ms_per_image`` (mean wall time of ``predict``).

    Raises:
        ValueError: If a record has no keypoints or not three, or ``predict`` returns something
            other than six numbers (the message names the image).
    """
    sub = load_submission(submission_dir)
    metrics = KeypointMetrics(keypoint_names=LANDMARK_NAMES, measures=MEASURES)
    items: Any = records
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(records, desc="evaluate submission", unit="image")
    predictions: list[dict[str, Any]] = []
    seconds = 0.0
    for i, rec in enumerate(items):
        if rec.keypoints is None or np.asarray(rec.keypoints).shape != (3, 2):
            shape = None if rec.keypoints is None else np.asarray(rec.keypoints).shape
            raise ValueError(f"record {i} ({rec.path}): expected keypoints of shape (3, 2); got {shape}")
        img = open_image(rec.path).convert("RGB")
        start = time.perf_counter()
        out = sub.predict(img)
        seconds += time.perf_counter() - start
        arr = np.asarray(out, dtype=np.float64)
        if arr.shape != (6,):
            raise ValueError(f"predict({rec.path}) returned shape {arr.shape}; expected (6,)")
        pred = torch.from_numpy(arr.reshape(3, 2))
        target = torch.as_tensor(np.asarray(rec.keypoints, dtype=np.float64))
        visible = None if rec.visible is None else torch.as_tensor(np.asarray(rec.visible, dtype=bool))[None]
        metrics.update(pred[None], target[None], visible=visible)
        entry: dict[str, Any] = {"path": str(rec.path), "keypoints": pred.tolist()}
        entry.update({name: float(measure(pred)) for name, measure in MEASURES.items()})
        predictions.append(entry)
    result = dict(metrics.compute())
    result["predictions"] = predictions
    result["ms_per_image"] = 1000.0 * seconds / len(predictions) if predictions else math.nan
    return result

"""Scoring a predictor on labelled records: :func:`evaluate` and its :class:`Evaluation`.

One call predicts every record's image (in its original pixels, with its own pixel size when it has
one), scores the predictions with :class:`~sslkeypoint.metrics.KeypointMetrics` and keeps the
per-image figures, so that the result can be read as a table, saved as JSON and CSV, and drawn.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from sslkeypoint._utils import plain
from sslkeypoint.atomic import save_figure, write_text_atomic
from sslkeypoint.data.records import KeypointRecord
from sslkeypoint.measures import Measure, compute_measures, measure_unit
from sslkeypoint.metrics.functional import radial_error
from sslkeypoint.metrics.landmarks import KeypointMetrics

__all__ = ["Evaluation", "Predictor", "evaluate"]


class Predictor(Protocol):
    """What :func:`evaluate` needs of a predictor (:class:`~sslkeypoint.inference.KeypointPredictor` is one)."""

    keypoint_names: tuple[str, ...] | None
    measures: dict[str, Measure]

    def predict(self, images: Any, *, progress: bool = False, pixel_size: Any = None) -> Any:
        """Predictions with ``keypoints`` ``(N, K, 2)`` in original pixels."""
        ...


@dataclass
class Evaluation:
    """A predictor scored on labelled records.

    Attributes:
        metrics: :meth:`KeypointMetrics.compute <sslkeypoint.metrics.KeypointMetrics.compute>`:
            mean radial error (px, and mm where images have pixel sizes), per landmark, SDR,
            missing and failure rates, every measure's error.
        table: The same as readable text (:meth:`KeypointMetrics.table`).
        files: The ``N`` image files, in record order.
        keypoint_names: The ``K`` landmark names.
        predicted: ``(N, K, 2)`` predicted keypoints, original pixels.
        target: ``(N, K, 2)`` labelled keypoints (NaN: missing).
        errors_px: ``(N, K)`` radial errors in px (NaN: missing target).
        errors_mm: ``(N, K)`` radial errors in mm, or ``None`` when no image has a pixel size.
        measures: Measure name → ``(predicted (N,), labelled (N,))`` values.
        units: Measure name → unit.
    """

    metrics: dict[str, Any]
    table: str
    files: list[str]
    keypoint_names: tuple[str, ...]
    predicted: Tensor
    target: Tensor
    errors_px: Tensor
    errors_mm: Tensor | None = None
    measures: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.table

    def rows(self) -> tuple[list[str], list[list[Any]]]:
        """Per-image header and rows: file, error per landmark (px, mm), each measure predicted and labelled."""
        header = ["file"] + [f"{n}_error_px" for n in self.keypoint_names]
        if self.errors_mm is not None:
            header += [f"{n}_error_mm" for n in self.keypoint_names]
        for name in self.measures:
            unit = self.units[name]
            header += [f"{name}_predicted_{unit}", f"{name}_labelled_{unit}", f"{name}_error_{unit}"]
        rows = []
        for i, file in enumerate(self.files):
            row: list[Any] = [file] + [_number(v) for v in self.errors_px[i].tolist()]
            if self.errors_mm is not None:
                row += [_number(v) for v in self.errors_mm[i].tolist()]
            for pred, true in self.measures.values():
                p, t = float(pred[i]), float(true[i])
                row += [_number(p), _number(t), _number(abs(p - t))]
            rows.append(row)
        return header, rows

    def save(self, folder: str | os.PathLike[str], *, figure: bool = True) -> Path:
        """Write ``metrics.json``, ``per_image.csv``, ``table.txt`` and (with matplotlib) ``errors.png``.

        Returns:
            The folder.
        """
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "metrics.json", json.dumps(plain(self.metrics), indent=2, default=str))
        header, rows = self.rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        write_text_atomic(out / "per_image.csv", buffer.getvalue())
        write_text_atomic(out / "table.txt", self.table + "\n")
        if figure:
            try:
                self.figure(out / "errors.png")
            except ImportError:
                pass  # matplotlib is the optional 'viz' extra: the tables are written anyway
        return out

    def figure(self, path: str | os.PathLike[str]) -> Path:
        """Draw the errors: one box per landmark (mm when known, else px), and predicted against
        labelled values for each measure. Needs matplotlib (``pip install 'sslkeypoint[viz]'``)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        errors, unit = (self.errors_mm, "mm") if self.errors_mm is not None else (self.errors_px, "px")
        panels = 1 + len(self.measures)
        fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.6), squeeze=False)
        ax = axes[0, 0]
        data = [e[np.isfinite(e)] for e in errors.numpy().T]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(self.keypoint_names) + 1), self.keypoint_names,
                      rotation=30 if len(self.keypoint_names) > 6 else 0)
        ax.set_ylabel(f"radial error ({unit})")
        ax.set_title(f"landmark errors, {len(self.files)} images")
        ax.grid(axis="y", alpha=0.3)
        for j, (name, (pred, true)) in enumerate(self.measures.items(), start=1):
            ax = axes[0, j]
            p, t = pred.numpy(), true.numpy()
            ok = np.isfinite(p) & np.isfinite(t)
            ax.scatter(t[ok], p[ok], s=10, alpha=0.7)
            if ok.any():
                lo, hi = float(min(t[ok].min(), p[ok].min())), float(max(t[ok].max(), p[ok].max()))
                ax.plot([lo, hi], [lo, hi], color="grey", lw=1)
            u = self.units[name]
            ax.set_xlabel(f"labelled {name} ({u})")
            ax.set_ylabel(f"predicted {name} ({u})")
            mae = float(np.abs(p[ok] - t[ok]).mean()) if ok.any() else math.nan
            ax.set_title(f"{name}: MAE {mae:.2f} {u}")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        return save_figure(fig, path, dpi=110)


def _number(value: float) -> float | str:
    return "" if not math.isfinite(value) else round(value, 4)


def evaluate(
    predictor: Predictor,
    records: Sequence[KeypointRecord],
    *,
    keypoint_names: Sequence[str] | None = None,
    sdr_radii: Sequence[float] = (5.0, 10.0, 20.0, 40.0),
    progress: bool = False,
) -> Evaluation:
    """Predict every record's image and score the predictions against its labels.

    Errors are in each image's original pixels, and in mm for images whose record has a pixel size
    (:attr:`KeypointRecord.pixel_size`); a length measure is scored in mm with it too. Landmarks
    missing from a record (NaN) are counted as missing, not scored.

    Args:
        predictor: E.g. :class:`~sslkeypoint.inference.KeypointPredictor`.
        records: Labelled records with the predictor's ``K`` keypoints.
        keypoint_names: Names for the table (default: the predictor's).
        sdr_radii: Radii of the success detection rate (px; the same numbers in mm for ``sdr_mm``).
        progress: Show a progress bar.

    Returns:
        An :class:`Evaluation` (print it for the table; :meth:`Evaluation.save` writes the files).

    Raises:
        ValueError: On no records, or a record without labels or with another number of keypoints.
    """
    items = list(records)
    if not items:
        raise ValueError("evaluate: no records")
    names = tuple(keypoint_names or predictor.keypoint_names or ())
    k = items[0].num_keypoints
    for i, r in enumerate(items):
        if r.keypoints is None or r.num_keypoints != k:
            raise ValueError(f"evaluate: record {i} ({r.path}) has {r.num_keypoints} keypoints; expected {k}")
    if names and len(names) != k:
        raise ValueError(f"evaluate: the records have {k} keypoints but the names are {list(names)}")
    names = names or tuple(f"kp{j}" for j in range(k))
    sized = any(r.pixel_size is not None for r in items)
    pixel_size = [r.pixel_size for r in items] if sized else None
    prediction = predictor.predict([r.path for r in items], progress=progress, pixel_size=pixel_size)
    pred = prediction.keypoints.to(torch.float64)
    if pred.shape[1] != k:
        raise ValueError(f"evaluate: the predictor gives {pred.shape[1]} keypoints; the records have {k}")
    target = torch.from_numpy(np.stack([np.asarray(r.keypoints, dtype=np.float64) for r in items]))
    visible = torch.stack([
        torch.ones(k, dtype=torch.bool) if r.visible is None else torch.as_tensor(np.asarray(r.visible, bool))
        for r in items
    ]) & torch.isfinite(target).all(-1)
    sizes = prediction.pixel_sizes.to(torch.float64) if sized and prediction.pixel_sizes is not None else None
    metric = KeypointMetrics(list(names), measures=predictor.measures, sdr_radii=sdr_radii)
    metric.update(pred, target, visible=visible, pixel_size=sizes)
    measures = predictor.measures
    labelled = compute_measures(measures, target, sizes)
    predicted = {name: values.to(torch.float64) for name, values in prediction.measures.items()}
    return Evaluation(
        metrics=metric.compute(),
        table=metric.table(),
        files=[str(r.path) for r in items],
        keypoint_names=names,
        predicted=pred,
        target=target,
        errors_px=radial_error(pred, target, visible),
        errors_mm=None if sizes is None else radial_error(pred, target, visible, sizes[:, None, :]),
        measures={name: (predicted[name], labelled[name]) for name in measures},
        units={name: measure_unit(m, sizes is not None) for name, m in measures.items()},
    )

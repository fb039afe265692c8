"""What a predictor returns: landmarks of ``N`` images in their original pixels, scores and measures.

:class:`KeypointPrediction` holds them as tensors and gives them as plain records
(:meth:`~KeypointPrediction.to_records`), a table (:meth:`~KeypointPrediction.table`) or a CSV
file (:meth:`~KeypointPrediction.write_csv`, replaced atomically). It is made by
:meth:`sslkeypoint.inference.KeypointPredictor.predict`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from sslkeypoint.atomic import write_text_atomic

__all__ = ["KeypointPrediction"]


@dataclass
class KeypointPrediction:
    """Landmarks predicted for ``N`` images.

    Attributes:
        keypoints: ``(N, K, 2)`` ``(x, y)`` in each image's original pixels.
        scores: ``(N, K)`` heatmap peak values (confidence, ``[0, 1]`` for a sigmoid head).
        original_sizes: ``(N, 2)`` original ``(H, W)`` of each image.
        keypoint_names: Landmark names, when known.
        measures: Measure name → ``(N,)`` values in the measure's unit (e.g. ``"aop"`` in degrees).
        heatmaps: ``(N, K, h, w)`` network heatmaps when asked for (``return_heatmaps=True``), else
            ``None``.
        pixel_sizes: ``(N, 2)`` pixel size ``(sx, sy)`` of each image in mm (NaN where unknown),
            when sizes were given; lengths among the measures are then in mm.
        units: Measure name → unit of its values (``"deg"``, ``"px"``, ``"mm"``).
    """

    keypoints: Tensor
    scores: Tensor
    original_sizes: Tensor
    keypoint_names: tuple[str, ...] | None = None
    measures: dict[str, Tensor] = field(default_factory=dict)
    heatmaps: Tensor | None = None
    pixel_sizes: Tensor | None = None
    units: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def to_records(self) -> list[dict[str, Any]]:
        """One plain dict per image: ``keypoints`` (list of ``[x, y]``), ``scores``, the measures."""
        out = []
        for i in range(len(self)):
            rec: dict[str, Any] = {
                "keypoints": self.keypoints[i].tolist(),
                "scores": self.scores[i].tolist(),
                "original_size": self.original_sizes[i].tolist(),
            }
            rec.update({name: float(values[i]) for name, values in self.measures.items()})
            if self.keypoint_names is not None:
                rec["keypoint_names"] = list(self.keypoint_names)
            if self.pixel_sizes is not None:
                rec["pixel_size_mm"] = self.pixel_sizes[i].tolist()
            out.append(rec)
        return out

    def table(self, files: Sequence[str | os.PathLike[str]] | None = None) -> tuple[list[str], list[list[Any]]]:
        """The predictions as a header and rows: ``file``, ``<name>_x``, ``<name>_y``, ``<name>_score``
        per landmark (original pixels), then each measure as ``<name>_<unit>``, then
        ``pixel_size_mm`` when sizes were given. A value that is not a number (a length of an
        image without a pixel size) is an empty cell.

        Args:
            files: One name per image for the first column (default: the image's index).
        """
        names = list(self.keypoint_names or (f"kp{k}" for k in range(self.keypoints.shape[1])))
        header = ["file"] + [f"{n}_{c}" for n in names for c in ("x", "y", "score")]
        header += [f"{name}_{self.units.get(name, 'value')}" for name in self.measures]
        if self.pixel_sizes is not None:
            header.append("pixel_size_mm")
        rows = []
        for i in range(len(self)):
            row: list[Any] = [str(files[i]) if files is not None else str(i)]
            for k in range(len(names)):
                row += [_cell(v, 3) for v in self.keypoints[i, k]] + [_cell(self.scores[i, k], 4)]
            row += [_cell(values[i], 4) for values in self.measures.values()]
            if self.pixel_sizes is not None:
                row.append(_cell(self.pixel_sizes[i, 0], 6))
            rows.append(row)
        return header, rows

    def write_csv(self, path: str | os.PathLike[str], files: Sequence[str | os.PathLike[str]] | None = None) -> Path:
        """Write :meth:`table` as CSV (replaced atomically); returns the path."""
        header, rows = self.table(files)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        write_text_atomic(path, buffer.getvalue())
        return Path(path)


def _cell(value: Any, digits: int) -> float | str:
    number = float(value)
    return round(number, digits) if math.isfinite(number) else ""

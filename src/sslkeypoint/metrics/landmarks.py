"""The landmark report as a ``torchmetrics.Metric``: errors, measures, SDR, missing and failure rates.

:class:`KeypointMetrics` accumulates per-keypoint radial errors and per-sample measure errors
batch by batch and summarises them. It is a ``torchmetrics.Metric``: its states are concatenated
across processes when :meth:`~KeypointMetrics.compute` runs under ``torch.distributed`` (DDP), so
every rank reports the figures of the whole evaluation set, and inside a LightningModule it moves
with the module and is reset with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from sslkeypoint.measures import Measure, accepts_pixel_size, pixel_size_tensor, validate_measures
from sslkeypoint.metrics.functional import (
    _as_float,
    _check_keypoints,
    _visible,
    measure_error,
    prediction_spread,
    radial_error,
    success_detection_rate,
)

__all__ = ["KeypointMetrics"]


def _stats(values: Tensor) -> tuple[float, float, float, int]:
    """Mean, population std, median and count of the finite entries of a 1-D tensor."""
    v = values[torch.isfinite(values)]
    if v.numel() == 0:
        return math.nan, math.nan, math.nan, 0
    return float(v.mean()), float(v.std(unbiased=False)), float(v.quantile(0.5)), int(v.numel())


class KeypointMetrics(Metric):
    """Landmark errors, measure errors, success detection rate and missing / failure rates.

    Per-keypoint radial errors (and measure errors) are kept per sample in float64, so means,
    standard deviations, medians and SDR are exact over the whole set, across processes too.
    Heatmap errors are accumulated as sums. Two kinds of unusable entries are kept apart
    (see :mod:`sslkeypoint.metrics.functional`): *missing* (target unusable, left out) and
    *failed* (target usable, prediction not finite: left out of the means, counted, and a miss
    for the SDR).

    Args:
        keypoint_names: Names of the ``K`` keypoints (default ``"kp0"``, ``"kp1"``, ...).
        num_keypoints: ``K`` when no names are given; else taken from the first batch. Give one of
            the two for runs on several processes.
        measures: Name → :class:`~sslkeypoint.measures.Measure` to score, e.g.
            ``{"aop": AngleMeasure(0, 1, 2)}``; each adds ``<name>_mae_<unit>`` and friends.
        pixel_spacing: Optional pixel size in mm (a float or ``(sx, sy)``): adds ``_mm`` keys.
        sdr_radii: Radii of the success detection rate, in pixels (and the same numbers in mm for
            ``sdr_mm``).
        **kwargs: Passed to ``torchmetrics.Metric`` (``process_group``, ``sync_on_compute``, ...).

    Examples:
        >>> import torch
        >>> from sslkeypoint.measures import AngleMeasure
        >>> m = KeypointMetrics(["PS1", "PS2", "FH1"], measures={"aop": AngleMeasure(0, 1, 2)},
        ...                     sdr_radii=(5.0,))
        >>> target = torch.tensor([[[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]]])
        >>> m.update(target + torch.tensor([3.0, 4.0]), target)
        >>> result = m.compute()
        >>> result["mre_px"], result["sdr"], round(result["aop_mae_deg"], 3)
        (5.0, {5.0: 1.0}, 0.0)
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    errors: list[Tensor]
    errors_mm: list[Tensor]
    points: list[Tensor]
    heatmap_sq: Tensor
    heatmap_abs: Tensor
    heatmap_count: Tensor

    def __init__(
        self,
        keypoint_names: Sequence[str] | None = None,
        num_keypoints: int | None = None,
        measures: Mapping[str, Measure] | None = None,
        pixel_spacing: float | Sequence[float] | None = None,
        sdr_radii: Sequence[float] = (5.0, 10.0, 20.0, 40.0),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.keypoint_names = list(keypoint_names) if keypoint_names is not None else None
        if self.keypoint_names is not None:
            if num_keypoints is not None and num_keypoints != len(self.keypoint_names):
                raise ValueError(
                    f"num_keypoints={num_keypoints} disagrees with {len(self.keypoint_names)} keypoint_names"
                )
            num_keypoints = len(self.keypoint_names)
        self.num_keypoints = num_keypoints
        self.measures = validate_measures(measures, num_keypoints)
        if pixel_spacing is not None:
            spacing = torch.as_tensor(pixel_spacing, dtype=torch.float64)
            if spacing.shape not in ((), (2,)) or not bool((spacing > 0).all()):
                raise ValueError(f"pixel_spacing must be a positive float or (sx, sy); got {pixel_spacing!r}")
        self.pixel_spacing = pixel_spacing
        self.sdr_radii = tuple(float(r) for r in sdr_radii)
        # Flat (N * K,) float64 errors: flat states concatenate across ranks whatever K is.
        self.add_state("errors", default=[], dist_reduce_fx="cat")
        self.add_state("errors_mm", default=[], dist_reduce_fx="cat")
        # Flat (N * K * 4,) float64 (pred x, pred y, target x, target y) for the spread figures.
        self.add_state("points", default=[], dist_reduce_fx="cat")
        for name in self.measures:
            self.add_state(self._measure_state(name), default=[], dist_reduce_fx="cat")
            self.add_state(self._measure_state(name) + "_mm", default=[], dist_reduce_fx="cat")
        zero = torch.zeros((), dtype=torch.float64)
        self.add_state("heatmap_sq", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("heatmap_abs", default=zero.clone(), dist_reduce_fx="sum")
        self.add_state("heatmap_count", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    @staticmethod
    def _measure_state(name: str) -> str:
        return f"measure_{name}"

    @property
    def names(self) -> list[str]:
        """The keypoint names (generated ones when none were given)."""
        if self.keypoint_names is not None:
            return self.keypoint_names
        return [f"kp{i}" for i in range(self.num_keypoints or 0)]

    def update(
        self,
        pred: Any,
        target: Any,
        visible: Any = None,
        pred_heatmaps: Any = None,
        target_heatmaps: Any = None,
        pixel_size: Any = None,
    ) -> None:
        """Add a batch.

        Args:
            pred: ``(B, K, 2)`` predicted keypoints (or ``(K, 2)`` for one sample), pixels.
            target: ``(B, K, 2)`` target keypoints, same space.
            visible: Optional ``(B, K)`` bool visibility of the targets.
            pred_heatmaps: Optional ``(B, K, h, w)`` predicted heatmaps.
            target_heatmaps: Optional ``(B, K, h, w)`` target heatmaps (given together with
                ``pred_heatmaps``).
            pixel_size: Optional per-image pixel sizes in mm, ``(B,)`` or ``(B, 2)`` (NaN: unknown,
                then the metric's ``pixel_spacing`` if any): adds errors in mm, and length
                measures in mm. An image's own size wins over ``pixel_spacing``. A batch in which
                no image has a size adds nothing in mm.
        """
        p = _as_float(pred, "pred")
        t = _as_float(target, "target").to(device=p.device)
        if p.ndim == 2:
            p, t = p.unsqueeze(0), t.unsqueeze(0)
            if visible is not None:
                visible = torch.as_tensor(visible).unsqueeze(0)
        if p.ndim != 3 or p.shape[-1] != 2:
            raise ValueError(f"pred must have shape (B, K, 2) or (K, 2); got {tuple(p.shape)}")
        _check_keypoints(p, t)
        num_k = p.shape[1]
        if self.num_keypoints is not None and num_k != self.num_keypoints:
            raise ValueError(
                f"expected {self.num_keypoints} keypoints per sample (from keypoint_names, "
                f"num_keypoints or earlier batches); got pred of shape {tuple(p.shape)}"
            )
        if self.num_keypoints is None:
            self.measures = validate_measures(self.measures, num_k)
            self.num_keypoints = num_k
        if (pred_heatmaps is None) != (target_heatmaps is None):
            raise ValueError("pred_heatmaps and target_heatmaps must be given together")
        p = p.detach().to(self.device, torch.float64)
        t = t.detach().to(self.device, torch.float64)
        vis = _visible(None if visible is None else torch.as_tensor(visible), p.shape[:-1], p.device)
        if pred_heatmaps is not None:
            ph = _as_float(pred_heatmaps, "pred_heatmaps").detach().to(self.device, torch.float64)
            th = _as_float(target_heatmaps, "target_heatmaps").detach().to(self.device, torch.float64)
            if ph.ndim != 4 or ph.shape[:2] != p.shape[:2]:
                raise ValueError(
                    f"pred_heatmaps must have shape (B, K, h, w) with (B, K) = {tuple(p.shape[:2])}; "
                    f"got {tuple(ph.shape)}"
                )
            if th.shape != ph.shape:
                raise ValueError(
                    f"target_heatmaps must have the shape of pred_heatmaps {tuple(ph.shape)}; got {tuple(th.shape)}"
                )
            diff = ph - th
            self.heatmap_sq += diff.square().sum()
            self.heatmap_abs += diff.abs().sum()
            self.heatmap_count += diff.numel()
        self.errors.append(radial_error(p, t, vis).flatten())
        usable = vis & torch.isfinite(t).all(-1)
        both = torch.cat([p, t], dim=-1).masked_fill(~usable[..., None], math.nan)
        self.points.append(both.flatten())
        spacing: Tensor | None = None
        if pixel_size is not None and self.pixel_spacing is None and not bool(torch.isfinite(torch.as_tensor(pixel_size)).any()):
            pixel_size = None  # no image of the batch has a size: nothing to give in mm
        if pixel_size is not None:
            spacing = pixel_size_tensor(torch.as_tensor(pixel_size).to(self.device), tuple(p.shape[:1]), p)
            if self.pixel_spacing is not None:
                default = torch.as_tensor(self.pixel_spacing, dtype=p.dtype, device=p.device).expand_as(spacing)
                spacing = torch.where(torch.isnan(spacing), default, spacing)
        elif self.pixel_spacing is not None:
            spacing = torch.as_tensor(self.pixel_spacing, dtype=p.dtype, device=p.device).expand(p.shape[0], 2)
        if spacing is not None:
            self.errors_mm.append(radial_error(p, t, vis, spacing[:, None, :]).flatten())
        for name, measure in self.measures.items():
            getattr(self, self._measure_state(name)).append(measure_error(measure, p, t, vis).flatten())
            if pixel_size is not None and accepts_pixel_size(measure):
                getattr(self, self._measure_state(name) + "_mm").append(
                    measure_error(measure, p, t, vis, pixel_size=spacing).flatten()
                )

    def _errors(self, state: list[Tensor] | Tensor) -> Tensor:
        """A (possibly synchronised) flat error state as ``(N, K)`` float64 on the CPU."""
        k = self.num_keypoints or 0
        flat = _cat(state)
        return flat.reshape(-1, k) if k else flat.reshape(0, 0)

    def _summary(self, errors: Tensor, unit: str) -> dict[str, Any]:
        mean, std, median, _ = _stats(errors.flatten())
        sdr = success_detection_rate(errors, self.sdr_radii) if errors.numel() else None
        per = {
            name: _stats(errors[:, k]) if errors.numel() else (math.nan, math.nan, math.nan, 0)
            for k, name in enumerate(self.names)
        }
        return {
            f"mre_{unit}": mean,
            f"mre_std_{unit}": std,
            f"mre_median_{unit}": median,
            f"per_landmark_{unit}": {name: s[0] for name, s in per.items()},
            f"per_landmark_std_{unit}": {name: s[1] for name, s in per.items()},
            "sdr" if unit == "px" else f"sdr_{unit}": {
                r: (float(sdr[i]) if sdr is not None else math.nan) for i, r in enumerate(self.sdr_radii)
            },
        }

    def compute(self) -> dict[str, Any]:
        """Summarise everything accumulated since the last reset (over every process).

        Returns:
            A dict of plain Python numbers:

            * ``count`` — samples seen; ``evaluated`` — keypoints scored or failed;
              ``missing`` — keypoints not scorable (invisible / non-finite target);
              ``failed`` — keypoints with a usable target but a non-finite prediction;
              ``missing_rate`` — ``missing / (count·K)``; ``failure_rate`` — ``failed / evaluated``.
            * ``mre_px``, ``mre_std_px`` (population std), ``mre_median_px`` — over all scored
              keypoints of all samples (failed ones excluded); ``per_landmark_px`` and
              ``per_landmark_std_px`` — name → value; ``sdr`` — radius (px) → share of
              non-missing keypoints within it (failures count as misses).
            * Per measure ``name`` with unit ``u``: ``name_mae_u``, ``name_std_u``,
              ``name_median_u``, ``name_count`` (scored), ``name_missing`` (target value
              undefined), ``name_failed`` (target defined, prediction not).
            * ``spread_px`` — name → median distance of the predictions from their median
              position (:func:`~sslkeypoint.metrics.functional.prediction_spread`, over samples
              with a usable target and a finite prediction);
              ``target_spread_px`` — the same for the targets; ``spread_ratio`` — their
              ratio. A ratio near 0 means the landmark is predicted at nearly the same place
              whatever the image (a collapsed landmark; see
              :class:`~sslkeypoint.lightning.CollapseWarning`).
            * With heatmaps: ``heatmap_mse``, ``heatmap_mae`` (means over every element).
            * With ``pixel_spacing`` or per-image pixel sizes: ``mre_mm``, ``mre_std_mm``,
              ``mre_median_mm``, ``per_landmark_mm``, ``per_landmark_std_mm``, ``sdr_mm`` (radii
              read as mm); an image without a size is missing in mm. With per-image sizes, a
              length measure also gets ``name_mae_mm`` ... and ``name_count_mm``,
              ``name_missing_mm``, ``name_failed_mm``.
        """
        errors = self._errors(self.errors)
        num_k = errors.shape[1] if errors.ndim == 2 else 0
        count = int(errors.shape[0])
        missing = int(torch.isnan(errors).sum())
        failed = int(torch.isinf(errors).sum())
        total = count * num_k
        out: dict[str, Any] = {
            "count": count,
            "evaluated": total - missing,
            "missing": missing,
            "failed": failed,
            "missing_rate": missing / total if total else math.nan,
            "failure_rate": failed / (total - missing) if total - missing else math.nan,
        }
        out.update(self._summary(errors, "px"))
        points = _cat(self.points).reshape(-1, num_k, 4) if num_k else torch.zeros(0, 0, 4, dtype=torch.float64)
        pred_spread = prediction_spread(points[..., :2])
        target_spread = prediction_spread(points[..., 2:])
        out["spread_px"] = {name: float(pred_spread[k]) for k, name in enumerate(self.names)}
        out["target_spread_px"] = {name: float(target_spread[k]) for k, name in enumerate(self.names)}
        out["spread_ratio"] = {
            name: float(pred_spread[k] / target_spread[k]) if float(target_spread[k]) > 0 else math.nan
            for k, name in enumerate(self.names)
        }
        for name, measure in self.measures.items():
            values = _cat(getattr(self, self._measure_state(name)))
            in_mm = _cat(getattr(self, self._measure_state(name) + "_mm"))
            for unit, vals, suffix in ((measure.unit, values, ""), ("mm", in_mm, "_mm")):
                if suffix and not in_mm.numel():
                    continue
                mean, std, median, n = _stats(vals)
                out.update({
                    f"{name}_mae_{unit}": mean,
                    f"{name}_std_{unit}": std,
                    f"{name}_median_{unit}": median,
                    f"{name}_count{suffix}": n,
                    f"{name}_missing{suffix}": int(torch.isnan(vals).sum()),
                    f"{name}_failed{suffix}": int(torch.isinf(vals).sum()),
                })
        if int(self.heatmap_count):
            out["heatmap_mse"] = float(self.heatmap_sq) / int(self.heatmap_count)
            out["heatmap_mae"] = float(self.heatmap_abs) / int(self.heatmap_count)
        if _cat(self.errors_mm).numel():
            out.update(self._summary(self._errors(self.errors_mm), "mm"))
        return out

    def table(self) -> str:
        """A plain-text table: one row per landmark and an ``all`` row, then one line per measure.

        Columns: scored count, mean / std / median error in px (and mean in mm when
        ``pixel_spacing`` is set), SDR per radius in %, missing and failed counts.
        """
        with self.sync_context():
            errors = self._errors(self.errors)
            errors_mm = self._errors(self.errors_mm) if _cat(self.errors_mm).numel() else None
        header = ["landmark", "n", "mean px", "std px", "median px"]
        if errors_mm is not None:
            header.append("mean mm")
        header += [f"SDR@{r:g}" for r in self.sdr_radii] + ["missing", "failed"]

        def row(name: str, e: Tensor, e_mm: Tensor | None) -> list[str]:
            mean, std, median, n = _stats(e)
            cells = [name, str(n), f"{mean:.2f}", f"{std:.2f}", f"{median:.2f}"]
            if e_mm is not None:
                cells.append(f"{_stats(e_mm)[0]:.3f}")
            cells += [f"{100 * float(v):.1f}%" for v in success_detection_rate(e, self.sdr_radii)]
            cells += [str(int(torch.isnan(e).sum())), str(int(torch.isinf(e).sum()))]
            return cells

        rows = [
            row(name, errors[:, k], None if errors_mm is None else errors_mm[:, k])
            for k, name in enumerate(self.names)
        ]
        rows.append(row("all", errors.flatten(), None if errors_mm is None else errors_mm.flatten()))
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in [header, *rows]
        ]
        if self.measures:
            res = self.compute()
            for name, measure in self.measures.items():
                u = measure.unit
                sym = "°" if u == "deg" else f" {u}"
                lines.append(
                    f"{name}: MAE {res[f'{name}_mae_{u}']:.2f}{sym} ± {res[f'{name}_std_{u}']:.2f}{sym} "
                    f"(median {res[f'{name}_median_{u}']:.2f}{sym}, n={res[f'{name}_count']}, "
                    f"missing {res[f'{name}_missing']}, failed {res[f'{name}_failed']})"
                )
                if u != "mm" and f"{name}_mae_mm" in res:
                    lines.append(
                        f"{name}: MAE {res[f'{name}_mae_mm']:.2f} mm ± {res[f'{name}_std_mm']:.2f} mm "
                        f"(median {res[f'{name}_median_mm']:.2f} mm, n={res[f'{name}_count_mm']}, "
                        f"without a pixel size {res[f'{name}_missing_mm'] - res[f'{name}_missing']})"
                    )
        return "\n".join(lines)

    def extra_repr(self) -> str:
        """The constructor settings, shown in ``repr``."""
        return (
            f"keypoint_names={self.keypoint_names!r}, measures={list(self.measures)!r}, "
            f"pixel_spacing={self.pixel_spacing!r}, sdr_radii={self.sdr_radii!r}"
        )


def _cat(state: list[Tensor] | Tensor) -> Tensor:
    """A list state (or its synchronised concatenation) as one flat float64 CPU tensor."""
    if isinstance(state, Tensor):
        return state.detach().to("cpu", torch.float64).flatten()
    if not state:
        return torch.zeros(0, dtype=torch.float64)
    return dim_zero_cat(state).detach().to("cpu", torch.float64).flatten()

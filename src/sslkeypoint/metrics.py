"""Keypoint metrics: radial error, AoP error, heatmap errors, success detection rate, an evaluator.

Conventions: keypoints are ``(..., K, 2)`` ``(x, y)`` in pixels of one image space (for IUGC, the
original 512×512 image); ``visible`` is a ``(..., K)`` bool mask. Functions take torch tensors
(any device, any float dtype) or numpy arrays and return tensors.

Two kinds of unusable entries are kept apart everywhere:

* **missing** — the target cannot be scored: the keypoint is invisible or the target is not
  finite (for AoP: the target angle is undefined). Error ``NaN``; excluded from every mean.
* **failed** — the target is fine but the prediction is not finite (for AoP: the predicted
  angle is undefined, e.g. coincident predicted points). Error ``+inf``; excluded from means and
  reported as a count, and counted as a miss by :func:`success_detection_rate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from sslkeypoint.geometry import angle_of_progression

__all__ = [
    "KeypointEvaluator",
    "aop_absolute_error",
    "heatmap_mae",
    "heatmap_mse",
    "mean_radial_error",
    "radial_error",
    "success_detection_rate",
]

SpacingLike = float | Sequence[float] | Tensor


def _as_float(x: Any, name: str) -> Tensor:
    """``x`` as a floating tensor (integers become float32, floats keep their dtype)."""
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.float()
    return t


def _check_keypoints(pred: Tensor, target: Tensor) -> None:
    if pred.ndim < 2 or pred.shape[-1] != 2:
        raise ValueError(f"pred must have shape (..., K, 2); got {tuple(pred.shape)}")
    if target.shape != pred.shape:
        raise ValueError(
            f"target must have the shape of pred {tuple(pred.shape)}; got {tuple(target.shape)}"
        )


def _visible(visible: Any, shape: torch.Size, device: torch.device) -> Tensor:
    """``visible`` as a bool tensor of ``shape`` (all True when None)."""
    if visible is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    v = torch.as_tensor(visible, device=device)
    if v.shape != shape:
        raise ValueError(f"visible must have shape {tuple(shape)}; got {tuple(v.shape)}")
    return v.bool()


def _spacing(pixel_spacing: SpacingLike, like: Tensor) -> Tensor:
    """Pixel spacing as a tensor broadcastable against ``(..., K, 2)`` keypoints."""
    s = torch.as_tensor(pixel_spacing, dtype=like.dtype, device=like.device)
    if s.ndim == 0:
        return s
    if s.shape[-1] != 2:
        raise ValueError(
            "pixel_spacing must be a float, (sx, sy), or a tensor of shape (..., 2) broadcastable "
            f"against the keypoints; got shape {tuple(s.shape)}"
        )
    return s


def radial_error(
    pred: Any,
    target: Any,
    visible: Any = None,
    pixel_spacing: SpacingLike | None = None,
) -> Tensor:
    """Euclidean distance between predicted and target keypoints.

    Args:
        pred: ``(..., K, 2)`` predicted keypoints ``(x, y)``, pixels.
        target: ``(..., K, 2)`` target keypoints, same space.
        visible: ``(..., K)`` bool; False marks a keypoint that cannot be scored. None: all.
        pixel_spacing: Optional size of a pixel (e.g. mm/px): a float, ``(sx, sy)``, or a tensor
            broadcastable against ``(..., K, 2)`` (e.g. ``(B, 1, 2)`` per sample). The error is
            then ``sqrt((sx·dx)² + (sy·dy)²)`` in those units.

    Returns:
        ``(..., K)`` errors in pixels (or spacing units), in pred's float dtype. ``NaN`` where the
        target is missing (invisible or not finite); ``+inf`` where the target is usable but the
        prediction is not finite (a failure).

    Examples:
        >>> import torch
        >>> radial_error(torch.tensor([[3.0, 4.0], [1.0, 1.0]]), torch.zeros(2, 2))
        tensor([5.0000, 1.4142])
        >>> radial_error(torch.tensor([[3.0, 4.0], [float("nan"), 0.0]]), torch.zeros(2, 2),
        ...              visible=torch.tensor([False, True]))
        tensor([nan, inf])
    """
    p = _as_float(pred, "pred")
    t = _as_float(target, "target").to(device=p.device)
    _check_keypoints(p, t)
    dtype = torch.promote_types(p.dtype, t.dtype)
    p, t = p.to(dtype), t.to(dtype)
    vis = _visible(visible, p.shape[:-1], p.device)
    diff = p - t
    if pixel_spacing is not None:
        diff = diff * _spacing(pixel_spacing, diff)
    err = diff.square().sum(-1).sqrt()
    missing = ~vis | ~torch.isfinite(t).all(-1)
    failed = ~missing & ~torch.isfinite(p).all(-1)
    err = torch.where(failed, torch.full_like(err, math.inf), err)
    return torch.where(missing, torch.full_like(err, math.nan), err)


def mean_radial_error(
    pred: Any,
    target: Any,
    visible: Any = None,
    pixel_spacing: SpacingLike | None = None,
) -> Tensor:
    """Mean radial error (MRE) over every scored keypoint of every sample.

    Missing keypoints (invisible / non-finite target) and failed ones (non-finite prediction) are
    left out of the mean; :class:`KeypointEvaluator` counts both.

    Args:
        pred: ``(..., K, 2)`` predicted keypoints, pixels.
        target: ``(..., K, 2)`` target keypoints.
        visible: Optional ``(..., K)`` bool.
        pixel_spacing: Optional pixel size, as in :func:`radial_error`.

    Returns:
        0-dim tensor: the mean error (NaN when nothing could be scored).

    Examples:
        >>> import torch
        >>> mean_radial_error(torch.tensor([[[3.0, 4.0], [0.0, 1.0]]]), torch.zeros(1, 2, 2))
        tensor(3.)
    """
    err = radial_error(pred, target, visible, pixel_spacing)
    ok = torch.isfinite(err)
    if not bool(ok.any()):
        return torch.full((), math.nan, dtype=err.dtype, device=err.device)
    return err[ok].mean()


def _aop(kp: Tensor, indices: Sequence[int]) -> Tensor:
    i, j, k = indices
    return angle_of_progression(kp[..., i, :], kp[..., j, :], kp[..., k, :])


def aop_absolute_error(
    pred: Any,
    target: Any,
    indices: Sequence[int] = (0, 1, 2),
    visible: Any = None,
) -> Tensor:
    """Absolute Angle-of-Progression error ``|AoP(pred) − AoP(target)|`` in degrees.

    The AoP is the angle at ``kp[indices[0]]`` (PS1) between the directions to ``kp[indices[1]]``
    (PS2) and ``kp[indices[2]]`` (FH1), see :func:`sslkeypoint.geometry.angle_of_progression`.

    Args:
        pred: ``(..., K, 2)`` predicted keypoints.
        target: ``(..., K, 2)`` target keypoints.
        indices: Positions of ``(PS1, PS2, FH1)`` among the ``K`` keypoints.
        visible: Optional ``(..., K)`` bool; the target AoP is missing when any of the three
            keypoints is invisible.

    Returns:
        ``(...)`` errors in degrees. ``NaN`` where the target AoP is missing (invisible, non-finite
        or degenerate target points); ``+inf`` where the target AoP is defined but the predicted
        one is not (non-finite or coincident predicted points).

    Examples:
        >>> import torch
        >>> target = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])  # 90°
        >>> pred = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])  # 45°
        >>> aop_absolute_error(pred, target)
        tensor(45.)
        >>> aop_absolute_error(torch.zeros(3, 2), target)  # coincident points: a failure
        tensor(inf)
    """
    p = _as_float(pred, "pred")
    t = _as_float(target, "target").to(device=p.device)
    _check_keypoints(p, t)
    dtype = torch.promote_types(p.dtype, t.dtype)
    p, t = p.to(dtype), t.to(dtype)
    if len(indices) != 3:
        raise ValueError(f"indices must name 3 keypoints (PS1, PS2, FH1); got {tuple(indices)}")
    num_k = p.shape[-2]
    if any(not -num_k <= int(i) < num_k for i in indices):
        raise ValueError(f"indices {tuple(indices)} out of range for K={num_k} keypoints")
    idx = [int(i) for i in indices]
    vis = _visible(visible, p.shape[:-1], p.device)
    a_pred = _aop(p, idx)
    a_target = _aop(t, idx)
    err = (a_pred - a_target).abs()
    missing = ~torch.isfinite(a_target) | ~vis[..., idx].all(-1)
    failed = ~missing & ~torch.isfinite(a_pred)
    err = torch.where(failed, torch.full_like(err, math.inf), err)
    return torch.where(missing, torch.full_like(err, math.nan), err)


def _heatmap_error(pred: Any, target: Any, reduction: str, power: int) -> Tensor:
    p = _as_float(pred, "pred_heatmaps")
    t = _as_float(target, "target_heatmaps").to(device=p.device, dtype=p.dtype)
    if p.ndim < 2:
        raise ValueError(f"heatmaps must have shape (..., h, w); got {tuple(p.shape)}")
    if t.shape != p.shape:
        raise ValueError(
            f"target heatmaps must have the shape of pred {tuple(p.shape)}; got {tuple(t.shape)}"
        )
    diff = (p - t).abs()
    if power == 2:
        diff = diff.square()
    if reduction == "mean":
        return diff.mean()
    if reduction == "none":
        return diff.mean(dim=(-2, -1))
    raise ValueError(f'reduction must be "mean" or "none"; got {reduction!r}')


def heatmap_mse(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error between heatmaps.

    Args:
        pred: ``(..., h, w)`` predicted heatmaps, e.g. ``(B, K, h, w)``.
        target: ``(..., h, w)`` target heatmaps.
        reduction: ``"mean"`` (one number over every element) or ``"none"`` (the mean over the
            last two dimensions, shape ``(...)``).

    Returns:
        0-dim tensor, or ``(...)`` for ``reduction="none"``.

    Examples:
        >>> import torch
        >>> heatmap_mse(torch.ones(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
        tensor(1.)
    """
    return _heatmap_error(pred, target, reduction, power=2)


def heatmap_mae(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error between heatmaps; arguments as :func:`heatmap_mse`.

    Examples:
        >>> import torch
        >>> heatmap_mae(torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, 1, 2, 2), reduction="none")
        tensor([[0.5000]])
    """
    return _heatmap_error(pred, target, reduction, power=1)


def success_detection_rate(errors: Any, radii: float | Sequence[float]) -> Tensor:
    """Success detection rate: the share of scored keypoints within each radius.

    Args:
        errors: Radial errors of any shape, e.g. from :func:`radial_error`. ``NaN`` entries
            (missing) are left out; ``+inf`` entries (failed) count as not detected.
        radii: A radius or a sequence of radii, in the errors' units (an error equal to the
            radius counts as a success).

    Returns:
        ``(R,)`` float tensor of fractions in ``[0, 1]`` (0-dim for a single radius); NaN when
        nothing could be scored.

    Examples:
        >>> import torch
        >>> errors = torch.tensor([1.0, 2.0, 3.0, float("inf"), float("nan")])
        >>> success_detection_rate(errors, [2.0, 10.0])
        tensor([0.5000, 0.7500])
    """
    e = _as_float(errors, "errors").flatten()
    r = torch.as_tensor(radii, dtype=e.dtype, device=e.device)
    scored = e[~torch.isnan(e)]
    if scored.numel() == 0:
        return torch.full(r.shape, math.nan, dtype=e.dtype, device=e.device)
    return (scored.unsqueeze(-1) <= r.reshape(-1)).to(e.dtype).mean(0).reshape(r.shape)


def _stats(values: Tensor) -> tuple[float, float, float, int]:
    """Mean, population std, median and count of the finite entries of a 1-D tensor."""
    v = values[torch.isfinite(values)]
    if v.numel() == 0:
        return math.nan, math.nan, math.nan, 0
    return (
        float(v.mean()),
        float(v.std(unbiased=False)),
        float(v.quantile(0.5)),
        int(v.numel()),
    )


class KeypointEvaluator:
    """Accumulates keypoint predictions batch by batch and summarises them.

    Per-sample radial errors (and AoP errors) are kept on the CPU in float64, so batches may come
    from any device; heatmap errors are accumulated as running sums.

    Args:
        keypoint_names: Names of the ``K`` keypoints (default ``"kp0"``, ``"kp1"``, ...).
        aop_indices: Positions of ``(PS1, PS2, FH1)`` to also score the Angle of Progression
            (e.g. ``(0, 1, 2)`` for IUGC); None: no AoP.
        pixel_spacing: Optional pixel size in mm (a float or ``(sx, sy)``): adds ``_mm`` keys.
        sdr_radii: Radii of the success detection rate, in pixels (and the same numbers in mm for
            ``sdr_mm``).

    Examples:
        >>> import torch
        >>> ev = KeypointEvaluator(["PS1", "PS2", "FH1"], aop_indices=(0, 1, 2), sdr_radii=(5.0,))
        >>> target = torch.tensor([[[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]]])
        >>> ev.update(target + torch.tensor([3.0, 4.0]), target)
        >>> result = ev.compute()
        >>> result["mre_px"], result["sdr"], round(result["aop_mae_deg"], 3)
        (5.0, {5.0: 1.0}, 0.0)
    """

    def __init__(
        self,
        keypoint_names: Sequence[str] | None = None,
        aop_indices: Sequence[int] | None = None,
        pixel_spacing: float | Sequence[float] | None = None,
        sdr_radii: Sequence[float] = (5.0, 10.0, 20.0, 40.0),
    ) -> None:
        self.keypoint_names = list(keypoint_names) if keypoint_names is not None else None
        if aop_indices is not None and len(aop_indices) != 3:
            raise ValueError(f"aop_indices must name 3 keypoints; got {tuple(aop_indices)}")
        self.aop_indices = tuple(int(i) for i in aop_indices) if aop_indices is not None else None
        if pixel_spacing is not None:
            spacing = torch.as_tensor(pixel_spacing, dtype=torch.float64)
            if spacing.shape not in ((), (2,)) or not bool((spacing > 0).all()):
                raise ValueError(
                    f"pixel_spacing must be a positive float or (sx, sy); got {pixel_spacing!r}"
                )
        self.pixel_spacing = pixel_spacing
        self.sdr_radii = tuple(float(r) for r in sdr_radii)
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated so far."""
        self._errors: list[Tensor] = []
        self._errors_mm: list[Tensor] = []
        self._aop: list[Tensor] = []
        self._num_keypoints: int | None = (
            len(self.keypoint_names) if self.keypoint_names is not None else None
        )
        self._hm_sq = 0.0
        self._hm_abs = 0.0
        self._hm_count = 0

    @property
    def names(self) -> list[str]:
        """The keypoint names (generated ones when none were given)."""
        if self.keypoint_names is not None:
            return self.keypoint_names
        return [f"kp{i}" for i in range(self._num_keypoints or 0)]

    @torch.no_grad()
    def update(
        self,
        pred: Any,
        target: Any,
        visible: Any = None,
        pred_heatmaps: Any = None,
        target_heatmaps: Any = None,
    ) -> None:
        """Add a batch.

        Args:
            pred: ``(B, K, 2)`` predicted keypoints (or ``(K, 2)`` for one sample), pixels.
            target: ``(B, K, 2)`` target keypoints, same space.
            visible: Optional ``(B, K)`` bool visibility of the targets.
            pred_heatmaps: Optional ``(B, K, h, w)`` predicted heatmaps.
            target_heatmaps: Optional ``(B, K, h, w)`` target heatmaps (given together with
                ``pred_heatmaps``).
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
        if self._num_keypoints is not None and num_k != self._num_keypoints:
            raise ValueError(
                f"expected {self._num_keypoints} keypoints per sample (from keypoint_names or "
                f"earlier batches); got pred of shape {tuple(p.shape)}"
            )
        self._num_keypoints = num_k
        p = p.detach().to("cpu", torch.float64)
        t = t.detach().to("cpu", torch.float64)
        vis = _visible(
            None if visible is None else torch.as_tensor(visible).cpu(), p.shape[:-1], p.device
        )
        self._errors.append(radial_error(p, t, vis))
        if self.pixel_spacing is not None:
            self._errors_mm.append(radial_error(p, t, vis, self.pixel_spacing))
        if self.aop_indices is not None:
            self._aop.append(aop_absolute_error(p, t, self.aop_indices, vis))
        if (pred_heatmaps is None) != (target_heatmaps is None):
            raise ValueError("pred_heatmaps and target_heatmaps must be given together")
        if pred_heatmaps is not None:
            ph = _as_float(pred_heatmaps, "pred_heatmaps").detach()
            th = _as_float(target_heatmaps, "target_heatmaps").detach().to(ph.device)
            if ph.ndim != 4 or ph.shape[:2] != p.shape[:2]:
                raise ValueError(
                    f"pred_heatmaps must have shape (B, K, h, w) with (B, K) = {tuple(p.shape[:2])}; "
                    f"got {tuple(ph.shape)}"
                )
            ph64, th64 = ph.double(), th.double()
            if th64.shape != ph64.shape:
                raise ValueError(
                    f"target_heatmaps must have the shape of pred_heatmaps {tuple(ph.shape)}; "
                    f"got {tuple(th.shape)}"
                )
            self._hm_sq += float((ph64 - th64).square().sum())
            self._hm_abs += float((ph64 - th64).abs().sum())
            self._hm_count += ph64.numel()

    def _summary(self, errors: Tensor, unit: str) -> dict[str, Any]:
        names = self.names
        mean, std, median, _ = _stats(errors.flatten())
        sdr = success_detection_rate(errors, self.sdr_radii) if errors.numel() else None
        per = {
            name: _stats(errors[:, k]) if errors.numel() else (math.nan, math.nan, math.nan, 0)
            for k, name in enumerate(names)
        }
        return {
            f"mre_{unit}": mean,
            f"mre_std_{unit}": std,
            f"mre_median_{unit}": median,
            f"per_landmark_{unit}": {name: s[0] for name, s in per.items()},
            f"per_landmark_std_{unit}": {name: s[1] for name, s in per.items()},
            "sdr" if unit == "px" else f"sdr_{unit}": {
                r: (float(sdr[i]) if sdr is not None else math.nan)
                for i, r in enumerate(self.sdr_radii)
            },
        }

    def compute(self) -> dict[str, Any]:
        """Summarise everything accumulated since the last :meth:`reset`.

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
            * With ``aop_indices``: ``aop_mae_deg``, ``aop_std_deg``, ``aop_median_deg``,
              ``aop_count`` (scored), ``aop_missing`` (target AoP undefined), ``aop_failed``
              (target defined, prediction not: non-finite or coincident points).
            * With heatmaps: ``heatmap_mse``, ``heatmap_mae`` (means over every element).
            * With ``pixel_spacing``: ``mre_mm``, ``mre_std_mm``, ``mre_median_mm``,
              ``per_landmark_mm``, ``per_landmark_std_mm``, ``sdr_mm`` (radii read as mm).
        """
        num_k = self._num_keypoints or 0
        errors = (
            torch.cat(self._errors) if self._errors else torch.zeros(0, num_k, dtype=torch.float64)
        )
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
        if self.aop_indices is not None:
            aop = torch.cat(self._aop) if self._aop else torch.zeros(0, dtype=torch.float64)
            mean, std, median, n = _stats(aop)
            out.update(
                aop_mae_deg=mean,
                aop_std_deg=std,
                aop_median_deg=median,
                aop_count=n,
                aop_missing=int(torch.isnan(aop).sum()),
                aop_failed=int(torch.isinf(aop).sum()),
            )
        if self._hm_count:
            out["heatmap_mse"] = self._hm_sq / self._hm_count
            out["heatmap_mae"] = self._hm_abs / self._hm_count
        if self.pixel_spacing is not None:
            errors_mm = (
                torch.cat(self._errors_mm)
                if self._errors_mm
                else torch.zeros(0, num_k, dtype=torch.float64)
            )
            out.update(self._summary(errors_mm, "mm"))
        return out

    def table(self) -> str:
        """A plain-text table: one row per landmark and an ``all`` row, then the AoP line.

        Columns: scored count, mean / std / median error in px (and mean in mm when
        ``pixel_spacing`` is set), SDR per radius in %, missing and failed counts.
        """
        errors = (
            torch.cat(self._errors)
            if self._errors
            else torch.zeros(0, self._num_keypoints or 0, dtype=torch.float64)
        )
        errors_mm = torch.cat(self._errors_mm) if self._errors_mm else None
        header = ["landmark", "n", "mean px", "std px", "median px"]
        if errors_mm is not None:
            header.append("mean mm")
        header += [f"SDR@{r:g}" for r in self.sdr_radii] + ["missing", "failed"]
        rows: list[list[str]] = []

        def row(name: str, e: Tensor, e_mm: Tensor | None) -> list[str]:
            mean, std, median, n = _stats(e)
            cells = [name, str(n), f"{mean:.2f}", f"{std:.2f}", f"{median:.2f}"]
            if e_mm is not None:
                cells.append(f"{_stats(e_mm)[0]:.3f}")
            sdr = success_detection_rate(e, self.sdr_radii)
            cells += [f"{100 * float(v):.1f}%" for v in sdr]
            cells += [str(int(torch.isnan(e).sum())), str(int(torch.isinf(e).sum()))]
            return cells

        for k, name in enumerate(self.names):
            rows.append(row(name, errors[:, k], None if errors_mm is None else errors_mm[:, k]))
        rows.append(
            row("all", errors.flatten(), None if errors_mm is None else errors_mm.flatten())
        )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        lines = [
            "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
            for r in [header, *rows]
        ]
        if self.aop_indices is not None:
            res = self.compute()
            lines.append(
                f"AoP: MAE {res['aop_mae_deg']:.2f}° ± {res['aop_std_deg']:.2f}° "
                f"(median {res['aop_median_deg']:.2f}°, n={res['aop_count']}, "
                f"missing {res['aop_missing']}, failed {res['aop_failed']})"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(keypoint_names={self.keypoint_names!r}, "
            f"aop_indices={self.aop_indices!r}, pixel_spacing={self.pixel_spacing!r}, "
            f"sdr_radii={self.sdr_radii!r})"
        )

"""A statistical shape model of landmark configurations: is a predicted configuration plausible?

Pseudo-label self-training (:mod:`sslkeypoint.ssl.pseudo_labels`) keeps a landmark only where the
other landmarks say it should be. The labelled configurations — ``K`` points, ``2K`` numbers each,
in original pixels divided by the image's size — are modelled as a Gaussian whose covariance is
shrunk towards its diagonal (a few dozen labels estimate a ``2K × 2K`` covariance poorly):

* ``alignment="none"`` (default) keeps position, size and tilt in the model: right for images
  taken in one pose (ultrasound with the probe at the top), where a symphysis of implausible
  length or tilt is itself an error;
* ``"translation"`` subtracts each configuration's centroid;
* ``"similarity"`` also removes scale and rotation (ordinary Procrustes onto the mean shape), for
  images in any pose.

:meth:`ShapeModel.distance` is the squared Mahalanobis distance of a whole configuration (χ² with
``2K`` degrees of freedom under the model), :meth:`ShapeModel.conditional_distance` that of each
landmark given the others (χ² with 2 degrees of freedom), and :meth:`ShapeModel.implausible` drops
the worst landmark, again and again, until every one left is where the rest say it should be — so
one misplaced landmark does not take the others down with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["ALIGNMENTS", "ShapeModel", "chi2_quantile"]

#: How configurations are aligned before they are compared.
ALIGNMENTS = ("none", "translation", "similarity")


def chi2_quantile(q: float, dof: int) -> float:
    """The ``q`` quantile of the χ² distribution with ``dof`` degrees of freedom.

    Exact for 2 degrees of freedom (``-2 ln(1 - q)``), the Wilson–Hilferty approximation otherwise
    (within a few percent from 3 degrees of freedom on).

    Examples:
        >>> round(chi2_quantile(0.99, 2), 3), round(chi2_quantile(0.99, 6), 2)  # exact: 9.210, 16.812
        (9.21, 16.84)
    """
    if not 0.0 < q < 1.0 or dof < 1:
        raise ValueError(f"need 0 < q < 1 and dof >= 1; got q={q}, dof={dof}")
    if dof == 2:
        return -2.0 * math.log1p(-q)
    z = float(torch.special.ndtri(torch.tensor(q, dtype=torch.float64)))
    k = float(dof)
    return k * (1.0 - 2.0 / (9.0 * k) + z * math.sqrt(2.0 / (9.0 * k))) ** 3


def _normalised(keypoints: Tensor, sizes: Tensor | None) -> Tensor:
    """``(N, K, 2)`` keypoints in px as shares of the image's width and height (float64)."""
    points = keypoints.to(torch.float64)
    if sizes is None:
        return points
    hw = sizes.to(torch.float64)
    return points / torch.stack([hw[:, 1], hw[:, 0]], dim=-1)[:, None, :]


def _procrustes(points: Tensor, reference: Tensor) -> Tensor:
    """``(N, K, 2)`` centred configurations rotated and scaled onto the centred ``(K, 2)`` reference."""
    cross = points.transpose(1, 2) @ reference  # (N, 2, 2)
    u, s, vh = torch.linalg.svd(cross)
    rotation = u @ vh
    # No reflections: a mirrored configuration is another configuration.
    det = torch.linalg.det(rotation)
    fix = torch.ones(points.shape[0], 2, dtype=points.dtype, device=points.device)
    fix[:, 1] = torch.where(det < 0, -1.0, 1.0)
    rotation = u @ torch.diag_embed(fix) @ vh
    scale = (s * fix).sum(-1) / points.pow(2).sum(dim=(1, 2)).clamp_min(1e-12)
    return scale[:, None, None] * points @ rotation


@dataclass(frozen=True)
class ShapeModel:
    """A Gaussian over aligned landmark configurations (see the module notes).

    Build it with :meth:`fit`.

    Attributes:
        mean: ``(2K,)`` mean aligned configuration (x, y interleaved per landmark).
        covariance: ``(2K, 2K)`` its shrunk covariance.
        alignment: One of :data:`ALIGNMENTS`.
        reference: ``(K, 2)`` the centred mean shape the ``"similarity"`` alignment rotates onto.
        num_samples: Configurations the model was fitted on.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> base = torch.tensor([[30.0, 10.0], [10.0, 10.0], [25.0, 40.0]])
        >>> labelled = base + torch.randn(40, 3, 2, generator=g)
        >>> model = ShapeModel.fit(labelled)
        >>> moved = base.clone(); moved[2] += torch.tensor([0.0, 15.0])  # the third point 15 px off
        >>> model.implausible(torch.stack([base, moved]), quantile=0.99).tolist()
        [[False, False, False], [False, False, True]]
    """

    mean: Tensor
    covariance: Tensor
    alignment: str = "none"
    reference: Tensor | None = None
    num_samples: int = 0

    @property
    def num_keypoints(self) -> int:
        """``K``."""
        return int(self.mean.numel() // 2)

    @classmethod
    def fit(cls, keypoints: Tensor, sizes: Tensor | None = None, *, alignment: str = "none",
            shrinkage: float = 0.1) -> ShapeModel:
        """Fit the model to labelled configurations.

        Args:
            keypoints: ``(N, K, 2)`` ``(x, y)`` in original px, every one visible and finite.
            sizes: Optional ``(N, 2)`` original ``(H, W)``: coordinates are then shares of the size.
            alignment: One of :data:`ALIGNMENTS`.
            shrinkage: Weight of the diagonal in the covariance, ``(1 - s) Σ + s diag(Σ)``, plus a
                tiny ridge so that it is always invertible.

        Raises:
            ValueError: On fewer than 3 configurations, non-finite keypoints, a bad shape or an
                unknown alignment.
        """
        if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
            raise ValueError(f"keypoints must be (N, K, 2); got {tuple(keypoints.shape)}")
        if keypoints.shape[0] < 3:
            raise ValueError(f"a shape model needs at least 3 labelled configurations; got {keypoints.shape[0]}")
        if not torch.isfinite(keypoints).all():
            raise ValueError("the labelled configurations of a shape model must be finite (every landmark labelled)")
        if alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {ALIGNMENTS}; got {alignment!r}")
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1]; got {shrinkage}")
        points = _normalised(keypoints, sizes)
        reference = None
        if alignment != "none":
            points = points - points.mean(dim=1, keepdim=True)
        if alignment == "similarity":
            reference = points[0]
            for _ in range(5):  # generalised Procrustes: align to the mean, re-estimate the mean
                reference = _procrustes(points, reference).mean(dim=0)
                reference = reference / reference.norm().clamp_min(1e-12)
            points = _procrustes(points, reference)
        flat = points.reshape(points.shape[0], -1)
        mean = flat.mean(dim=0)
        centred = flat - mean
        cov = centred.T @ centred / max(1, flat.shape[0] - 1)
        cov = (1.0 - shrinkage) * cov + shrinkage * torch.diag(torch.diag(cov))
        ridge = 1e-6 * float(torch.diag(cov).mean().clamp_min(1e-12)) + 1e-12
        cov = cov + ridge * torch.eye(cov.shape[0], dtype=cov.dtype)
        return cls(mean, cov, alignment, reference, int(flat.shape[0]))

    def _flat(self, keypoints: Tensor, sizes: Tensor | None) -> Tensor:
        if keypoints.ndim != 3 or tuple(keypoints.shape[1:]) != (self.num_keypoints, 2):
            raise ValueError(f"keypoints must be (N, {self.num_keypoints}, 2); got {tuple(keypoints.shape)}")
        points = _normalised(keypoints, sizes)
        if self.alignment != "none":
            points = points - points.mean(dim=1, keepdim=True)
        if self.alignment == "similarity":
            assert self.reference is not None
            points = _procrustes(points, self.reference)
        return points.reshape(points.shape[0], -1)

    def distance(self, keypoints: Tensor, sizes: Tensor | None = None) -> Tensor:
        """``(N,)`` squared Mahalanobis distance of whole configurations ``(N, K, 2)``."""
        diff = self._flat(keypoints, sizes) - self.mean
        return (diff @ torch.linalg.solve(self.covariance, diff.T)).diagonal()

    def _conditional(self, diff: Tensor, landmark: int, given: list[int]) -> float:
        """Squared Mahalanobis distance of one landmark given others, for one configuration ``diff (2K,)``."""
        own = [2 * landmark, 2 * landmark + 1]
        if not given:
            block = self.covariance[own][:, own]
            d = diff[own]
            return float(d @ torch.linalg.solve(block, d))
        rest = [i for g in given for i in (2 * g, 2 * g + 1)]
        s_oo = self.covariance[rest][:, rest]
        s_ko = self.covariance[own][:, rest]
        gain = torch.linalg.solve(s_oo, s_ko.T).T  # (2, R)
        mean = gain @ diff[rest]
        cov = self.covariance[own][:, own] - gain @ s_ko.T
        d = diff[own] - mean
        return float(d @ torch.linalg.solve(cov, d))

    def conditional_distance(self, keypoints: Tensor, sizes: Tensor | None = None) -> Tensor:
        """``(N, K)`` squared Mahalanobis distance of each landmark given all the others.

        Under the model each is χ²-distributed with 2 degrees of freedom.
        """
        diffs = self._flat(keypoints, sizes) - self.mean
        k = self.num_keypoints
        out = torch.empty(diffs.shape[0], k, dtype=torch.float64)
        for n in range(diffs.shape[0]):
            for j in range(k):
                out[n, j] = self._conditional(diffs[n], j, [i for i in range(k) if i != j])
        return out

    def implausible(self, keypoints: Tensor, sizes: Tensor | None = None, *, quantile: float = 0.99,
                    candidates: Tensor | None = None) -> Tensor:
        """``(N, K)`` bool: landmarks not where the others say they should be.

        For each configuration, the landmark with the largest squared distance given the landmarks
        still kept is dropped while that distance exceeds the ``quantile`` of χ² with 2 degrees of
        freedom; the distances are computed again among the landmarks left (a misplaced landmark
        no longer pulls on the others). The last landmark is judged against its own marginal.
        With ``alignment="similarity"`` (which needs the whole configuration) only whole
        configurations are judged, against χ² with ``2K`` degrees of freedom.

        Args:
            keypoints: ``(N, K, 2)`` in original px.
            sizes: Optional ``(N, 2)`` original ``(H, W)`` (as given to :meth:`fit`).
            quantile: The χ² quantile beyond which a landmark is implausible.
            candidates: Optional ``(N, K)`` bool: the landmarks to judge; the others (dropped
                already for other reasons) are neither judged nor given.
        """
        k = self.num_keypoints
        if candidates is None:
            candidates = torch.ones(keypoints.shape[0], k, dtype=torch.bool)
        if tuple(candidates.shape) != (keypoints.shape[0], k):
            raise ValueError(f"candidates must be (N, K) = ({keypoints.shape[0]}, {k}); got {tuple(candidates.shape)}")
        if self.alignment == "similarity":
            bad = self.distance(keypoints, sizes) > chi2_quantile(quantile, 2 * k)
            return bad[:, None].expand(-1, k) & candidates
        limit = chi2_quantile(quantile, 2)
        diffs = self._flat(keypoints, sizes) - self.mean
        out = torch.zeros(diffs.shape[0], k, dtype=torch.bool)
        for n in range(diffs.shape[0]):
            kept = [j for j in range(k) if bool(candidates[n, j])]
            while kept:
                scores = [self._conditional(diffs[n], j, [i for i in kept if i != j]) for j in kept]
                worst = max(range(len(kept)), key=scores.__getitem__)
                if scores[worst] <= limit:
                    break
                out[n, kept.pop(worst)] = True
        return out

"""DenseCL's dense InfoNCE: every query location against its most similar key location.

The per-location contrastive loss of DenseCL (Wang et al., 2021; :class:`~sslkeypoint.ssl.DenseCL`)
as a plain batched function. The positives are matched by lightly's most-similar-location rule and
the loss itself is :func:`~sslkeypoint.losses.info_nce_loss` over all locations.
"""

from __future__ import annotations

from lightly.models.utils import most_similar_index
from torch import Tensor

from sslkeypoint.losses.infonce import info_nce_loss

__all__ = ["dense_info_nce_loss"]


def dense_info_nce_loss(
    query: Tensor,
    key: Tensor,
    query_features: Tensor,
    key_features: Tensor,
    negatives: Tensor,
    temperature: float,
    query_groups: Tensor | None = None,
    negative_groups: Tensor | None = None,
) -> Tensor:
    """DenseCL's dense InfoNCE: each query location against its most similar key location.

    For query location ``r`` of image ``b``, the positive is ``key[b, s*]`` with
    ``s* = argmax_s cos(query_features[b, r], key_features[b, s])`` (lightly's
    ``select_most_similar``, here through its ``most_similar_index`` so that ``N`` may differ
    from ``M``); the negatives are shared by all locations. The loss is
    :func:`~sslkeypoint.losses.info_nce_loss` over all ``B·N`` locations (their mean). Feature
    maps ``(B, C, h, w)`` become point sets with ``x.flatten(2).transpose(1, 2)``.

    Args:
        query: ``(B, N, D)`` dense query projections (carry the gradient).
        key: ``(B, M, D)`` dense key projections.
        query_features: ``(B, N, C)`` backbone features of the query locations (for matching).
        key_features: ``(B, M, C)`` backbone features of the key locations.
        negatives: ``(Q, D)`` unit-length negatives (the dense queue); ``Q`` may be 0.
        temperature: Softmax temperature (> 0).
        query_groups: Optional ``(B,)`` group id of each image; queue entries of the same group
            are left out of its locations' negatives.
        negative_groups: ``(Q,)`` group id of each negative; required with ``query_groups``.

    Returns:
        Scalar loss (in nats).

    Raises:
        ValueError: On shapes other than the above (or the errors of ``info_nce_loss``).

    Examples:
        Two locations whose features swap places between the views: each query location is
        matched with the key location that holds its feature, so the loss is that of a perfect
        match against one orthogonal negative, ``log(1 + e^-1) ≈ 0.3133`` (``τ = 1``).

        >>> import torch
        >>> f = torch.eye(2)[None]  # (1, 2, 2): location 0 has feature e0, location 1 has e1
        >>> swapped = f.flip(1)  # the key view: e1 at location 0, e0 at location 1
        >>> negatives = torch.tensor([[0.0, 0.0, 1.0]])
        >>> q = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
        >>> dense_info_nce_loss(q, q.flip(1), f, swapped, negatives, temperature=1.0)
        tensor(0.3133)
    """
    if query.ndim != 3 or key.ndim != 3 or query.shape[0] != key.shape[0] or query.shape[2] != key.shape[2]:
        raise ValueError(
            f"query and key must be (B, N, D) and (B, M, D); got {tuple(query.shape)} and {tuple(key.shape)}"
        )
    if query_features.shape[:2] != query.shape[:2] or query_features.ndim != 3:
        raise ValueError(
            f"query_features must be (B, N, C) with (B, N) = {tuple(query.shape[:2])}; got "
            f"{tuple(query_features.shape)}"
        )
    if (
        key_features.ndim != 3
        or key_features.shape[:2] != key.shape[:2]
        or key_features.shape[2] != query_features.shape[2]
    ):
        raise ValueError(
            f"key_features must be (B, M, C) with (B, M) = {tuple(key.shape[:2])} and C = "
            f"{query_features.shape[2]}; got {tuple(key_features.shape)}"
        )
    batch, locations, dim = query.shape
    if query_groups is not None and tuple(query_groups.shape) != (batch,):
        raise ValueError(f"query_groups must have shape ({batch},); got {tuple(query_groups.shape)}")
    groups = None if query_groups is None else query_groups.repeat_interleave(locations)
    # lightly's select_most_similar, for N != M too (its gather assumes N == M): cosine argmax.
    index = most_similar_index(query_features.detach(), key_features.detach())  # (B, N)
    positives = key.gather(1, index[..., None].expand(-1, -1, dim))  # (B, N, D)
    return info_nce_loss(
        query.reshape(batch * locations, dim),
        positives.reshape(batch * locations, dim),
        negatives,
        temperature,
        groups,
        negative_groups,
    )

"""The choosing itself, on features: k-means, typicality, typical clusters, k-center greedy.

Plain batched torch on ``(N, D)`` features (rows L2-normalised, distances Euclidean):

* :func:`kmeans` — seeded k-means++ and Lloyd iterations;
* :func:`typicality` — how typical an image is: the inverse of its mean distance to its nearest
  neighbours (TypiClust, Hacohen et al., ICML 2022);
* :func:`typical_clusters` — coverage for small budgets: as many clusters as labels (with the
  labelled images), one label in each cluster no label covers yet, its most typical image, the
  largest clusters first; images of a group already chosen are passed over while the cluster has
  others;
* :func:`kcenter_greedy` — coverage as the farthest-first traversal (Sener & Savarese, ICLR 2018):
  each next image is the one farthest from everything chosen or labelled;
* :func:`uncertain_clusters` — later rounds: ``budget`` clusters of the candidates, the most
  uncertain image of each, the most uncertain first.

Each returns the chosen indices in order with a score and a short reason per pick.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Pick", "kcenter_greedy", "kmeans", "typical_clusters", "typicality", "uncertain_clusters"]


@dataclass(frozen=True)
class Pick:
    """One chosen image: its index in the candidates, a score and why it was chosen."""

    index: int
    score: float
    reason: str
    cluster: int | None = None


def _check(features: Tensor) -> Tensor:
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (N, D) matrix; got {tuple(features.shape)}")
    return features.to(torch.float64)


def kmeans(features: Tensor, k: int, seed: int = 0, iterations: int = 50,
           restarts: int = 1) -> tuple[Tensor, Tensor]:
    """Seeded k-means++ then Lloyd iterations, the best of ``restarts`` starts.

    One k-means++ start (as scikit-learn's ``n_init="auto"``) usually separates well-apart clusters
    but is not guaranteed to: it may seed two centres in one cluster and leave two others merged.
    More ``restarts`` keep the partition with the smallest within-cluster sum of squares.

    Args:
        features: ``(N, D)``.
        k: Clusters (at most ``N``).
        seed: Seed of the initialisation (start ``r`` uses ``seed + r``).
        iterations: Most Lloyd iterations (it stops when no assignment changes).
        restarts: Independent starts (at least 1).

    Returns:
        ``(labels (N,) long, centres (k, D))``.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
        >>> labels, _ = kmeans(x, 2)
        >>> bool(labels[0] == labels[1]), bool(labels[2] == labels[3]), bool(labels[0] != labels[2])
        (True, True, True)
    """
    x = _check(features)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}]; got {k}")
    if restarts < 1:
        raise ValueError(f"restarts must be at least 1; got {restarts}")
    best: tuple[float, Tensor, Tensor] | None = None
    for r in range(restarts):
        labels, centres = _kmeans_once(x, k, int(seed) + r, iterations)
        inertia = float(((x - centres[labels]) ** 2).sum())
        if best is None or inertia < best[0]:
            best = (inertia, labels, centres)
    assert best is not None
    return best[1], best[2]


def _kmeans_once(x: Tensor, k: int, seed: int, iterations: int) -> tuple[Tensor, Tensor]:
    """One k-means++ start and its Lloyd iterations."""
    n = x.shape[0]
    g = torch.Generator().manual_seed(seed)
    centres = [x[int(torch.randint(n, (1,), generator=g))]]
    dist = torch.cdist(x, centres[0][None]).squeeze(1) ** 2
    for _ in range(1, k):
        weights = dist.clamp_min(0)
        index = int(torch.multinomial(weights / weights.sum(), 1, generator=g)) if weights.sum() > 0 else \
            int(torch.randint(n, (1,), generator=g))
        centres.append(x[index])
        dist = torch.minimum(dist, torch.cdist(x, x[index][None]).squeeze(1) ** 2)
    c = torch.stack(centres)
    labels = torch.cdist(x, c).argmin(dim=1)
    for _ in range(iterations):
        for j in range(k):
            members = labels == j
            if members.any():
                c[j] = x[members].mean(dim=0)
        new = torch.cdist(x, c).argmin(dim=1)
        if torch.equal(new, labels):
            break
        labels = new
    return labels, c


def typicality(features: Tensor, neighbours: int = 20) -> Tensor:
    """``(N,)`` inverse mean distance of each row to its ``neighbours`` nearest other rows.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [0.1], [0.2], [3.0]])
        >>> typicality(x, neighbours=2).argmax().item(), typicality(x, neighbours=2).argmin().item()
        (1, 3)
    """
    x = _check(features)
    n = x.shape[0]
    if n == 1:
        return torch.ones(1, dtype=torch.float64)
    k = max(1, min(neighbours, n - 1))
    d = torch.cdist(x, x)
    d.fill_diagonal_(float("inf"))
    near = d.topk(k, dim=1, largest=False).values
    return 1.0 / (near.mean(dim=1) + 1e-12)


def _group_ok(index: int, groups: Sequence[Hashable] | None, used: set[Hashable]) -> bool:
    return groups is None or groups[index] not in used


def typical_clusters(features: Tensor, budget: int, *, labelled: Tensor | None = None,
                     groups: Sequence[Hashable] | None = None, seed: int = 0, neighbours: int = 20) -> list[Pick]:
    """Coverage by typical clusters (TypiClust; see the module notes).

    Args:
        features: ``(N, D)`` candidates.
        budget: Images to choose.
        labelled: Optional ``(L, D)`` features of images labelled already: their clusters are covered.
        groups: Optional group of each candidate (frames of one video, one subject).
        seed: Seed of the clustering.
        neighbours: Nearest neighbours of the typicality.

    Returns:
        ``min(budget, N)`` picks, the largest uncovered clusters first.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [5.0, 5.0], [5.1, 5.0]])
        >>> [p.index for p in typical_clusters(x, 2, neighbours=2)]  # the middle of the big cluster first
        [1, 3]
    """
    x = _check(features)
    n = x.shape[0]
    budget = min(int(budget), n)
    if budget <= 0:
        return []
    known = _check(labelled) if labelled is not None and labelled.numel() else x[:0]
    pool = torch.cat([x, known])
    k = min(pool.shape[0], budget + known.shape[0])
    labels, _ = kmeans(pool, k, seed=seed)
    covered = set(labels[n:].tolist())
    typical = typicality(x, neighbours)
    sizes = torch.bincount(labels[:n], minlength=k)
    order = sorted((j for j in range(k) if j not in covered and sizes[j] > 0), key=lambda j: (-int(sizes[j]), j))
    picks: list[Pick] = []
    used: set[Hashable] = set()
    chosen: set[int] = set()
    for j in order:
        members = [int(i) for i in (labels[:n] == j).nonzero().flatten()]
        members.sort(key=lambda i: -float(typical[i]))
        best = next((i for i in members if _group_ok(i, groups, used)), members[0])
        picks.append(Pick(best, float(typical[best]),
                          f"most typical image of cluster {j} ({int(sizes[j])} images, no label yet)", j))
        chosen.add(best)
        if groups is not None:
            used.add(groups[best])
        if len(picks) == budget:
            break
    if len(picks) < budget:  # fewer uncovered clusters than labels: fill with the most typical left
        for i in sorted(range(n), key=lambda i: -float(typical[i])):
            if i not in chosen:
                picks.append(Pick(i, float(typical[i]), "most typical image left", int(labels[i])))
                chosen.add(i)
                if len(picks) == budget:
                    break
    return picks


def kcenter_greedy(features: Tensor, budget: int, *, labelled: Tensor | None = None,
                   groups: Sequence[Hashable] | None = None) -> list[Pick]:
    """Coverage by the farthest-first traversal (see the module notes).

    Starts from the labelled images, or from the candidate nearest the mean when there are none.
    A candidate of a group already chosen is passed over while candidates of other groups remain.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [1.0], [10.0], [4.0]])
        >>> [p.index for p in kcenter_greedy(x, 3, labelled=torch.tensor([[0.5]]))]
        [2, 3, 0]
    """
    x = _check(features)
    n = x.shape[0]
    budget = min(int(budget), n)
    picks: list[Pick] = []
    if budget <= 0:
        return picks
    used: set[Hashable] = set()
    if labelled is not None and labelled.numel():
        dist = torch.cdist(x, _check(labelled)).amin(dim=1)
    else:
        first = int(torch.cdist(x, x.mean(dim=0, keepdim=True)).squeeze(1).argmin())
        picks.append(Pick(first, 0.0, "the most central image (nothing labelled yet)"))
        if groups is not None:
            used.add(groups[first])
        dist = torch.cdist(x, x[first][None]).squeeze(1)
    taken = torch.zeros(n, dtype=torch.bool)
    for p in picks:
        taken[p.index] = True
    while len(picks) < budget:
        score = dist.clone()
        score[taken] = -1.0
        allowed = torch.tensor([_group_ok(i, groups, used) for i in range(n)]) & ~taken
        if allowed.any():
            score[~allowed] = -1.0
        index = int(score.argmax())
        picks.append(Pick(index, float(dist[index]), f"farthest from every chosen or labelled image "
                                                     f"(distance {float(dist[index]):.3f})"))
        taken[index] = True
        if groups is not None:
            used.add(groups[index])
        dist = torch.minimum(dist, torch.cdist(x, x[index][None]).squeeze(1))
    return picks


def uncertain_clusters(features: Tensor, uncertainty: Tensor, budget: int, *,
                       groups: Sequence[Hashable] | None = None, seed: int = 0, unit: str = "") -> list[Pick]:
    """Uncertainty with diversity: ``budget`` clusters of the candidates, the most uncertain of each.

    Args:
        features: ``(N, D)`` candidates.
        uncertainty: ``(N,)`` how uncertain the model is on each (higher: more).
        budget: Images to choose.
        groups: Optional group of each candidate.
        seed: Seed of the clustering.
        unit: Unit of the uncertainty in the reasons.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
        >>> [p.index for p in uncertain_clusters(x, torch.tensor([0.2, 0.9, 0.5, 0.1]), 2)]
        [1, 2]
    """
    x = _check(features)
    n = x.shape[0]
    if tuple(uncertainty.shape) != (n,):
        raise ValueError(f"uncertainty must be (N,) = ({n},); got {tuple(uncertainty.shape)}")
    budget = min(int(budget), n)
    if budget <= 0:
        return []
    labels, _ = kmeans(x, budget, seed=seed)
    u = uncertainty.to(torch.float64)
    picks: list[Pick] = []
    used: set[Hashable] = set()
    for j in range(budget):
        members = [int(i) for i in (labels == j).nonzero().flatten()]
        if not members:
            continue
        members.sort(key=lambda i: -float(u[i]))
        best = next((i for i in members if _group_ok(i, groups, used)), members[0])
        picks.append(Pick(best, float(u[best]), f"most uncertain of cluster {j} ({len(members)} images): "
                                                f"{float(u[best]):.3g}{unit}", j))
        if groups is not None:
            used.add(groups[best])
    chosen = {p.index for p in picks}
    for i in sorted(range(n), key=lambda i: -float(u[i])):  # empty clusters: the most uncertain left
        if len(picks) >= budget:
            break
        if i not in chosen:
            picks.append(Pick(i, float(u[i]), f"most uncertain image left: {float(u[i]):.3g}{unit}", int(labels[i])))
            chosen.add(i)
    return sorted(picks, key=lambda p: -p.score)

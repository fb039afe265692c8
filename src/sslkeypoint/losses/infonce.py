"""InfoNCE against a queue of negatives (MoCo), with group masking, on lightly's memory bank.

MoCo (He et al., 2020) scores each query against its own key (the positive) and against a queue
of keys from earlier batches (the negatives)::

    loss_i = -log( exp(q_i·k_i / τ) / (exp(q_i·k_i / τ) + Σ_j exp(q_i·n_j / τ)) )

with ``q``, ``k`` L2-normalised and the queue entries ``n_j`` unit vectors. Some queue entries are
not true negatives: a key of the query's own image enqueued one epoch earlier, or, with temporally
adjacent frames, any frame of the query's own sequence. Each queue entry therefore carries a
*group* id (the image index, the sequence index; ``-1`` for none), and entries of the query's own
group are left out of its negatives (their logit is ``-inf``).

* :func:`info_nce_loss` is the loss as a plain batched function.
* :class:`GroupMemoryBank` is the queue: lightly's
  :class:`~lightly.models.modules.memory_bank.MemoryBankModule` plus a group id per entry, saved in
  ``state_dict()``.
* :class:`InfoNCELoss` owns a :class:`GroupMemoryBank`, computes :func:`info_nce_loss` against it
  and enqueues the keys in training.

With nothing masked the loss is the value of lightly's ``NTXentLoss(memory_bank_size=...)`` (equal
up to float rounding: lightly sums the products in another order).
"""

from __future__ import annotations

from collections.abc import Mapping

import lightly
import torch
from lightly.models.modules.memory_bank import MemoryBankModule
from lightly.models.utils import concat_all_gather
from lightly.utils import dist
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["GroupMemoryBank", "InfoNCELoss", "info_nce_loss"]

#: What :class:`GroupMemoryBank` uses of lightly's ``MemoryBankModule``: the buffers ``bank``
#: ``(N, D)`` (the queue) and ``bank_ptr`` ``(1,)`` (the write pointer), and the attribute
#: ``gather_distributed``. Checked by :func:`_check_lightly_memory_bank` at construction, so that a
#: lightly release that renames them fails there, loudly, instead of training on a queue that is
#: never written.
_LIGHTLY_BUFFERS = ("bank", "bank_ptr")


def info_nce_loss(
    query: Tensor,
    key: Tensor,
    negatives: Tensor,
    temperature: float = 0.2,
    query_groups: Tensor | None = None,
    negative_groups: Tensor | None = None,
) -> Tensor:
    """InfoNCE loss of queries against their keys (positives) and a set of negatives.

    ``query`` and ``key`` are L2-normalised here; ``negatives`` are used as given (the queue holds
    normalised keys). The logits are the cosine similarities divided by ``temperature``, the
    positive first; the loss is their cross-entropy with target 0, averaged over the batch. With
    groups, negative ``j`` is left out of query ``i``'s denominator when
    ``negative_groups[j] == query_groups[i]``.

    Args:
        query: ``(B, D)`` query projections (carry the gradient).
        key: ``(B, D)`` key projections, the positive of the query in the same row.
        negatives: ``(N, D)`` unit-length negatives (the queue); ``N`` may be 0.
        temperature: Softmax temperature ``τ`` (> 0; 0.2 in MoCo v2).
        query_groups: Optional ``(B,)`` integer group id of each query.
        negative_groups: ``(N,)`` integer group id of each negative; required with
            ``query_groups`` (``-1`` marks "no group" by convention; give queries ids >= 0).

    Returns:
        Scalar loss (in nats).

    Raises:
        ValueError: On shapes other than the above, a temperature <= 0, or only one of the two
            group tensors.

    Examples:
        Query and key agree; the two negatives have cosine 0 and -1 (``τ = 1``): the loss is
        ``log(1 + e^-1 + e^-2) ≈ 0.4076``. Leaving out the second negative (same group as the
        query) gives ``log(1 + e^-1) ≈ 0.3133``.

        >>> import torch
        >>> q = k = torch.tensor([[2.0, 0.0]])
        >>> negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
        >>> info_nce_loss(q, k, negatives, temperature=1.0)
        tensor(0.4076)
        >>> info_nce_loss(q, k, negatives, 1.0, torch.tensor([7]), torch.tensor([3, 7]))
        tensor(0.3133)
    """
    if query.ndim != 2 or query.shape != key.shape:
        raise ValueError(
            "query and key must both be (B, D) of the same shape; got "
            f"{tuple(query.shape)} and {tuple(key.shape)}"
        )
    batch, dim = query.shape
    if negatives.ndim != 2 or negatives.shape[1] != dim:
        raise ValueError(f"negatives must be (N, D) with D = {dim}; got {tuple(negatives.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if (query_groups is None) != (negative_groups is None):
        raise ValueError("give both query_groups and negative_groups, or neither")
    if query_groups is not None and negative_groups is not None:
        if tuple(query_groups.shape) != (batch,):
            raise ValueError(f"query_groups must have shape ({batch},); got {tuple(query_groups.shape)}")
        if tuple(negative_groups.shape) != (negatives.shape[0],):
            raise ValueError(
                f"negative_groups must have shape ({negatives.shape[0]},); got {tuple(negative_groups.shape)}"
            )
    q = F.normalize(query, dim=1)
    k = F.normalize(key, dim=1)
    sim_pos = (q * k).sum(dim=1, keepdim=True)  # (B, 1)
    sim_neg = q @ negatives.to(q.dtype).T  # (B, N)
    if query_groups is not None and negative_groups is not None:
        same = query_groups.to(q.device)[:, None] == negative_groups.to(q.device)[None, :]
        sim_neg = sim_neg.masked_fill(same, -torch.inf)
    logits = torch.cat([sim_pos, sim_neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long, device=q.device))


def _check_lightly_memory_bank(bank: MemoryBankModule, size: int, dim: int) -> None:
    """Raise ``RuntimeError`` if lightly's ``MemoryBankModule`` no longer has the expected layout.

    Checks the names that the marked section of :class:`GroupMemoryBank` (the only code using
    lightly's attribute names) reads and writes; see ``_LIGHTLY_BUFFERS``.
    """
    buffers = dict(bank.named_buffers(recurse=False))
    shapes = dict(zip(_LIGHTLY_BUFFERS, [(size, dim), (1,)]))
    for name, expected in shapes.items():
        found = buffers.get(name)
        if found is None or tuple(found.shape) != expected:
            raise RuntimeError(
                f"lightly {lightly.__version__}: MemoryBankModule has no buffer {name!r} of shape "
                f"{expected} (buffers: { {n: tuple(t.shape) for n, t in buffers.items()} }). "
                "sslkeypoint.losses.GroupMemoryBank reads and writes the queue through lightly's "
                "'bank' and 'bank_ptr' buffers and must be adapted to this lightly version."
            )
    if not isinstance(getattr(bank, "gather_distributed", None), bool):
        raise RuntimeError(
            f"lightly {lightly.__version__}: MemoryBankModule has no boolean attribute "
            "'gather_distributed'; sslkeypoint.losses.GroupMemoryBank must be adapted."
        )


class GroupMemoryBank(MemoryBankModule):
    """The MoCo queue: lightly's ``MemoryBankModule`` with a group id per entry, saved in ``state_dict()``.

    The queue holds ``size`` unit vectors of dimension ``dim`` (lightly fills it with random ones),
    a write pointer, and the group id of every entry (``-1``: enqueued without a group, or never
    filled). Calling the module (lightly's ``forward(output)``) returns ``(output, negatives)`` with
    ``negatives`` a ``(size, dim)`` copy of the queue; :meth:`enqueue` then writes a batch of keys
    with their groups. Only the enqueue step differs from lightly's: it writes the group ids at
    the same positions as the keys, in one place, so keys and groups cannot drift apart. As in
    lightly, a batch that reaches the end of the queue fills it up to the end and the pointer
    returns to 0 (the rest of that batch is not stored).

    Several processes (``torch.distributed`` initialised, world size > 1, ``gather_distributed``):
    keys and groups are gathered from every rank (lightly's ``concat_all_gather``, in rank order)
    before they are enqueued, so every rank holds the same queue.

    Saving: lightly registers its queue buffers with ``persistent=False``, so a plain
    ``MemoryBankModule`` is absent from ``state_dict()``. This class keeps lightly's buffers as
    they are and saves the whole queue through torch's public extra-state hooks
    (:meth:`get_extra_state` / :meth:`set_extra_state`): one ``state_dict()`` entry
    ``<prefix>_extra_state`` holding ``{"keys": (size, dim), "pointer": (1,), "groups": (size,)}``.
    That format is sslkeypoint's own — it does not depend on lightly's attribute names — and a
    resumed run continues from exactly the saved queue. The group ids live in a non-persistent
    buffer too, so they move with ``.to(device)`` like the keys and are saved only once.

    Args:
        size: Number of queue entries ``N`` (>= 1).
        dim: Dimension ``D`` of a key (>= 1).
        gather_distributed: Gather keys and groups from every rank before enqueueing.

    Raises:
        ValueError: If ``size`` or ``dim`` is below 1.
        RuntimeError: If the installed lightly's ``MemoryBankModule`` no longer has the buffers this
            class relies on.

    Examples:
        >>> import torch
        >>> bank = GroupMemoryBank(size=4, dim=2)
        >>> bank.enqueue(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([5, 5, 6]))
        >>> bank.pointer, bank.groups.tolist()
        (3, [5, 5, 6, -1])
        >>> bank.enqueue(torch.tensor([[0.0, 1.0], [0.0, 1.0]]))  # fills entry 3, wraps to 0
        >>> bank.pointer, bank.groups.tolist()
        (0, [5, 5, 6, -1])
        >>> _, negatives = bank(torch.zeros(1, 2))  # lightly's query: a copy of the queue
        >>> negatives.shape, sorted(bank.state_dict()["_extra_state"])
        (torch.Size([4, 2]), ['groups', 'keys', 'pointer'])
    """

    def __init__(self, size: int, dim: int, gather_distributed: bool = True) -> None:
        if size < 1 or dim < 1:
            raise ValueError(f"size and dim must be >= 1; got {size} and {dim}")
        super().__init__(size=(size, dim), gather_distributed=gather_distributed, feature_dim_first=False)
        _check_lightly_memory_bank(self, size, dim)
        self.groups: Tensor
        self.register_buffer("groups", torch.full((size,), -1, dtype=torch.long), persistent=False)

    # -- the only code that touches lightly's buffer names ('bank', 'bank_ptr') -------------------

    @property
    def keys(self) -> Tensor:
        """The queue itself, ``(size, dim)`` (the live buffer: write only under ``torch.no_grad``)."""
        return self.bank

    @property
    def pointer(self) -> int:
        """Index of the entry the next key is written to."""
        return int(self.bank_ptr)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, batch: Tensor, groups: Tensor | None = None) -> None:
        """Write ``batch (B, D)`` and its ``groups (B,)`` (``None``: ``-1``) at the pointer.

        Overrides lightly's step of the same name (which writes the keys only), so that lightly's
        ``forward(output, update=True)`` stores the keys with group ``-1``.
        """
        if groups is None:
            groups = torch.full((batch.shape[0],), -1, dtype=torch.long, device=batch.device)
        groups = groups.to(device=batch.device, dtype=torch.long)
        if self.gather_distributed and dist.world_size() > 1:
            batch = concat_all_gather(batch.contiguous())
            groups = concat_all_gather(groups.contiguous())
        size = self.bank.shape[0]
        ptr = int(self.bank_ptr)
        end = min(ptr + batch.shape[0], size)
        self.bank[ptr:end] = batch[: end - ptr].detach()
        self.groups[ptr:end] = groups[: end - ptr].to(self.groups.device)
        self.bank_ptr[0] = 0 if end == size else end

    def get_extra_state(self) -> dict[str, Tensor]:
        """The queue for ``state_dict()``: ``{"keys", "pointer", "groups"}`` (detached, not copied)."""
        return {"keys": self.bank.detach(), "pointer": self.bank_ptr.detach(), "groups": self.groups.detach()}

    def set_extra_state(self, state: object) -> None:
        """Restore the queue from :meth:`get_extra_state`'s dict (copied into the buffers).

        Raises:
            ValueError: If the entries or their shapes do not fit this queue.
        """
        size, dim = self.bank.shape
        expected = {"keys": (size, dim), "pointer": (1,), "groups": (size,)}
        if not isinstance(state, Mapping) or set(state) != set(expected):
            names = sorted(state) if isinstance(state, Mapping) else type(state).__name__
            raise ValueError(f"queue state must be a dict with entries {sorted(expected)}; got {names}")
        for name, shape in expected.items():
            value = state[name]
            if not isinstance(value, Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"queue state {name!r} must have shape {shape}; got {got}")
        ptr = int(state["pointer"])
        if not 0 <= ptr < size:
            raise ValueError(f"queue state 'pointer' must be in [0, {size}); got {ptr}")
        with torch.no_grad():
            self.bank.copy_(state["keys"])
            self.bank_ptr.copy_(state["pointer"])
            self.groups.copy_(state["groups"])

    # ----------------------------------------------------------------------------------------------

    @property
    def queue_size(self) -> int:
        """Number of entries ``N``."""
        return int(self.keys.shape[0])

    def enqueue(self, keys: Tensor, groups: Tensor | None = None) -> None:
        """Write keys and their group ids at the pointer (gathered from every rank first).

        Args:
            keys: ``(B, D)`` unit-length keys (stored detached, in the queue's dtype).
            groups: Optional ``(B,)`` integer group ids; ``None`` stores ``-1``.

        Raises:
            ValueError: If ``keys`` is not ``(B, D)`` or ``groups`` not ``(B,)``.
        """
        if keys.ndim != 2 or keys.shape[1] != self.keys.shape[1]:
            raise ValueError(f"keys must be (B, {self.keys.shape[1]}); got {tuple(keys.shape)}")
        if groups is not None and tuple(groups.shape) != (keys.shape[0],):
            raise ValueError(f"groups must have shape ({keys.shape[0]},); got {tuple(groups.shape)}")
        self._dequeue_and_enqueue(keys, groups)


class InfoNCELoss(nn.Module):
    """InfoNCE of queries against their keys and a :class:`GroupMemoryBank` queue (MoCo).

    ``forward(query, key, groups)`` is :func:`info_nce_loss` against the queue as it was before
    this batch; when the query carries a gradient (training), the normalised keys are then
    enqueued with their groups. Without a gradient (evaluation) the queue stays unchanged.

    Args:
        queue_size: Number of negatives ``N`` in the queue (65536 in MoCo v2).
        dim: Projection dimension ``D``.
        temperature: Softmax temperature (0.2 in MoCo v2).
        gather_distributed: Gather keys (and groups) from every rank before enqueueing.

    Attributes:
        temperature: The temperature.
        memory_bank: The :class:`GroupMemoryBank`.

    Examples:
        >>> import torch
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> criterion = InfoNCELoss(queue_size=8, dim=4)
        >>> q = torch.randn(2, 4, requires_grad=True)
        >>> loss = criterion(q, torch.randn(2, 4), groups=torch.tensor([3, 4]))
        >>> loss.backward()
        >>> criterion.memory_bank.pointer, criterion.memory_bank.groups[:3].tolist()
        (2, [3, 4, -1])
    """

    def __init__(
        self,
        queue_size: int,
        dim: int,
        temperature: float = 0.2,
        gather_distributed: bool = True,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0; got {temperature}")
        self.temperature = float(temperature)
        self.memory_bank = GroupMemoryBank(queue_size, dim, gather_distributed=gather_distributed)

    def forward(self, query: Tensor, key: Tensor, groups: Tensor | None = None) -> Tensor:
        """InfoNCE loss; enqueues the keys when ``query`` requires a gradient.

        Args:
            query: ``(B, D)`` query projections.
            key: ``(B, D)`` key projections (positives), same order.
            groups: Optional ``(B,)`` integer group ids: queue entries of a query's own group are
                left out of its negatives, and the keys are stored with them.

        Returns:
            Scalar loss.
        """
        if groups is not None:
            if tuple(groups.shape) != (query.shape[0],):
                raise ValueError(f"groups must have shape ({query.shape[0]},); got {tuple(groups.shape)}")
            groups = groups.to(device=query.device, dtype=torch.long)
        negative_groups = None if groups is None else self.memory_bank.groups.clone()
        _, negatives = self.memory_bank(key)  # lightly's query: a copy of the queue, (N, D)
        loss = info_nce_loss(query, key, negatives, self.temperature, groups, negative_groups)
        if query.requires_grad:
            self.memory_bank.enqueue(F.normalize(key.detach(), dim=1), groups)
        return loss

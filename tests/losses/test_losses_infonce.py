"""Tests for sslkeypoint.losses.infonce: golden values, masking, the queue, its state, lightly's layout."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from lightly.loss import NTXentLoss
from lightly.models.modules.memory_bank import MemoryBankModule
from torch.nn import functional as F

from sslkeypoint.losses import GroupMemoryBank, InfoNCELoss, info_nce_loss

QUERY = torch.tensor([[3.0, 0.0], [0.0, 2.0]])  # unit: (1, 0), (0, 1)
KEY = torch.tensor([[1.0, 1.0], [0.0, -1.0]])  # unit: (1, 1)/√2, (0, -1)
NEGATIVES = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])


def nll(logits: list[float]) -> float:
    """-log softmax(logits)[0], written out."""
    return -logits[0] + math.log(sum(math.exp(v) for v in logits))


def test_golden_value_by_hand() -> None:
    r = 1 / math.sqrt(2)
    # τ = 0.5: query 0 has cosine r with its key and 1, 0, -1 with the negatives; query 1 has -1
    # with its key and 0, 1, 0 with the negatives.
    expected = (nll([2 * r, 2, 0, -2]) + nll([-2, 0, 2, 0])) / 2
    loss = info_nce_loss(QUERY, KEY, NEGATIVES, temperature=0.5)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_masked_golden_value_by_hand() -> None:
    r = 1 / math.sqrt(2)
    # Query 0 (group 0) loses negative 0, query 1 (group 1) loses negative 1; -1 is nobody's group.
    expected = (nll([2 * r, 0, -2]) + nll([-2, 0, 0])) / 2
    loss = info_nce_loss(QUERY, KEY, NEGATIVES, 0.5, torch.tensor([0, 1]), torch.tensor([0, 1, -1]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_masking_invariants() -> None:
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    negatives = F.normalize(torch.randn(20, 8, generator=g), dim=1)
    plain = info_nce_loss(q, k, negatives)
    # Groups that match no negative change nothing.
    unmatched = info_nce_loss(q, k, negatives, 0.2, torch.arange(6), torch.full((20,), -1))
    assert torch.equal(unmatched, plain)
    # Masking removes terms from each denominator: the loss can only fall.
    some = info_nce_loss(q, k, negatives, 0.2, torch.arange(6), torch.arange(20) % 10)
    assert some < plain
    # Every negative masked: only the positive is left, and its log-probability is 0.
    everything = info_nce_loss(q, k, negatives, 0.2, torch.zeros(6, dtype=torch.long), torch.zeros(20, dtype=torch.long))
    assert everything.item() == 0.0
    # Query and key scale do not matter (both are normalised); the loss is finite without negatives.
    torch.testing.assert_close(info_nce_loss(3 * q, 0.5 * k, negatives), plain)
    assert info_nce_loss(q, k, negatives[:0]).item() == 0.0


def test_gradient_float64() -> None:
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 4, generator=g, dtype=torch.float64)
    negatives = F.normalize(torch.randn(5, 4, generator=g, dtype=torch.float64), dim=1)
    groups, neg_groups = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1, -1, 2])
    assert torch.autograd.gradcheck(lambda x: info_nce_loss(x, k, negatives, 0.2, groups, neg_groups), (q,))


def test_module_matches_lightly_ntxent_with_memory_bank() -> None:
    torch.manual_seed(0)
    ours = InfoNCELoss(queue_size=10, dim=8, temperature=0.2)
    lightly_loss = NTXentLoss(temperature=0.2, memory_bank_size=(10, 8))
    with torch.no_grad():
        lightly_loss.memory_bank.bank.copy_(ours.memory_bank.keys)
    g = torch.Generator().manual_seed(2)
    for _ in range(4):  # 4 × 4 keys: the queue wraps around once
        q = torch.randn(4, 8, generator=g, requires_grad=True)
        k = torch.randn(4, 8, generator=g)
        a, b = ours(q, k), lightly_loss(q, k)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(torch.autograd.grad(a, q)[0], torch.autograd.grad(b, q)[0])
        assert torch.equal(ours.memory_bank.keys, lightly_loss.memory_bank.bank)  # the same keys stored
        assert ours.memory_bank.pointer == int(lightly_loss.memory_bank.bank_ptr)


def test_module_enqueues_only_with_gradient_and_validates_first() -> None:
    criterion = InfoNCELoss(queue_size=6, dim=3)
    before = criterion.memory_bank.get_extra_state()
    before = {n: t.clone() for n, t in before.items()}
    q, k = torch.randn(2, 3), torch.randn(2, 3)
    criterion(q, k, torch.tensor([1, 2]))  # no gradient: evaluation
    with pytest.raises(ValueError, match=r"groups must have shape \(2,\); got \(3,\)"):
        criterion(q.requires_grad_(), k, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="query and key"):
        criterion(q, k[:1], torch.tensor([1, 2]))
    for name, t in criterion.memory_bank.get_extra_state().items():
        assert torch.equal(t, before[name]), name
    criterion(q, k, torch.tensor([4, 5], dtype=torch.int32))
    assert criterion.memory_bank.groups.tolist() == [4, 5, -1, -1, -1, -1]
    assert criterion.memory_bank.groups.dtype == torch.long
    torch.testing.assert_close(criterion.memory_bank.keys[:2], F.normalize(k, dim=1))


def test_bank_wraps_around_with_groups() -> None:
    bank = GroupMemoryBank(size=5, dim=2)
    keys = F.normalize(torch.arange(1.0, 17.0).reshape(8, 2), dim=1)
    bank.enqueue(keys[:3], torch.tensor([10, 11, 12]))
    assert bank.pointer == 3 and bank.groups.tolist() == [10, 11, 12, -1, -1]
    bank.enqueue(keys[3:5], torch.tensor([13, 14]))  # ends exactly at the end: back to 0
    assert bank.pointer == 0 and bank.groups.tolist() == [10, 11, 12, 13, 14]
    bank.enqueue(keys[5:8])  # no groups: -1
    assert bank.pointer == 3 and bank.groups.tolist() == [-1, -1, -1, 13, 14]
    bank.enqueue(keys[:4], torch.tensor([20, 21, 22, 23]))  # overruns: 2 written, the rest dropped
    assert bank.pointer == 0 and bank.groups.tolist() == [-1, -1, -1, 20, 21]
    assert torch.equal(bank.keys, torch.cat([keys[5:8], keys[:2]]))
    # lightly's own forward(update=True) goes through the same enqueue step, with group -1.
    _, negatives = bank(keys[2:4], update=True)
    assert negatives is not None and torch.equal(negatives, torch.cat([keys[5:8], keys[:2]]))
    assert bank.pointer == 2 and bank.groups.tolist() == [-1, -1, -1, 20, 21]
    assert torch.equal(bank.keys[:2], keys[2:4])
    with pytest.raises(ValueError, match=r"groups must have shape \(2,\)"):
        bank.enqueue(keys[:2], torch.tensor([1]))
    with pytest.raises(ValueError, match=r"keys must be \(B, 2\)"):
        bank.enqueue(torch.zeros(2, 3))


def test_state_dict_round_trip_restores_the_queue_exactly() -> None:
    torch.manual_seed(3)
    bank = GroupMemoryBank(size=7, dim=4)
    bank.enqueue(F.normalize(torch.randn(5, 4), dim=1), torch.tensor([3, 1, 4, 1, 5]))
    buffer = io.BytesIO()
    torch.save(bank.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    assert list(saved) == ["_extra_state"]
    fresh = GroupMemoryBank(size=7, dim=4)
    assert not torch.equal(fresh.keys, bank.keys)
    fresh.load_state_dict(saved)
    assert torch.equal(fresh.keys, bank.keys) and fresh.pointer == 5
    assert torch.equal(fresh.groups, bank.groups) and fresh.groups.tolist() == [3, 1, 4, 1, 5, -1, -1]
    # The restored state is a copy: the two queues now evolve independently and identically.
    nxt = F.normalize(torch.randn(3, 4), dim=1)
    bank.enqueue(nxt, torch.tensor([9, 9, 9]))
    fresh.enqueue(nxt, torch.tensor([9, 9, 9]))
    assert torch.equal(fresh.keys, bank.keys) and fresh.pointer == bank.pointer == 0
    assert not torch.equal(saved["_extra_state"]["keys"], bank.keys)
    # Inside a larger module, and with the loss module around it.
    outer = InfoNCELoss(7, 4)
    outer.memory_bank.load_state_dict(bank.state_dict())
    assert list(outer.state_dict()) == ["memory_bank._extra_state"]
    restored = InfoNCELoss(7, 4)
    restored.load_state_dict(copy.deepcopy(outer.state_dict()))
    for name, t in restored.memory_bank.get_extra_state().items():
        assert torch.equal(t, bank.get_extra_state()[name]), name


def test_state_that_does_not_fit_is_refused() -> None:
    bank = GroupMemoryBank(size=4, dim=2)
    good = {k: v.clone() for k, v in bank.get_extra_state().items()}
    with pytest.raises(ValueError, match=r"'keys' must have shape \(4, 2\); got \(5, 2\)"):
        bank.set_extra_state({**good, "keys": torch.zeros(5, 2)})
    with pytest.raises(ValueError, match="entries"):
        bank.set_extra_state({"keys": good["keys"]})
    with pytest.raises(ValueError, match=r"'pointer' must be in \[0, 4\)"):
        bank.set_extra_state({**good, "pointer": torch.tensor([4])})
    with pytest.raises(RuntimeError, match="Missing key"):
        bank.load_state_dict({})


def test_lightly_memory_bank_layout_guard() -> None:
    # What GroupMemoryBank relies on in lightly's MemoryBankModule. If this fails, lightly changed
    # its memory bank and sslkeypoint/losses/infonce.py (GroupMemoryBank) must follow.
    plain = MemoryBankModule(size=(6, 3), feature_dim_first=False)
    buffers = dict(plain.named_buffers())
    assert set(buffers) == {"bank", "bank_ptr"}, f"lightly's MemoryBankModule buffers changed: {set(buffers)}"
    assert buffers["bank"].shape == (6, 3) and buffers["bank_ptr"].shape == (1,)
    assert plain.state_dict() == {}, "lightly now saves its memory bank itself: drop GroupMemoryBank's extra state"
    assert isinstance(plain.gather_distributed, bool)
    _, negatives = plain(torch.zeros(2, 3))  # the query returns a copy of the bank as (N, D)
    assert negatives is not None and torch.equal(negatives, plain.bank)
    assert negatives.data_ptr() != plain.bank.data_ptr()


def test_guard_fails_loudly_when_lightly_renames_its_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    original = MemoryBankModule.__init__

    def renamed(self: MemoryBankModule, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        queue = self.bank
        delattr(self, "bank")
        self.register_buffer("memory", queue, persistent=False)

    monkeypatch.setattr(MemoryBankModule, "__init__", renamed)
    with pytest.raises(RuntimeError, match=r"no buffer 'bank' of shape \(4, 2\).*must be adapted"):
        GroupMemoryBank(size=4, dim=2)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"negatives must be \(N, D\) with D = 2"):
        info_nce_loss(QUERY, KEY, torch.zeros(3, 4))
    with pytest.raises(ValueError, match="query and key"):
        info_nce_loss(QUERY, KEY[:1], NEGATIVES)
    with pytest.raises(ValueError, match="temperature"):
        info_nce_loss(QUERY, KEY, NEGATIVES, temperature=0.0)
    with pytest.raises(ValueError, match="both"):
        info_nce_loss(QUERY, KEY, NEGATIVES, 0.2, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"query_groups must have shape \(2,\)"):
        info_nce_loss(QUERY, KEY, NEGATIVES, 0.2, torch.tensor([0]), torch.zeros(3))
    with pytest.raises(ValueError, match=r"negative_groups must have shape \(3,\)"):
        info_nce_loss(QUERY, KEY, NEGATIVES, 0.2, torch.tensor([0, 1]), torch.zeros(2))
    with pytest.raises(ValueError, match="size and dim"):
        GroupMemoryBank(0, 4)
    with pytest.raises(ValueError, match="temperature"):
        InfoNCELoss(4, 2, temperature=-1.0)

"""Tests for sslkeypoint.ssl.moco: queue persistence, momentum, shuffle/split BN, masking, DDP."""

from __future__ import annotations

import copy
import logging
import os
import socket
import warnings

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from lightly.loss import NTXentLoss
from torch import Tensor, nn
from torch.nn import functional as F

from sslkeypoint.encoders import UNetEncoder
from sslkeypoint.ssl.moco import MoCoV2, auto_momentum, cap_queue_size

QUEUE = "criterion.memory_bank._extra_state"  # torch's key for GroupMemoryBank.get_extra_state()


class ConvEncoder(nn.Module):
    """Encoder without batch statistics: each image's features depend on that image only."""

    def __init__(self) -> None:
        super().__init__()
        self.channels, self.reductions, self.in_chans = [6], [2], 1
        self.conv = nn.Conv2d(1, 6, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [torch.tanh(self.conv(x))]


def tiny_unet() -> UNetEncoder:
    return UNetEncoder(in_chans=1, widths=(4, 8), bottleneck_width=16)


def test_queue_is_in_state_dict() -> None:
    # lightly 1.6 keeps its memory bank out of state_dict(); the queue of MoCoV2 is in it.
    assert "memory_bank.bank" not in NTXentLoss(memory_bank_size=(8, 4)).state_dict()
    sd = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=8).state_dict()
    queue = sd[QUEUE]
    assert queue["keys"].shape == (8, 4) and queue["pointer"].shape == (1,) and queue["groups"].shape == (8,)
    assert [k for k in sd if "memory_bank" in k] == [QUEUE]


def test_queue_round_trip_and_resumed_step_identical() -> None:
    model = MoCoV2(tiny_unet(), projection_dim=8, queue_size=20, split_bn=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        x = torch.rand(4, 1, 16, 16)
        loss = model(x, x.flip(-1), groups=torch.full((4,), step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_momentum(0.9)
    sd = copy.deepcopy(model.state_dict())
    fresh = MoCoV2(tiny_unet(), projection_dim=8, queue_size=20, split_bn=2)
    assert not torch.equal(fresh.queue.keys, model.queue.keys)
    fresh.load_state_dict(sd)
    assert torch.equal(fresh.queue.keys, model.queue.keys)
    assert fresh.queue.pointer == 12
    assert fresh.queue.groups.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [-1] * 8
    # The next step continues identically from the restored queue.
    x = torch.rand(4, 1, 16, 16)
    torch.manual_seed(5)
    a = model(x, x.flip(-1))
    torch.manual_seed(5)
    b = fresh(x, x.flip(-1))
    assert torch.equal(a, b)
    assert torch.equal(fresh.queue.keys, model.queue.keys)
    assert torch.equal(fresh.queue.groups, model.queue.groups) and fresh.queue.pointer == 16


def test_momentum_update_arithmetic() -> None:
    model = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=8)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.fill_(2.0)
        for p in model.encoder_momentum.parameters():
            p.fill_(1.0)
    head_q = [p.clone() for p in model.projection_head.parameters()]
    head_k = [p.clone() for p in model.projection_head_momentum.parameters()]
    model.update_momentum(0.9)
    for p in model.encoder_momentum.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.9 * 1.0 + 0.1 * 2.0))  # 1.1
    for q, k, new in zip(head_q, head_k, model.projection_head_momentum.parameters()):
        torch.testing.assert_close(new, 0.9 * k + 0.1 * q)
    # Gradients never reach the key side.
    assert not any(p.requires_grad for p in model.encoder_momentum.parameters())
    assert not any(p.requires_grad for p in model.projection_head_momentum.parameters())


def test_cap_queue_size_says_so_and_caps(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sslkeypoint.ssl.moco"):
        assert cap_queue_size(65536, 100, 64) == 36
    assert "MoCo queue of 65536 capped to 36" in caplog.text
    caplog.clear()
    with warnings.catch_warnings(), caplog.at_level(logging.INFO, logger="sslkeypoint.ssl.moco"):
        warnings.simplefilter("error")
        assert cap_queue_size(1000, 100_000, 64) == 1000
        assert MoCoV2.cap_queue_size(36, 100, 64) == 36
    assert caplog.text == ""
    with pytest.raises(ValueError, match="more training images than one batch"):
        cap_queue_size(100, 64, 64)


def test_shuffle_and_split_keep_keys_aligned_without_batch_statistics() -> None:
    model = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=8, split_bn=4)
    plain = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=8, split_bn=1, shuffle_bn=False)
    plain.load_state_dict(model.state_dict())
    x = torch.rand(8, 1, 12, 12)
    torch.testing.assert_close(model.key(x), plain.key(x))


def test_split_bn_normalises_each_sub_batch_on_its_own() -> None:
    enc = tiny_unet()
    model = MoCoV2(enc, projection_dim=4, queue_size=8, split_bn=2, shuffle_bn=False)
    x = torch.rand(8, 1, 16, 16)
    ref = copy.deepcopy(model)
    expected = torch.cat([ref.projection_head_momentum(ref._pool(ref.encoder_momentum(c))) for c in x.chunk(2)])
    torch.testing.assert_close(model.key(x), expected)
    whole = ref.projection_head_momentum(ref._pool(ref.encoder_momentum(x)))
    assert not torch.allclose(whole, expected, atol=1e-4)


def test_grouped_loss_matches_lightly_when_nothing_is_masked() -> None:
    a = MoCoV2(tiny_unet(), projection_dim=8, queue_size=16, split_bn=2)
    b = copy.deepcopy(a)
    lightly_loss = NTXentLoss(temperature=0.2, memory_bank_size=(16, 8))
    with torch.no_grad():
        lightly_loss.memory_bank.bank.copy_(a.queue.keys)
    x = torch.rand(4, 1, 16, 16)
    torch.manual_seed(1)
    la = a(x, x.flip(-1))
    torch.manual_seed(1)
    lb = b(x, x.flip(-1), groups=torch.arange(4))  # queue groups are all -1: nothing masked
    ref = copy.deepcopy(a)  # the same weights, to recompute q and k for lightly's loss
    torch.manual_seed(1)
    with torch.no_grad():
        q, k = ref.query(x), ref.key(x.flip(-1))
    ll = lightly_loss(q.requires_grad_(), k)
    torch.testing.assert_close(la, lb, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(la, ll, rtol=1e-6, atol=1e-6)
    assert torch.equal(a.queue.keys, b.queue.keys)
    torch.testing.assert_close(a.queue.keys, lightly_loss.memory_bank.bank)  # same keys enqueued
    assert b.queue.groups[:4].tolist() == [0, 1, 2, 3] and a.queue.groups[:4].tolist() == [-1] * 4


def test_same_group_negatives_are_masked_golden() -> None:
    model = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=6, split_bn=1, shuffle_bn=False)
    bank = F.normalize(torch.randn(6, 4), dim=1)
    with torch.no_grad():
        model.queue.keys.copy_(bank)
        model.queue.groups.copy_(torch.tensor([0, 0, 1, 1, 2, -1]))
    x, y = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    groups = torch.tensor([0, 1])
    q = F.normalize(model.query(x), dim=1).detach()
    k = F.normalize(model.key(y), dim=1)
    expected = []
    for i, g in enumerate(groups.tolist()):
        keep = model.queue.groups != g
        logits = torch.cat([(q[i] * k[i]).sum()[None], bank[keep] @ q[i]]) / 0.2
        expected.append(-torch.log_softmax(logits, 0)[0])
    loss = model(x, y, groups=groups)
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    # The keys went in at the pointer, with their groups.
    torch.testing.assert_close(model.queue.keys[:2], k)
    assert model.queue.groups.tolist() == [0, 1, 1, 1, 2, -1]


def test_queue_wraps_with_groups_and_eval_does_not_enqueue() -> None:
    model = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=6, split_bn=1)
    x = torch.rand(4, 1, 8, 8)
    model(x, x, groups=torch.tensor([1, 1, 1, 1]))
    model(x, x, groups=torch.tensor([2, 3, 4, 5]))  # 4 + 4 >= 6: 2 are written, then back to 0
    assert model.queue.groups.tolist() == [1, 1, 1, 1, 2, 3]
    assert model.queue.pointer == 0
    before = model.queue.keys.clone()
    with torch.no_grad():
        model(x, x, groups=torch.tensor([7, 7, 7, 7]))
        model(x, x)
    assert torch.equal(model.queue.keys, before)
    assert model.queue.groups.tolist() == [1, 1, 1, 1, 2, 3]


def test_export_encoder_loads_whole_into_heatmap_unet() -> None:
    models = pytest.importorskip("sslkeypoint.models")
    weights = pytest.importorskip("sslkeypoint.weights")
    moco = MoCoV2(tiny_unet(), projection_dim=8, queue_size=8)
    target = models.HeatmapUNet(tiny_unet(), num_keypoints=3)
    report = weights.load_partial_state_dict(target.encoder, moco.export_encoder())
    assert not report.missing and not report.unexpected and not report.mismatched
    for name, t in target.encoder.state_dict().items():
        assert torch.equal(t, moco.encoder.state_dict()[name])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="channels"):
        MoCoV2(nn.Conv2d(1, 2, 3))
    model = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=8)
    with pytest.raises(ValueError, match=r"\(4, 1, 8, 8\) and \(3, 1, 8, 8\)"):
        model(torch.rand(4, 1, 8, 8), torch.rand(3, 1, 8, 8))
    with pytest.raises(ValueError, match=r"groups must have shape \(4,\)"):
        model(torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8), groups=torch.zeros(3))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch_dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)  # same initial weights on both ranks
        model = MoCoV2(ConvEncoder(), projection_dim=4, queue_size=16)
        reference = copy.deepcopy(model)
        images = {r: torch.full((3, 1, 8, 8), 0.2 + 0.5 * r) for r in range(world)}
        loss = model(images[rank], images[rank], groups=torch.full((3,), 10 + rank))
        loss.backward()
        bank = model.queue.keys
        # Keys of both ranks are in the bank, in rank order, on every rank.
        for r in range(world):
            key = F.normalize(reference.projection_head_momentum(reference._pool(reference.encoder_momentum(images[r]))), dim=1)
            torch.testing.assert_close(bank[3 * r : 3 * r + 3], key)
        assert model.queue.groups[:6].tolist() == [10] * 3 + [11] * 3
        assert model.queue.pointer == 6
        gathered = [torch.empty_like(bank) for _ in range(world)]
        torch_dist.all_gather(gathered, bank)
        assert torch.equal(gathered[0], gathered[1])
    finally:
        torch_dist.destroy_process_group()


def test_two_process_ddp_gathers_keys_of_both_ranks() -> None:
    mp.spawn(_ddp_worker, args=(2, _free_port()), nprocs=2, join=True)


def test_auto_momentum_follows_the_run_length() -> None:
    # m = 1 - 20 / steps, within [0.99, 0.999]: a key-encoder time constant of at most 1/20 of the run.
    assert auto_momentum(100) == 0.99 and auto_momentum(2000) == 0.99
    assert auto_momentum(4000) == pytest.approx(0.995)
    assert auto_momentum(20_000) == pytest.approx(0.999) and auto_momentum(10**9) == 0.999
    values = [auto_momentum(n) for n in range(1, 50_000, 97)]
    assert values == sorted(values)
    with pytest.raises(ValueError, match="total_steps"):
        auto_momentum(0)

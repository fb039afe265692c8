"""Tests of DenseCL: keys from the momentum network, correspondence, the dense loss, pre-training runs
(both feature levels, resume, stage 2), plain MoCo v2 unchanged at dense_weight=0, and the pre-trained
decoder loaded into fine-tuning."""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightly.models.utils import select_most_similar
from PIL import Image
from torch.nn import functional as F

from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
from sslkeypoint.data import KeypointRecord
from sslkeypoint.encoders import UNetEncoder
from sslkeypoint.lightning import HeatmapFinetuneModule, PretrainModule
from sslkeypoint.losses import dense_info_nce_loss
from sslkeypoint.methods import DenseCLMethod, MoCoV2Method
from sslkeypoint.recipes import run_finetuning, run_pretraining
from sslkeypoint.ssl import DenseCL, MoCoV2
from sslkeypoint.weights import load_state_dict_file

TINY: dict[str, Any] = {"widths": [8, 16], "bottleneck_width": 32}
TRAINER = TrainerConfig(accelerator="cpu", devices=1, log_every_n_steps=1)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # Tiny models on a shared machine run much faster on one thread than on two contended ones.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def grating(i: int, n: int, phase: float = 0.0, size: int = 32) -> np.ndarray:
    """A sinusoidal grating whose orientation and frequency identify image ``i`` of ``n``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    ang = 2 * math.pi * i / n
    freq = 0.25 + 0.5 * (i % 4) / 3
    img = 0.5 + 0.5 * np.sin(freq * (xx * math.cos(ang) + yy * math.sin(ang)) + phase)
    return (img * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    for i in range(16):
        Image.fromarray(grating(i, 16)).save(root / f"im{i}.png")
    return root


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 files of one image: every batch holds the same pixels whatever the loader's order.

    ``PretrainDataModule`` shuffles with the global random state, which a resumed run does not get
    back; with identical images the batches do not depend on it, so a resumed run can be compared
    with an uninterrupted one exactly.
    """
    root = tmp_path_factory.mktemp("copies")
    for i in range(16):
        Image.fromarray(grating(5, 16)).save(root / f"im{i}.png")
    return root


def step_values(out_dir: Path, name: str = "train_loss_step") -> list[float]:
    values = []
    for f in sorted((out_dir / "logs").glob("*/metrics.csv")):
        values += [float(r[name]) for r in csv.DictReader(f.open()) if r.get(name)]
    return values


DENSE_FIELDS = {f.name for f in dataclasses.fields(DenseCLMethod)}


def dense_method(level: str, **kw: Any) -> DenseCLMethod:
    base: dict[str, Any] = {
        "split_bn": 2,
        "projection_dim": 16,
        "queue_size": 16,
        "cap_queue": False,
        "momentum": 0.99,
        "momentum_end": 0.99,  # constant: the schedule then does not depend on the run's length
        # Runs on `copies` (one image): image indices as groups would follow the loader's order.
        "mask_same_source": False,
        "weight": 0.5,
        "level": level,
        "samples": 20,  # fewer than the 64 (encoder) or 256 (decoder) locations: sampled
        "decoder_stride": 2,
        **kw,
    }
    return DenseCLMethod(**base)


def dense_config(level: str, **kw: Any) -> PretrainConfig:
    """A tiny DenseCL run; keyword arguments that are DenseCL fields go to the method."""
    method = dense_method(level, **{k: kw.pop(k) for k in list(kw) if k in DENSE_FIELDS})
    base: dict[str, Any] = {
        "image_size": (32, 32),
        "encoder_kwargs": TINY,
        "batch_size": 8,
        "method": method,
        "max_epochs": 10,
        "augment": {"scale": (0.6, 1.0), "blur_p": 0.0},
        "seed": 3,
        **kw,
    }
    return PretrainConfig(**base)


def tiny_densecl(level: str) -> DenseCL:
    torch.manual_seed(0)
    return DenseCL(UNetEncoder(1, **TINY), level=level, decoder_stride=2, dense_samples=10, projection_dim=8,
                   queue_size=32, split_bn=2)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["encoder", "decoder"])
def test_keys_come_from_the_momentum_network(level: str) -> None:
    a = tiny_densecl(level)
    b = copy.deepcopy(a)
    online = [b.encoder, b.projection_head, b.dense_head] + ([b.decoder] if b.decoder is not None else [])
    with torch.no_grad():
        for part in online:
            for p in part.parameters():
                p.add_(torch.randn_like(p))
    x = torch.rand(4, 1, 32, 32)
    y = x.flip(-1)

    def step(model: DenseCL) -> torch.Tensor:
        torch.manual_seed(1)  # same key shuffle and sampled locations for both models
        terms = model.loss_terms(x, y)
        terms.total.backward()
        return terms.total.detach()

    # A changed online network changes the loss (its queries) but not a single key.
    loss_a, loss_b = step(a), step(b)
    assert not torch.equal(loss_a, loss_b)
    assert torch.equal(a.queue.keys, b.queue.keys) and torch.equal(a.dense_queue.keys, b.dense_queue.keys)
    # No gradient reaches the key side; every online part gets one.
    key_side = [b.encoder_momentum, b.projection_head_momentum, b.dense_head_momentum]
    key_side += [b.decoder_momentum] if b.decoder_momentum is not None else []
    for part in key_side:
        assert all(not p.requires_grad and p.grad is None for p in part.parameters())
    for part in online:
        assert all(p.grad is not None for p in part.parameters())
    assert float(b.dense_head.layers[0].weight.grad.abs().sum()) > 0
    # Momentum 1 keeps the key network: keys still equal. Momentum 0 copies the online network
    # into it (every part, the decoder included): keys now differ.
    a.update_momentum(1.0)
    b.update_momentum(1.0)
    step(a)
    step(b)
    assert torch.equal(a.dense_queue.keys, b.dense_queue.keys)
    b.update_momentum(0.0)
    for part, momentum in zip(online, [b.encoder_momentum, b.projection_head_momentum, b.dense_head_momentum,
                                       b.decoder_momentum]):
        assert momentum is not None
        for p, q in zip(part.parameters(), momentum.parameters()):
            assert torch.equal(p, q)
    step(a)
    step(b)
    assert not torch.equal(a.dense_queue.keys[8:12], b.dense_queue.keys[8:12])


def test_select_most_similar_matches_a_shifted_map() -> None:
    torch.manual_seed(0)
    query = torch.randn(1, 6, 4, 4)  # (B, C, h, w): 16 distinct features
    key = query.roll(1, dims=3)  # the key view: everything one column to the right (cyclic)

    def points(m: torch.Tensor) -> torch.Tensor:
        return m.flatten(2).transpose(1, 2)

    where = torch.arange(16.0).reshape(1, 16, 1)  # each key location's flat index
    matched = select_most_similar(points(query), points(key), where)[0, :, 0].long()
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    expected = (rows * 4 + (cols + 1) % 4).flatten()  # (i, j) -> (i, j + 1)
    assert torch.equal(matched, expected)
    # The dense loss uses that correspondence: key projections that are the query's, moved with
    # the map, give the loss of a perfect match; the unmoved projections do not.
    q = F.one_hot(torch.arange(16), 17).float()[None]  # one-hot projection per query location
    k_moved = points(F.one_hot(torch.arange(16), 17).float().T.reshape(1, 17, 4, 4).roll(1, dims=3))
    negatives = F.one_hot(torch.tensor([16]), 17).float()  # orthogonal to every projection
    best = dense_info_nce_loss(q, k_moved, points(query), points(key), negatives, temperature=0.1)
    assert float(best) == pytest.approx(math.log(1 + math.exp(-10)), abs=1e-5)
    # Unmoved: each query meets the projection of its right neighbour, orthogonal to it, as
    # positive: logits (0, 0), log 2.
    wrong = dense_info_nce_loss(q, q, points(query), points(key), negatives, temperature=0.1)
    assert float(wrong) == pytest.approx(math.log(2), rel=1e-5)


def test_dense_loss_is_near_its_minimum_for_matching_one_hot_features() -> None:
    # Query and key agree, one-hot per location; 8 negatives orthogonal to all of them (the extra
    # dimension). Hand-derived: each location has positive logit 1/τ and 8 logits 0, so the loss is
    # log(1 + 8 e^(-1/τ)).
    batch, n, tau = 2, 9, 0.2
    feats = F.one_hot(torch.arange(n), n + 1).float().expand(batch, n, n + 1)
    negatives = F.one_hot(torch.full((8,), n), n + 1).float()
    loss = dense_info_nce_loss(feats, feats, feats, feats, negatives, tau)
    assert float(loss) == pytest.approx(math.log(1 + 8 * math.exp(-1 / tau)), rel=1e-4)
    assert float(loss) < 0.06
    torch.manual_seed(0)
    random = torch.randn(batch, n, n + 1)
    assert float(dense_info_nce_loss(random, feats, feats, feats, negatives, tau)) > 1.0
    # Negatives of the query's own group are left out: hard negatives (one equal to each query) of
    # group 7 cost nothing to images of group 7; to images of group 8 each location has logits
    # 1/τ (positive), 1/τ (its hard negative) and 8 × 0: log(2 + 8 e^(-1/τ)).
    hard = feats[0]
    masked = dense_info_nce_loss(feats, feats, feats, feats, hard, tau, torch.tensor([7, 7]), torch.full((n,), 7))
    assert float(masked) == pytest.approx(0.0, abs=1e-6)
    unmasked = dense_info_nce_loss(feats, feats, feats, feats, hard, tau, torch.tensor([8, 8]), torch.full((n,), 7))
    assert float(unmasked) == pytest.approx(math.log(2 + 8 * math.exp(-1 / tau)), rel=1e-4)


def test_bad_inputs_are_refused() -> None:
    x = torch.zeros(2, 5, 4)
    with pytest.raises(ValueError, match="query and key"):
        dense_info_nce_loss(x, torch.zeros(2, 5, 3), x, x, torch.zeros(0, 4), 0.2)
    with pytest.raises(ValueError, match="key_features"):
        dense_info_nce_loss(x, x, x, torch.zeros(2, 6, 4), torch.zeros(0, 4), 0.2)
    with pytest.raises(ValueError, match="query_groups"):
        dense_info_nce_loss(x, x, x, x, torch.zeros(1, 4), 0.2, torch.zeros(3), torch.zeros(1))
    with pytest.raises(ValueError, match="dense_weight"):
        DenseCL(UNetEncoder(1, **TINY), dense_weight=1.5)
    with pytest.raises(ValueError, match="level"):
        DenseCL(UNetEncoder(1, **TINY), level="head")
    model = DenseCL(UNetEncoder(1, **TINY), level="decoder", decoder_stride=2, queue_size=8, projection_dim=4)
    with pytest.raises(ValueError, match="multiple of 4"):
        model(torch.rand(2, 1, 30, 30), torch.rand(2, 1, 30, 30))
    with pytest.raises(ValueError, match="no decoder"):
        DenseCL(UNetEncoder(1, **TINY), queue_size=8).export_unet()
    for level, bad, match in (("encoder", {"weight": -0.1}, "weight"), ("head", {}, "level"),
                              ("encoder", {"samples": 0}, "samples")):
        with pytest.raises(ValueError, match=match):
            dense_method(level, **bad)
    with pytest.raises(ValueError, match="init_encoder"):
        FinetuneConfig(init_decoder=True)


# --------------------------------------------------------------------------------------------------
# Plain MoCo v2 unchanged
# --------------------------------------------------------------------------------------------------


def test_moco_method_is_the_plain_moco_run(tmp_path: Path, images: Path) -> None:
    cfg = PretrainConfig.stage1(
        image_size=(32, 32), encoder_kwargs={"widths": (8, 16), "bottleneck_width": 32}, batch_size=8,
        method=MoCoV2Method(split_bn=2, projection_dim=32, momentum=0.99, momentum_end=1.0, queue_size=16,
                            cap_queue=False),
        augment={"scale": (0.6, 1.0), "blur_p": 0.0}, seed=3,
    )
    result = run_pretraining(cfg, images=images, out_dir=tmp_path / "run", trainer=TRAINER, max_steps=3, progress=False)
    assert type(result.module.model) is MoCoV2 and result.unet_path is None
    assert not any(k.startswith("dense") for k in result.module.model.state_dict())
    # The step losses of this run before DenseCL existed, and before methods were objects (torch 2.14
    # CPU; equal up to the float rounding of another CPU): neither changed a plain MoCo v2 run.
    expected = [0.2527228593826294, 2.145390033721924, 2.7135441303253174]
    assert step_values(tmp_path / "run") == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------------------------------
# Pre-training runs
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def decoder_run(tmp_path_factory: pytest.TempPathFactory, copies: Path) -> Any:
    out = tmp_path_factory.mktemp("decoder") / "run"
    return run_pretraining(dense_config("decoder"), images=copies, out_dir=out, trainer=TRAINER, max_steps=4,
                           progress=False)


@pytest.mark.parametrize("level", ["encoder", "decoder"])
def test_dense_pretraining_resumes_exactly(tmp_path: Path, copies: Path, decoder_run: Any, level: str) -> None:
    cfg = dense_config(level)
    if level == "decoder":
        full = decoder_run
    else:
        full = run_pretraining(cfg, images=copies, out_dir=tmp_path / "full", trainer=TRAINER, max_steps=4,
                               progress=False)
    assert isinstance(full.module.model, DenseCL) and full.module.model.level == level
    assert (full.unet_path is not None) == (level == "decoder")  # unet.safetensors: decoder level only
    # Both loss terms are logged; the total is their mean (dense_weight 0.5).
    total, dense, glob = (step_values(full.out_dir, n) for n in ("train_loss_step", "train_loss_dense_step",
                                                                  "train_loss_global_step"))
    assert len(total) == 4 and total == pytest.approx([(d + g) / 2 for d, g in zip(dense, glob)], rel=1e-6)
    # The checkpoint holds the dense queue, heads and (decoder level) both decoders.
    assert full.last_checkpoint is not None
    sd = torch.load(full.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    queue = full.module.model.dense_queue
    assert torch.equal(sd["model.dense_queue._extra_state"]["keys"], queue.keys) and queue.pointer == 0
    assert any(k.startswith("model.dense_head_momentum.") for k in sd)
    assert any(k.startswith("model.decoder_momentum.") for k in sd) == (level == "decoder")
    # Stopped after step 3 (mid-epoch) and resumed: the same state as the uninterrupted run.
    out = tmp_path / "interrupted"
    run_pretraining(cfg, images=copies, out_dir=out, trainer=TRAINER, max_steps=3, progress=False)
    resumed = run_pretraining(cfg, images=copies, out_dir=out, trainer=TRAINER, max_steps=4, progress=False)
    assert resumed.global_step == 4 and len(step_values(out)) == 4
    a, b = full.module.model.state_dict(), resumed.module.model.state_dict()
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, dict):  # a queue's extra state
            for name in value:
                assert torch.equal(value[name], b[key][name]), (key, name)
        else:
            assert torch.equal(value, b[key]), key
    assert step_values(out) == step_values(full.out_dir)


def test_stage2_dense_pretraining(tmp_path: Path) -> None:
    root = tmp_path / "sequences"
    for s in range(4):
        (root / f"seq{s}").mkdir(parents=True)
        for t in range(4):
            Image.fromarray(grating(3 * s, 12, phase=0.3 * t)).save(root / f"seq{s}" / f"frame{t}.png")
    cfg = dense_config("encoder", stage=2, batch_size=4, delta=(1, 2), mask_same_source=True)
    result = run_pretraining(cfg, sequences=root, out_dir=tmp_path / "s2", trainer=TRAINER, max_steps=2, progress=False)
    model = result.module.model
    assert isinstance(model, DenseCL) and result.global_step == 2
    # Both queues store each key with its sequence: its own sequence's keys are no negatives.
    assert set(model.dense_queue.groups[:8].tolist()) <= {0, 1, 2, 3}
    assert torch.equal(model.dense_queue.groups, model.queue.groups)
    assert all(math.isfinite(v) for v in step_values(tmp_path / "s2", "train_loss_dense_step"))


def test_stage2_starts_from_either_kind_of_stage1_checkpoint(tmp_path: Path, decoder_run: Any) -> None:
    dense_ckpt = decoder_run.last_checkpoint
    plain = PretrainModule(PretrainConfig.stage2(image_size=32, encoder_kwargs=TINY,
                                                 method=MoCoV2Method(projection_dim=16, queue_size=16)))
    loaded = plain.load_initial_weights(dense_ckpt)
    assert not any(k.startswith(("dense", "decoder")) for k in loaded)
    for k, v in decoder_run.module.model.encoder.state_dict().items():
        assert torch.equal(plain.model.encoder.state_dict()[k], v)
    # A plain checkpoint into DenseCL: the dense parts keep their fresh initialisation.
    plain_ckpt = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in plain.model.state_dict().items()}}, plain_ckpt)
    dense = PretrainModule(dense_config("decoder", stage=2))
    fresh = copy.deepcopy(dense.model.dense_head.state_dict())
    loaded = dense.load_initial_weights(plain_ckpt)
    assert "encoder.blocks.0.conv1.weight" in loaded and not any(k.startswith("dense") for k in loaded)
    for k, v in fresh.items():
        assert torch.equal(dense.model.dense_head.state_dict()[k], v)
    # A dense checkpoint of the same level: everything but the queues.
    again = PretrainModule(dense_config("decoder", stage=2))
    loaded = again.load_initial_weights(dense_ckpt)
    assert {"decoder.0.up.weight", "dense_head_momentum.layers.0.weight"} <= set(loaded)
    assert not any("queue" in k or "memory_bank" in k for k in loaded)


# --------------------------------------------------------------------------------------------------
# The pre-trained decoder in fine-tuning
# --------------------------------------------------------------------------------------------------


def test_unet_weights_initialise_the_finetuning_decoder(tmp_path: Path, decoder_run: Any) -> None:
    unet_path = decoder_run.unet_path
    assert unet_path == decoder_run.out_dir / "unet.safetensors" and unet_path.is_file()
    saved = load_state_dict_file(unet_path)
    pretrained = decoder_run.module.model
    assert saved.keys() == set(pretrained.export_unet())
    # The heatmap stride of fine-tuning (32 / 16 = 2) is the pre-training decoder's.
    cfg = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=2, encoder_kwargs=TINY,
                         init_encoder=str(unet_path), init_decoder=True)
    module = HeatmapFinetuneModule(cfg)
    encoder_report = module.init_encoder_from(unet_path)
    decoder_report = module.init_decoder_from(unet_path)
    assert encoder_report.complete and decoder_report.complete and not decoder_report.unexpected
    for k, v in pretrained.decoder.state_dict().items():
        assert torch.equal(module.model.decoder.state_dict()[k], v), k
    for k, v in pretrained.encoder.state_dict().items():
        assert torch.equal(module.model.encoder.state_dict()[k], v), k
    # A file without decoder weights, or a decoder of another stride, is refused by name.
    with pytest.raises(ValueError, match="no decoder weights"):
        module.init_decoder_from(decoder_run.encoder_path)
    other = HeatmapFinetuneModule(FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=2,
                                                 encoder_kwargs={"widths": [8, 16], "bottleneck_width": 16}))
    with pytest.raises(ValueError, match="do not fit"):
        other.init_decoder_from(unet_path)

    # Through run_finetuning: the report names both, and the decoder starts from the file (the
    # learning rate is too small to move it measurably in one epoch).
    records = []
    for i in range(6):
        path = tmp_path / f"kp{i}.png"
        Image.fromarray(grating(i, 6)).save(path)
        records.append(KeypointRecord(path, np.array([[8.0 + i, 10.0], [20.0, 22.0 - i]])))
    cfg = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=2, encoder_kwargs=TINY,
                         init_encoder=str(unet_path), init_decoder=True, lr=1e-12, batch_size=2, max_epochs=1)
    result = run_finetuning(cfg, records, tmp_path / "finetune", progress=False,
                            trainer=TrainerConfig(accelerator="cpu", devices=1, num_sanity_val_steps=0))
    text = (tmp_path / "finetune" / "encoder_init.txt").read_text()
    assert "decoder initialised from" in text and result.encoder_init == text.strip()
    assert result.last_checkpoint is not None
    tuned = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for k, v in pretrained.decoder.named_parameters():  # (batch-norm statistics do move)
        torch.testing.assert_close(tuned[f"model.decoder.{k}"], v.detach(), atol=1e-8, rtol=0)

"""Tests of MoCo pre-training: the LightningModule and run_pretraining (checkpoints, resume, stage 2)."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightly.utils.scheduler import cosine_schedule
from PIL import Image

from sslkeypoint.configs import PretrainConfig, TrainerConfig
from sslkeypoint.data import data_fingerprint, list_sequences
from sslkeypoint.lightning import PretrainModule
from sslkeypoint.methods import MoCoV2Method
from sslkeypoint.recipes import run_pretraining
from sslkeypoint.runs import RunInterrupted
from sslkeypoint.ssl import auto_momentum
from sslkeypoint.weights import load_state_dict_file

TINY: dict[str, Any] = {"widths": (8, 16), "bottleneck_width": 32}
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
def sequences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sequences")
    for s in range(4):
        (root / f"seq{s}").mkdir()
        for t in range(6):
            Image.fromarray(grating(3 * s, 12, phase=0.3 * t)).save(root / f"seq{s}" / f"frame{t}.png")
    return root


MOCO_FIELDS = {f.name for f in dataclasses.fields(MoCoV2Method)}


def tiny_config(stage: int = 1, **kw: Any) -> PretrainConfig:
    """A tiny run; keyword arguments that are MoCo v2 fields go to the method."""
    moco = {"split_bn": 2, "projection_dim": 32, "momentum": 0.99,
            **({"queue_size": 16384} if stage == 2 else {}),
            **{k: kw.pop(k) for k in list(kw) if k in MOCO_FIELDS}}
    base = {
        "image_size": (32, 32),
        "encoder_kwargs": TINY,
        "batch_size": 8 if stage == 1 else 4,
        "method": MoCoV2Method(**moco),
        "augment": {"scale": (0.6, 1.0), "blur_p": 0.0},
        **kw,
    }
    return PretrainConfig.stage1(**base) if stage == 1 else PretrainConfig.stage2(**base)


def step_losses(out_dir: Path) -> list[float]:
    losses = []
    for f in sorted((out_dir / "logs").glob("*/metrics.csv")):
        losses += [float(r["train_loss_step"]) for r in csv.DictReader(f.open()) if r.get("train_loss_step")]
    return losses


def logged_momenta(out_dir: Path) -> dict[int, float]:
    values = {}
    for f in sorted((out_dir / "logs").glob("*/metrics.csv")):
        values.update({int(r["step"]): float(r["momentum"]) for r in csv.DictReader(f.open()) if r.get("momentum")})
    return values


def test_data_fingerprint_tracks_names_and_content_not_location(tmp_path: Path, images: Path) -> None:
    files = sorted(images.glob("*.png"))
    fp = data_fingerprint(files)
    moved = tmp_path / "moved"
    shutil.copytree(images, moved)
    assert data_fingerprint(sorted(moved.glob("*.png"))) == fp
    assert data_fingerprint(list(reversed(files))) == fp
    content = bytearray((moved / "im1.png").read_bytes())
    content[-30] ^= 0xFF  # same size, other content
    (moved / "im1.png").write_bytes(bytes(content))
    assert data_fingerprint(sorted(moved.glob("*.png"))) != fp
    (moved / "im0.png").write_bytes((moved / "im0.png").read_bytes() + b"\0")
    assert data_fingerprint(sorted(moved.glob("*.png"))) != fp
    assert data_fingerprint([files[:2], files[2:4]]) != data_fingerprint([files[:3], files[3:4]])


def test_stage1_loss_falls_and_checkpoint_holds_full_state(tmp_path: Path, images: Path) -> None:
    out = tmp_path / "run"
    result = run_pretraining(trainer=TRAINER, config=tiny_config(lr=3e-3, momentum=0.99, momentum_end=1.0),
                             images=images, out_dir=out, max_steps=150, progress=False)
    assert result.global_step == 150 and result.queue_size == 8
    losses = step_losses(out)
    assert len(losses) == 150
    # The key momentum follows lightly's cosine schedule over the Trainer's 150 steps.
    momenta = logged_momenta(out)
    assert momenta[0] == pytest.approx(0.99) and momenta[149] == pytest.approx(1.0)
    assert momenta[75] == pytest.approx(cosine_schedule(75, 150, 0.99, 1.0))
    assert momenta[75] == pytest.approx(result.module.momentum_at(75))
    # The first steps see the random initial queue; compare once it holds real keys.
    first, last = float(np.mean(losses[5:35])), float(np.mean(losses[-30:]))
    assert last < first - 0.1, (first, last)

    assert result.last_checkpoint is not None
    ckpt = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)
    sd = ckpt["state_dict"]
    module = result.module
    saved_queue = sd["model.criterion.memory_bank._extra_state"]
    queue = module.model.queue
    assert torch.equal(saved_queue["keys"], queue.keys)
    assert int(saved_queue["pointer"]) == queue.pointer
    assert torch.equal(saved_queue["groups"], queue.groups)
    assert set(saved_queue["groups"].tolist()) <= set(range(16))  # image indices, all filled
    assert any(k.startswith("model.encoder_momentum.") for k in sd)
    assert ckpt["optimizer_states"] and ckpt["sslkeypoint"]["stage"] == 1
    prov = ckpt["sslkeypoint"]
    assert prov["data_fingerprint"] == data_fingerprint(sorted(images.glob("*.png")))
    assert prov["config"]["encoder_kwargs"] == {"widths": [8, 16], "bottleneck_width": 32} and prov["queue_size"] == 8
    # The queue comes back exactly through the checkpoint.
    restored = PretrainModule.load_from_checkpoint(result.last_checkpoint, weights_only=True)
    assert torch.equal(restored.model.queue.keys, queue.keys)
    assert torch.equal(restored.model.queue.groups, queue.groups)
    assert restored.model.queue.pointer == queue.pointer
    # The exported encoder is the query encoder and loads whole into HeatmapUNet's encoder.
    models = pytest.importorskip("sslkeypoint.models")
    weights = pytest.importorskip("sslkeypoint.weights")
    exported = load_state_dict_file(result.encoder_path)
    from sslkeypoint.encoders import UNetEncoder

    target = models.HeatmapUNet(UNetEncoder(1, **TINY), num_keypoints=3)
    report = weights.load_partial_state_dict(target.encoder, exported)
    assert not report.missing and not report.unexpected and not report.mismatched
    for k, v in module.model.encoder.state_dict().items():
        assert torch.equal(exported[k], v)


def test_momentum_without_trainer_is_the_end_value() -> None:
    # Without an attached Trainer the run length is unknown: the schedule is taken as one step long.
    module = PretrainModule(tiny_config(momentum=0.99, momentum_end=0.995))
    assert module.momentum_at(0) == pytest.approx(0.995) and module.momentum_at(10) == pytest.approx(0.995)


def test_resume_continues_from_last_checkpoint(tmp_path: Path, images: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(queue_size=16, cap_queue=False, max_epochs=10)
    first = run_pretraining(trainer=TRAINER, config=cfg, images=images, out_dir=out, max_steps=4, progress=False)
    bank = first.module.model.queue.keys.clone()
    groups = first.module.model.queue.groups.clone()
    assert first.module.model.queue.pointer == 0  # 4 × 8 keys, wrapped twice
    second = run_pretraining(trainer=TRAINER, config=cfg, images=images, out_dir=out, max_steps=5, progress=False)
    assert second.global_step == 5
    assert len(step_losses(out)) == 5  # one more step, not five
    # The resumed queue is the saved one: one step of 8 keys replaced entries 0-7, 8-15 came back.
    resumed = second.module.model.queue
    assert resumed.pointer == 8
    assert torch.equal(resumed.keys[8:], bank[8:]) and not torch.equal(resumed.keys[:8], bank[:8])
    assert torch.equal(resumed.groups[8:], groups[8:])
    fresh = run_pretraining(trainer=TRAINER, config=cfg, images=images, out_dir=out, max_steps=2, resume=False, progress=False)
    assert fresh.global_step == 2
    with pytest.raises(ValueError, match="stage-1 run"):
        run_pretraining(trainer=TRAINER, config=tiny_config(2), sequences=[[images / "im0.png", images / "im1.png"]] * 6, out_dir=out)


def test_stage2_starts_from_stage1_weights(tmp_path: Path, images: Path, sequences: Path) -> None:
    s1 = run_pretraining(trainer=TRAINER, config=tiny_config(queue_size=8), images=images, out_dir=tmp_path / "s1", max_steps=3, progress=False)
    cfg2 = tiny_config(2, queue_size=8, max_epochs=2)
    s1_model = s1.module.model
    for source, key_side in ((s1.last_checkpoint, s1_model.encoder_momentum), (s1.encoder_path, s1_model.encoder)):
        assert source is not None
        module = PretrainModule(cfg2)
        own_queue = module.model.queue.get_extra_state()
        own_queue = {k: v.clone() for k, v in own_queue.items()}
        loaded = module.load_initial_weights(source)
        assert "encoder.blocks.0.conv1.weight" in loaded and not any("memory_bank" in k for k in loaded)
        for k, v in module.model.queue.get_extra_state().items():  # the stage-1 queue is not taken
            assert torch.equal(v, own_queue[k])
        for k, v in s1_model.encoder.state_dict().items():
            assert torch.equal(module.model.encoder.state_dict()[k], v)
        for k, v in key_side.state_dict().items():
            assert torch.equal(module.model.encoder_momentum.state_dict()[k], v)
    with pytest.raises(ValueError, match="does not fit"):
        PretrainModule(tiny_config(2, encoder_kwargs={"widths": (4, 8), "bottleneck_width": 16})).load_initial_weights(
            s1.encoder_path
        )
    s2 = run_pretraining(trainer=TRAINER, config=cfg2, sequences=sequences, out_dir=tmp_path / "s2", init_from=s1.last_checkpoint, progress=False)
    assert s2.global_step == 2 * (20 // 4)  # 4 sequences × 5 pairs, batch 4, 2 epochs
    groups = s2.module.model.queue.groups
    assert set(groups.tolist()) <= {0, 1, 2, 3}
    assert s2.last_checkpoint is not None
    ckpt = torch.load(s2.last_checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["sslkeypoint"]["stage"] == 2 and ckpt["lr_schedulers"]  # ReduceLROnPlateau state
    assert ckpt["lr_schedulers"][0]["patience"] == 10
    assert len(list_sequences(sequences)) == 4


def test_bad_data_arguments(tmp_path: Path, images: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        run_pretraining(trainer=TRAINER, config=tiny_config(), out_dir=tmp_path)
    with pytest.raises(ValueError, match="stage 2 trains on sequences"):
        run_pretraining(trainer=TRAINER, config=tiny_config(2), images=images, out_dir=tmp_path)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        run_pretraining(trainer=TRAINER, config=tiny_config(batch_size=32), images=images, out_dir=tmp_path, progress=False)


def test_unreadable_images_are_skipped_counted_and_batches_filled(tmp_path: Path, images: Path) -> None:
    folder = tmp_path / "images"
    shutil.copytree(images, folder)
    png = (folder / "im3.png").read_bytes()
    (folder / "im3.png").write_bytes(png[: len(png) // 2])  # truncated
    (folder / "im7.png").write_bytes(b"")  # zero bytes
    seen: list[int] = []

    class Recording(PretrainModule):
        def _views(self, batch: Any) -> Any:
            seen.append(int(batch["image"].shape[0]))
            return super()._views(batch)

    import sslkeypoint.recipes.pretrain as recipes

    original = recipes.PretrainModule
    recipes.PretrainModule = Recording  # type: ignore[misc]
    try:
        with pytest.warns(UserWarning, match="pre-training skips") as record:
            result = run_pretraining(trainer=TRAINER, config=tiny_config(queue_size=8, max_epochs=2), images=folder,
                                     out_dir=tmp_path / "run", progress=False)
    finally:
        recipes.PretrainModule = original  # type: ignore[misc]
    skips = sorted(str(w.message) for w in record if "pre-training skips" in str(w.message))
    assert len(skips) == 2  # one warning per file, not per epoch
    assert "im3.png: unreadable image (cannot decode image" in skips[0] and "im7.png: unreadable image" in skips[1]
    # 16 files, batch 8, 2 epochs: every step runs, on full batches (the two bad files filled back).
    assert result.global_step == 4 and seen == [8, 8, 8, 8]
    drops = result.module.drops
    assert drops.seen == 32 and drops.dropped == 4  # each bad file once per epoch
    assert drops.reasons == {"unreadable image": 4}
    assert sorted(Path(p).name for p in drops.examples) == ["im3.png", "im7.png"]
    assert all(np.isfinite(step_losses(tmp_path / "run")))


def test_batch_without_a_readable_file_is_skipped() -> None:
    module = PretrainModule(tiny_config())
    batch = {"dropped": [("a.png", "missing file", ""), ("b.png", "unreadable image", "truncated")], "num_samples": 2}
    with pytest.warns(UserWarning) as record:
        assert module.training_step(batch, 0) is None
    assert [str(w.message) for w in record] == ["pre-training skips a.png: missing file",
                                                 "pre-training skips b.png: unreadable image (truncated)"]
    assert module.drops.summary() == "dropped 2 of 2 samples (missing file: 1, unreadable image: 1)"
    # A batch that lost one of three items comes back with three: item i is readable item i mod 2.
    images = torch.rand(2, 1, 32, 32)
    filled = module._readable({"image": images, "index": torch.tensor([4, 9]), "num_samples": 3,
                               "dropped": [("a.png", "missing file", "")]})
    assert filled is not None and filled["index"].tolist() == [4, 9, 4]
    assert torch.equal(filled["image"][2], images[0]) and module.drops.dropped == 3


def test_default_momentum_is_constant_and_chosen_from_the_run_length(tmp_path: Path, images: Path) -> None:
    # MoCo v2's 0.999 would leave the key encoder near its random start in a short run; the
    # default momentum follows the run length (auto_momentum) and stays constant.
    out = tmp_path / "run"
    run_pretraining(trainer=TRAINER, config=tiny_config(), images=images, out_dir=out, max_steps=12,
                    progress=False)
    momenta = logged_momenta(out)
    assert len(momenta) == 12
    assert list(momenta.values()) == pytest.approx([auto_momentum(12)] * 12)
    assert auto_momentum(12) == pytest.approx(0.99)


def test_a_stopped_run_keeps_its_last_epoch_even_when_the_loss_rose(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loss rises after epoch 0 (lr 3e-2), so the best checkpoint stays at epoch 0. A SIGTERM
    # during epoch 4 must leave last.ckpt at the end of epoch 3, not at the best epoch.
    def stop_in_epoch_4(self: PretrainModule, batch: object, batch_idx: int) -> None:
        if self.current_epoch == 4 and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(PretrainModule, "on_train_batch_start", stop_in_epoch_4, raising=False)
    out = tmp_path / "run"
    with pytest.raises(RunInterrupted):
        run_pretraining(trainer=TRAINER, config=tiny_config(max_epochs=8, lr=3e-2), images=images, out_dir=out,
                        progress=False)
    assert sorted(p.name for p in (out / "checkpoints").glob("best-*.ckpt")) == ["best-epoch=000.ckpt"]
    saved = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["epoch"] == 3 and saved["global_step"] == 8  # 4 epochs of 2 steps (16 images, batch 8)

"""Tests of mean-teacher semi-supervised fine-tuning: the heatmap mapping of an augmented view, the
teacher's update, the confidence filter, the config, the data, and real runs (resume, checkpoints,
run identity)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from sslkeypoint.augment import (
    KeypointAugmentation,
    augment_with_heatmaps,
    flip_permutation,
    heatmap_transform,
    warp_heatmaps,
)
from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.data import KeypointRecord
from sslkeypoint.data.samplers import LABELLED, UNLABELLED, PairedBatchSampler
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.lightning import HeatmapFinetuneModule, KeypointDataModule
from sslkeypoint.lightning.teacher_weights import teacher_as_model, teacher_from_model
from sslkeypoint.losses import consistency_loss
from sslkeypoint.methods import MeanTeacherMethod, SupervisedMethod
from sslkeypoint.recipes import run_finetuning
from sslkeypoint.runs import RunFolderError
from sslkeypoint.ssl import EMATeacher, confidence_mask, mean_teacher_loss, sigmoid_rampup

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TRAINER = TrainerConfig(accelerator="cpu", devices=1, deterministic=True, num_sanity_val_steps=0)
SIZE = 48  # original image size


def blob_image(kp: np.ndarray, size: int = SIZE) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.zeros((size, size))
    for j, (x, y) in enumerate(kp):
        img += (0.5 + 0.5 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_images(root: Path, n: int, seed: int, prefix: str) -> list[tuple[Path, np.ndarray]]:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        kp = rng.uniform(6, SIZE - 7, size=(2, 2))
        path = root / f"{prefix}{i:02d}.png"
        Image.fromarray(blob_image(kp)).save(path)
        out.append((path, kp))
    return out


METHOD_FIELDS = {"weight", "rampup_steps", "ema_decay", "confidence", "unlabelled_batch_size", "eval_teacher"}


def semi_method(**kw) -> MeanTeacherMethod:
    return MeanTeacherMethod(**{"ema_decay": 0.9, "rampup_steps": 4, "unlabelled_batch_size": 3, **kw})


def semi_config(**kw) -> FinetuneConfig:
    """A tiny mean-teacher run; keyword arguments that are MeanTeacherMethod fields go to the method."""
    method = semi_method(**{k: kw.pop(k) for k in list(kw) if k in METHOD_FIELDS})
    base = dict(
        input_size=(32, 32),
        heatmap_size=(16, 16),
        sigma=1.0,
        num_keypoints=2,
        lr=3e-3,
        batch_size=4,
        encoder_kwargs={"widths": (8, 16), "bottleneck_width": 16},
        max_epochs=3,
        method=method,
        augment_kwargs={"rotation": 10.0, "translate": 0.05, "scale": (0.9, 1.1), "brightness": 0.1},
    )
    base.update(kw)
    return FinetuneConfig(**base)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[list[KeypointRecord], list[Path], list[Path]]:
    """12 labelled records, a pool of 7 unlabelled images plus one corrupt file, another pool."""
    root = tmp_path_factory.mktemp("semi_data")
    records = [KeypointRecord(p, kp) for p, kp in make_images(root / "labelled", 12, 0, "l")]
    pool = [p for p, _ in make_images(root / "pool", 7, 1, "u")]
    corrupt = root / "pool" / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    other = [p for p, _ in make_images(root / "other", 7, 2, "v")]
    return records, [*pool, corrupt], other


# ---------------------------------------------------------------------------------- heatmap mapping


def gaussians(points: torch.Tensor, size: int, sigma: float = 1.0) -> torch.Tensor:
    """(B, K, size, size) float64 Gaussians at heatmap-pixel points (B, K, 2)."""
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                            indexing="ij")
    d2 = (xx - points[..., 0, None, None]) ** 2 + (yy - points[..., 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2))


def centroid(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, K, 2) intensity centroid (x, y) of (B, K, h, w) heatmaps."""
    h, w = heatmaps.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=heatmaps.dtype), torch.arange(w, dtype=heatmaps.dtype),
                            indexing="ij")
    mass = heatmaps.sum((-2, -1))
    return torch.stack([(heatmaps * xx).sum((-2, -1)) / mass, (heatmaps * yy).sum((-2, -1)) / mass], -1)


def test_heatmap_transform_follows_the_stride_convention() -> None:
    """u = (x + 0.5) / s - 0.5: a point's heatmap coordinates move as its input coordinates do."""
    angle = math.radians(30.0)
    m = torch.tensor([[[1.2 * math.cos(angle), -1.2 * math.sin(angle), 3.0],
                       [1.2 * math.sin(angle), 1.2 * math.cos(angle), -5.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    x = torch.tensor([10.0, 21.0, 1.0], dtype=torch.float64)
    for s in (1, 2, 4):
        u = torch.cat([(x[:2] + 0.5) / s - 0.5, torch.ones(1, dtype=torch.float64)])
        moved_x = m[0] @ x
        expected_u = (moved_x[:2] + 0.5) / s - 0.5
        torch.testing.assert_close((heatmap_transform(m, s)[0] @ u)[:2], expected_u)
    with pytest.raises(ValueError, match="stride"):
        heatmap_transform(m, 0)
    with pytest.raises(ValueError, match=r"\(B, 3, 3\)"):
        heatmap_transform(torch.eye(3), 2)


def test_known_rotation_and_translation_move_the_peak_where_expected() -> None:
    """A 90° rotation about the input centre plus a shift, by hand: the peak lands on the mapped point."""
    stride, h = 2, 16  # input 32 px, heatmaps 16 px
    c = 15.5  # input centre (pixel-centre convention)
    # x' = c - (y - c) + 4, y' = c + (x - c) - 2 (rotation by +90° in image axes, then (4, -2))
    m = torch.tensor([[[0.0, -1.0, 2 * c + 4.0], [1.0, 0.0, -2.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    point_in = torch.tensor([12.0, 18.0], dtype=torch.float64)
    u = (point_in + 0.5) / stride - 0.5
    hm = gaussians(u[None, None], h)
    warped, valid = warp_heatmaps(hm, m, stride=stride)
    expected_in = torch.tensor([c - (18.0 - c) + 4.0, c + (12.0 - c) - 2.0], dtype=torch.float64)
    expected_u = (expected_in + 0.5) / stride - 0.5
    torch.testing.assert_close(centroid(warped)[0, 0], expected_u, atol=0.05, rtol=0)
    peak = int(warped[0, 0].argmax())
    assert (peak % h - expected_u[0]).abs() <= 0.5 and (peak // h - expected_u[1]).abs() <= 0.5
    # A pure shift of 4 input px = 2 heatmap px to the right: the first two columns are unknown.
    shift = torch.tensor([[[1.0, 0.0, 4.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    _, valid = warp_heatmaps(hm, shift, stride=stride)
    assert not valid[0, 0, :, :2].any() and valid[0, 0, :, 2:].all()


@pytest.mark.parametrize("stride", [2, 4])
def test_view_heatmaps_peak_where_the_augmentation_moves_the_keypoints(stride: int) -> None:
    """Random rotations, shifts and scales: teacher Gaussians mapped with the view peak at the
    augmented keypoints (within 0.5 heatmap px), the channels in keypoint order."""
    codec = HeatmapCodec((32, 32), (32 // stride, 32 // stride), sigma=1.0, refine="dark")
    aug = KeypointAugmentation(rotation=25.0, translate=0.08, scale=(0.85, 1.15), brightness=0.3, contrast=0.3)
    torch.manual_seed(3)
    b = 16
    keypoints = 9.0 + 14.0 * torch.rand(b, 3, 2)  # inside the central part: they stay in frame
    images = torch.rand(b, 1, 32, 32)
    teacher = codec.encode(keypoints, torch.ones(b, 3, dtype=torch.bool))
    view = augment_with_heatmaps(aug, images, teacher, stride)
    _, moved, visible = aug(images, keypoints, None, params=aug.last_params)
    assert visible.all()
    decoded, _ = codec.decode(view.heatmaps)
    error_hm_px = (decoded - moved).norm(dim=-1) / stride
    assert error_hm_px.max() < 0.5, error_hm_px.max()
    # The images are the augmentation's output for the same draw (intensity jitter included).
    again, _, _ = aug(images, keypoints, None, params=aug.last_params)
    torch.testing.assert_close(view.images, again)
    assert view.valid.shape == (b, 1, 32 // stride, 32 // stride) and view.valid.any()


def test_hflip_swaps_heatmap_channels_as_the_augmentation_swaps_keypoints() -> None:
    stride = 2
    codec = HeatmapCodec((32, 32), (16, 16), sigma=1.0, refine="dark")
    aug = KeypointAugmentation(rotation=5.0, translate=0.0, scale=None, brightness=0.0, contrast=0.0,
                               hflip=True, flip_pairs=[(0, 1)])
    torch.manual_seed(5)
    b = 12
    keypoints = 9.0 + 14.0 * torch.rand(b, 3, 2)
    teacher = codec.encode(keypoints, torch.ones(b, 3, dtype=torch.bool))
    view = augment_with_heatmaps(aug, torch.rand(b, 1, 32, 32), teacher, stride)
    flipped = aug._flipped(aug.last_params, b, torch.device("cpu"))
    assert 0 < int(flipped.sum()) < b  # both kinds present
    assert view.permutation.tolist() == [[1, 0, 2] if f else [0, 1, 2] for f in flipped.tolist()]
    _, moved, _ = aug(torch.rand(b, 1, 32, 32), keypoints, None, params=aug.last_params)
    decoded, _ = codec.decode(view.heatmaps)
    assert ((decoded - moved).norm(dim=-1) / stride).max() < 0.5
    # Without flip pairs, a mirror keeps identities.
    assert flip_permutation(view.matrix, 3).tolist() == [[0, 1, 2]] * b


# ---------------------------------------------------------------------------------- teacher and losses


def test_ema_update_golden_values_for_parameters_and_batchnorm() -> None:
    student = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    teacher = EMATeacher(student)
    with torch.no_grad():
        for p in teacher.network.parameters():
            p.fill_(1.0)
        for p in student.parameters():
            p.fill_(5.0)
        student[1].running_mean.fill_(2.0)
        student[1].num_batches_tracked.fill_(7)
    teacher.update(student, decay=0.75)
    for p in teacher.network.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.75 * 1.0 + 0.25 * 5.0))
    # BatchNorm statistics are the network's, not averaged (they must match the weights they scale).
    torch.testing.assert_close(teacher.network[1].running_mean, torch.full((2,), 2.0))
    torch.testing.assert_close(teacher.network[1].running_var, torch.ones(2))
    assert int(teacher.network[1].num_batches_tracked) == 7
    assert not any(p.requires_grad for p in teacher.parameters())
    # The teacher predicts in eval mode without touching its statistics, in any module mode.
    teacher.train()
    before = teacher.network[1].running_mean.clone()
    out = teacher(torch.rand(2, 1, 3, 3))
    assert not out.requires_grad and torch.equal(teacher.network[1].running_mean, before)
    assert teacher.network.training
    with pytest.raises(ValueError, match="decay"):
        teacher.update(student, decay=1.5)
    with pytest.raises(ValueError, match="does not match"):
        teacher.update(torch.nn.Conv2d(1, 2, 1), decay=0.5)


def test_sigmoid_rampup() -> None:
    assert sigmoid_rampup(0, 10) == pytest.approx(math.exp(-5.0))
    assert sigmoid_rampup(5, 10) == pytest.approx(math.exp(-5.0 * 0.25))
    assert sigmoid_rampup(10, 10) == sigmoid_rampup(99, 10) == 1.0
    assert sigmoid_rampup(0, 0) == 1.0


def test_confidence_filter_leaves_low_peaks_out_of_the_loss() -> None:
    """Hand-made teacher heatmaps: channel 0 peaks at 0.9, channel 1 at 0.3; with threshold 0.5 only
    channel 0 counts, and the loss is the hand-computed mean over its pixels."""
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, 1, 2] = 0.9
    target[0, 1, 3, 3] = 0.3
    assert confidence_mask(target, 0.5).tolist() == [[True, False]]
    assert confidence_mask(target, 0.0).tolist() == [[True, True]]

    class Fixed(torch.nn.Module):
        def __init__(self, out: torch.Tensor) -> None:
            super().__init__()
            self.out = out
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out.expand(x.shape[0], -1, -1, -1) * self.scale

    identity = KeypointAugmentation(rotation=0.0, translate=0.0, scale=None, brightness=0.0, contrast=0.0)
    student = Fixed(torch.full((1, 2, 4, 4), 0.1))
    images = torch.rand(1, 1, 8, 8)
    loss, kept = mean_teacher_loss(student, Fixed(target), images, identity, stride=2, confidence=0.5)
    # Channel 0: 15 pixels with (0.1 - 0)^2 and one with (0.1 - 0.9)^2, over 16 pixels.
    assert loss.item() == pytest.approx((15 * 0.01 + 0.64) / 16)
    assert kept.item() == 0.5
    loss.backward()
    assert student.scale.grad is not None
    loss_all, kept_all = mean_teacher_loss(student, Fixed(target), images, identity, stride=2, confidence=0.0)
    assert loss_all.item() == pytest.approx((15 * 0.01 + 0.64 + 15 * 0.01 + 0.04) / 32) and kept_all.item() == 1.0
    # Nothing confident: zero, still on the graph.
    none, kept_none = mean_teacher_loss(student, Fixed(target), images, identity, stride=2, confidence=0.95)
    assert none.item() == 0.0 and none.requires_grad and kept_none.item() == 0.0


def test_consistency_loss_counts_only_valid_pixels() -> None:
    pred = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    valid = torch.tensor([[[[True, False], [False, True]]]])
    assert consistency_loss(pred, target, valid, torch.tensor([[True]])).item() == pytest.approx((1 + 16) / 2)
    with pytest.raises(ValueError, match="keep"):
        consistency_loss(pred, target, valid, torch.ones(1, 2, dtype=torch.bool))


def test_checkpoint_renaming_round_trips() -> None:
    sd = {"model.a": 1, "objective.teacher.network.a": 2, "val_loss.x": 3}
    saved = teacher_as_model(sd)
    assert saved == {"student.a": 1, "model.a": 2, "val_loss.x": 3}
    assert teacher_from_model(saved) == sd


# ---------------------------------------------------------------------------------- config and data


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("weight", -1.0, "weight"),
        ("weight", float("nan"), "weight"),
        ("rampup_steps", -1, "rampup_steps"),
        ("ema_decay", 1.5, "ema_decay"),
        ("confidence", 2.0, "confidence"),
        ("unlabelled_batch_size", 0, "unlabelled_batch_size"),
    ],
)
def test_method_rejects_bad_fields(field: str, value, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        semi_config(**{field: value})


def test_config_round_trip_and_defaults() -> None:
    cfg = semi_config()
    assert FinetuneConfig.from_dict(cfg.to_dict()) == cfg
    plain = FinetuneConfig()
    assert plain.method == SupervisedMethod() and not plain.method.uses_unlabelled
    defaults = MeanTeacherMethod()
    assert defaults.eval_teacher and defaults.unlabelled_batch_size is None and defaults.ema_decay is None
    assert HeatmapFinetuneModule(semi_config(method=SupervisedMethod())).teacher is None


def test_configs_of_0_6_read_as_methods() -> None:
    """The flat ``semi`` fields of a stored 0.6 config become the method they describe."""
    stored = {**{k: v for k, v in semi_config().to_dict().items() if k != "method"}, "semi": "mean_teacher",
              "semi_weight": 1.0, "semi_rampup_steps": 4, "ema_decay": 0.9, "semi_confidence": 0.0,
              "unlabelled_batch_size": 3, "semi_eval_teacher": True}
    assert FinetuneConfig.from_dict(stored) == semi_config()
    supervised = {**stored, "semi": None}
    assert FinetuneConfig.from_dict(supervised).method == SupervisedMethod()
    with pytest.raises(ValueError, match="semi must be None or 'mean_teacher'"):
        FinetuneConfig.from_dict({**stored, "semi": "fixmatch"})
    with pytest.raises(ValueError, match="both 'method' and the former method fields"):
        FinetuneConfig.from_dict({**semi_config().to_dict(), "semi_weight": 2.0})


def test_paired_sampler_is_seeded_sharded_and_fills_every_batch() -> None:
    shards = [PairedBatchSampler(10, 4, num_unlabelled=6, unlabelled_batch_size=2, seed=1, rank=r, world_size=2)
              for r in (0, 1)]
    for s in shards:
        s.set_epoch(2)
    batches = [list(s) for s in shards]
    assert [len(b) for b in batches] == [2, 2]  # 5 labelled per process, batches of 4
    unl = [[i for batch in b for src, i in batch if src == UNLABELLED] for b in batches]
    assert [len(u) for u in unl] == [4, 4]
    # The first 3 of each process come from one permutation's disjoint shards.
    assert not set(unl[0][:3]) & set(unl[1][:3])
    lab = sorted(i for b in batches for batch in b for src, i in batch if src == LABELLED)
    assert lab == list(range(10))
    again = PairedBatchSampler(10, 4, num_unlabelled=6, unlabelled_batch_size=2, seed=1, rank=0, world_size=2)
    again.set_epoch(2)
    assert list(again) == batches[0]
    again.set_epoch(3)
    assert list(again) != batches[0]
    # A small pool is cycled through fresh permutations.
    assert len(PairedBatchSampler(9, 3, 2, 5).unlabelled_indices(0, 15)) == 15


def test_datamodule_batches_carry_unlabelled_images_and_count_drops(data) -> None:
    records, pool, _ = data
    dm = KeypointDataModule(records[:6], records[6:8], input_size=(32, 32), num_keypoints=2, batch_size=3,
                            unlabelled=pool, unlabelled_batch_size=8)
    loader = dm.train_dataloader()
    loader.batch_sampler.set_epoch(0)
    batches = list(loader)
    assert len(batches) == 2
    for batch in batches:
        assert batch["image"].shape == (3, 1, 32, 32)
        n_u = batch["unlabelled"].shape[0]
        assert batch["unlabelled"].shape[1:] == (1, 32, 32) and batch["unlabelled"].dtype == torch.float32
        assert batch["num_samples"] == 3 + 8 and len(batch["dropped"]) == 8 - n_u
    # The pool of 8 (one corrupt) is drawn whole in each batch: the corrupt one is dropped, named.
    assert all(Path(path).name == "corrupt.png" and why == "unreadable image"
               for batch in batches for path, why, _ in batch["dropped"])
    with pytest.raises(ValueError, match="non-empty list"):
        KeypointDataModule(records[:6], records[6:8], input_size=(32, 32), num_keypoints=2, unlabelled=[])


# ---------------------------------------------------------------------------------- training runs


class _StopAfterOneStep(pl.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        trainer.should_stop = True


@pytest.mark.parametrize(
    ("ema_decay", "max_steps", "expected"),
    [(0.8, 1, 0.8), (None, 800, 1 - 20 / 800), (None, 50, 0.9)],
    ids=["given", "auto-800-steps", "auto-short-run"],
)
def test_one_step_updates_the_teacher_by_the_ema_rule(data, ema_decay, max_steps, expected) -> None:
    """A real Lightning step: teacher = d * initial + (1 - d) * network after the step.

    ``ema_decay=None`` chooses ``d`` from the run's planned length (``max_steps``; the run is
    stopped after its first step): 0.975 for 800 steps, the 0.9 floor for 50.
    """
    records, pool, _ = data
    cfg = semi_config(ema_decay=ema_decay)
    pl.seed_everything(0, verbose=False)
    module = HeatmapFinetuneModule(cfg)
    initial = {k: v.clone() for k, v in module.model.state_dict().items()}
    dm = KeypointDataModule(records[:8], records[8:], input_size=(32, 32), num_keypoints=2, batch_size=4,
                            unlabelled=pool, unlabelled_batch_size=3)
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, max_epochs=-1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, use_distributed_sampler=False,
                         callbacks=[_StopAfterOneStep()])
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 1
    assert module.teacher_decay == pytest.approx(expected)
    d = expected
    student = module.model.state_dict()
    teacher = module.teacher.network.state_dict()
    changed = 0
    params = {name for name, _ in module.model.named_parameters()}
    for key, value in teacher.items():
        if key in params:
            torch.testing.assert_close(value, d * initial[key] + (1 - d) * student[key], atol=1e-6, rtol=0)
            changed += int(not torch.equal(student[key], initial[key]))
        else:
            assert torch.equal(value, student[key])
    assert changed > 0  # the step moved the network (and with it the teacher)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data):
    records, pool, _ = data
    out = tmp_path_factory.mktemp("semi_full")
    return run_finetuning(semi_config(), records, out, unlabelled=pool, progress=False, trainer=TRAINER)


def test_semi_run_counts_drops_and_logs_the_unlabelled_loss(full_run) -> None:
    result = full_run
    assert result.epochs == 3 and result.global_step == 9  # 10 training records, batches of 4
    last = result.drop_summary["last_epoch"]["train"]
    assert last["seen"] == 10 + 3 * 3 and last["dropped"] <= 3
    assert all(Path(p).name == "corrupt.png" for p in result.drop_summary["dropped"])
    metrics = next((result.out_dir / "logs").rglob("metrics.csv")).read_text().splitlines()[0]
    assert "train/semi_loss_epoch" in metrics and "train/semi_kept" in metrics


def test_resume_matches_uninterrupted_semi_run(tmp_path, data, full_run) -> None:
    records, pool, _ = data
    out = tmp_path / "interrupted"
    first = run_finetuning(semi_config(), records, out, unlabelled=pool, progress=False, trainer=TRAINER,
                           max_epochs=1)
    assert first.epochs == 1
    resumed = run_finetuning(semi_config(), records, out, unlabelled=pool, progress=False, trainer=TRAINER)
    assert resumed.epochs == 3 and resumed.global_step == full_run.global_step
    a = torch.load(resumed.last_checkpoint, weights_only=True)["state_dict"]
    b = torch.load(full_run.last_checkpoint, weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and any(k.startswith("student.") for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)
    hist_a = [h["val/mre_px"] for h in resumed.val_history]
    hist_b = [h["val/mre_px"] for h in full_run.val_history]
    assert hist_a == pytest.approx(hist_b, abs=1e-6)


def test_checkpoint_predicts_with_the_validated_teacher(full_run) -> None:
    path = full_run.last_checkpoint
    predictor = KeypointPredictor.from_checkpoint(path, device="cpu")
    module = HeatmapFinetuneModule.load_from_checkpoint(path, weights_only=True, map_location="cpu").eval()
    images = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        teacher = module.teacher.network(images)
        student = module.model(images)
        torch.testing.assert_close(predictor.model(images), teacher, atol=1e-6, rtol=0)
        torch.testing.assert_close(module(images), teacher)
    assert not torch.allclose(teacher, student, atol=1e-4)  # the two networks differ: the test tells them apart
    # Loading put each network back: saving again gives the same checkpoint weights.
    saved = torch.load(path, weights_only=True)["state_dict"]
    again = teacher_as_model(module.state_dict())
    assert saved.keys() == again.keys()
    for key in saved:
        torch.testing.assert_close(again[key], saved[key])


def test_student_is_the_model_without_teacher_evaluation(tmp_path, data) -> None:
    records, pool, _ = data
    cfg = semi_config(eval_teacher=False, max_epochs=1)
    result = run_finetuning(cfg, records, tmp_path / "student", unlabelled=pool, progress=False, trainer=TRAINER)
    saved = torch.load(result.last_checkpoint, weights_only=True)["state_dict"]
    assert not any(k.startswith("student.") for k in saved) and any(k.startswith("objective.teacher.network.") for k in saved)
    module = HeatmapFinetuneModule.load_from_checkpoint(result.last_checkpoint, weights_only=True).eval()
    predictor = KeypointPredictor.from_checkpoint(result.last_checkpoint, device="cpu")
    images = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(predictor.model(images), module.model(images), atol=1e-6, rtol=0)


def test_the_unlabelled_pool_is_part_of_the_run_identity(tmp_path, data, full_run) -> None:
    records, pool, other = data
    # Resuming the finished run with another pool is refused before anything is written.
    before = (full_run.out_dir / "run.json").read_text()
    with pytest.raises(RunFolderError, match="other data"):
        run_finetuning(semi_config(), records, full_run.out_dir, unlabelled=other, progress=False, trainer=TRAINER)
    assert (full_run.out_dir / "run.json").read_text() == before
    with pytest.raises(ValueError, match="none were given"):
        run_finetuning(semi_config(), records, tmp_path / "a", progress=False, trainer=TRAINER)
    with pytest.raises(ValueError, match="supervised does not use them"):
        run_finetuning(semi_config(method=SupervisedMethod()), records, tmp_path / "b", unlabelled=pool,
                       progress=False, trainer=TRAINER)
    with pytest.raises(ValueError, match="no unlabelled image files"):
        empty = tmp_path / "empty"
        empty.mkdir()
        run_finetuning(semi_config(), records, tmp_path / "c", unlabelled=empty, progress=False, trainer=TRAINER)


def test_validation_images_are_left_out_of_the_unlabelled_pool(tmp_path, data) -> None:
    records, pool, _ = data
    train, val = records[:8], records[8:]
    seen: list[set[str]] = []

    class PoolSpy(pl.Callback):
        def on_fit_start(self, trainer, pl_module) -> None:
            seen.append({str(p) for p in trainer.datamodule.unlabelled_dataset.paths})

    # The validation images given a second time, as unlabelled images (one through another spelling).
    doubled = [*[r.path for r in val[:3]], Path(val[3].path).parent / ".." / "labelled" / Path(val[3].path).name,
               *pool]
    result = run_finetuning(semi_config(max_epochs=1), (train, val), tmp_path / "run", unlabelled=doubled,
                            progress=False, trainer=TRAINER, callbacks=[PoolSpy()])
    assert result.unlabelled_left_out == 4
    assert seen == [{str(p) for p in pool}]
    with pytest.raises(ValueError, match="all 4 unlabelled images are validation images"):
        run_finetuning(semi_config(), (train, val), tmp_path / "only_val", unlabelled=[r.path for r in val],
                       progress=False, trainer=TRAINER)

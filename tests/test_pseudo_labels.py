"""Tests of pseudo-label self-training: the shape model, the views, the filters, the counts, the
student's records, partial labels in fine-tuning, and whole runs (rounds, reuse, resume)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sslkeypoint.augment import KeypointAugmentation
from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.data import PARTIAL_LABELS, KeypointDataset, KeypointRecord, filtering_collate
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.lightning import HeatmapFinetuneModule
from sslkeypoint.measures import AngleMeasure, DistanceMeasure
from sslkeypoint.methods import MeanTeacherMethod, PseudoLabelMethod
from sslkeypoint.recipes import run_finetuning
from sslkeypoint.recipes.self_training import ROUND_FILE, student_records
from sslkeypoint.ssl import (
    PseudoLabelStats,
    ShapeModel,
    chi2_quantile,
    filter_pseudo_labels,
    measure_ranges,
    predict_pseudo_labels,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TRAINER = TrainerConfig(accelerator="cpu", devices=1, deterministic=True, num_sanity_val_steps=0)


# ---------------------------------------------------------------------------------- shape model


def test_chi2_quantiles() -> None:
    assert chi2_quantile(0.95, 2) == pytest.approx(5.991465, rel=1e-6)  # -2 ln 0.05
    # Wilson–Hilferty against tabulated values (6 and 10 degrees of freedom).
    assert chi2_quantile(0.99, 6) == pytest.approx(16.812, rel=0.01)
    assert chi2_quantile(0.95, 10) == pytest.approx(18.307, rel=0.01)
    with pytest.raises(ValueError):
        chi2_quantile(1.0, 2)


def test_conditional_distance_is_the_gaussian_conditional() -> None:
    """Two landmarks that move together: the second given the first, by hand."""
    g = torch.Generator().manual_seed(0)
    first = torch.randn(400, 2, generator=g, dtype=torch.float64)
    second = first + 0.1 * torch.randn(400, 2, generator=g, dtype=torch.float64)
    model = ShapeModel.fit(torch.stack([first, second], dim=1), shrinkage=0.0)
    probe = torch.tensor([[[1.0, -1.0], [1.5, -1.0]]], dtype=torch.float64)
    cov, mean = model.covariance, model.mean
    s_oo, s_ko = cov[:2, :2], cov[2:, :2]
    gain = s_ko @ torch.linalg.inv(s_oo)
    cond_mean = mean[2:] + gain @ (probe[0, 0] - mean[:2])
    cond_cov = cov[2:, 2:] - gain @ s_ko.T
    d = probe[0, 1] - cond_mean
    expected = float(d @ torch.linalg.inv(cond_cov) @ d)
    assert model.conditional_distance(probe)[0, 1].item() == pytest.approx(expected, rel=1e-9)
    # 0.5 off where the noise is 0.1: far out, although both points are typical on their own.
    assert expected > chi2_quantile(0.999, 2)


def test_one_misplaced_landmark_is_dropped_and_the_others_kept() -> None:
    g = torch.Generator().manual_seed(1)
    base = torch.tensor([[300.0, 80.0], [200.0, 90.0], [320.0, 220.0]])
    labelled = base + 4.0 * torch.randn(60, 3, 2, generator=g)
    sizes = torch.full((60, 2), 512)
    model = ShapeModel.fit(labelled, sizes)
    probes = torch.stack([base, base + torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 60.0]]),
                          base + torch.tensor([[-70.0, 0.0], [0.0, 0.0], [0.0, 0.0]])])
    bad = model.implausible(probes, torch.full((3, 2), 512), quantile=0.99)
    assert bad.tolist() == [[False, False, False], [False, False, True], [True, False, False]]
    # A landmark not among the candidates is neither judged nor given.
    only = model.implausible(probes[1:2], torch.full((1, 2), 512), candidates=torch.tensor([[True, True, False]]))
    assert only.tolist() == [[False, False, False]]
    with pytest.raises(ValueError, match="at least 3"):
        ShapeModel.fit(labelled[:2])


@settings(max_examples=25)
@given(st.floats(-math.pi, math.pi), st.floats(0.5, 2.0), st.floats(-50, 50), st.floats(-50, 50))
def test_similarity_alignment_ignores_pose(angle: float, scale: float, dx: float, dy: float) -> None:
    g = torch.Generator().manual_seed(2)
    base = torch.tensor([[0.0, 0.0], [10.0, 0.0], [4.0, 8.0], [7.0, 12.0]], dtype=torch.float64)
    labelled = base + 0.3 * torch.randn(50, 4, 2, generator=g, dtype=torch.float64)
    model = ShapeModel.fit(labelled, alignment="similarity")
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64)
    probe = labelled[:1]
    moved = scale * probe @ rot.T + torch.tensor([dx, dy], dtype=torch.float64)
    assert model.distance(moved).item() == pytest.approx(model.distance(probe).item(), rel=1e-6, abs=1e-6)


# ---------------------------------------------------------------------------------- views and filters


class Oracle(torch.nn.Module):
    """Heatmaps of fixed landmarks moved with every view: a perfect, pose-following teacher."""

    def __init__(self, codec: HeatmapCodec, truth: torch.Tensor, aug: KeypointAugmentation) -> None:
        super().__init__()
        self.codec, self.truth, self.aug = codec, truth, aug
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        points = self.truth.expand(x.shape[0], -1, -1)
        if self.calls > 1:  # a view: the landmarks where the view's transform moved them
            matrix = self.aug.pipeline.get_transformation_matrix(x, self.aug.last_params, recompute=True)
            ones = torch.ones_like(points[..., :1])
            points = (torch.cat([points, ones], -1) @ matrix.transpose(1, 2))[..., :2]
        return self.codec.encode(points)


def test_views_are_mapped_back_onto_the_image() -> None:
    codec = HeatmapCodec((32, 32), (32, 32), sigma=1.5)
    truth = torch.tensor([[[10.0, 12.0], [20.0, 18.0]]])
    aug = KeypointAugmentation(rotation=15.0, translate=0.05, scale=(0.9, 1.1), brightness=0.0, contrast=0.0)
    torch.manual_seed(0)
    labels = predict_pseudo_labels(Oracle(codec, truth, aug), codec, torch.rand(3, 1, 32, 32), aug, views=5)
    torch.testing.assert_close(labels.keypoints, truth.expand(3, -1, -1), atol=0.15, rtol=0)
    assert labels.spread.max().item() < 0.15 and labels.confidence.min().item() > 0.8
    with pytest.raises(ValueError, match="must not mirror"):
        predict_pseudo_labels(Oracle(codec, truth, aug), codec, torch.rand(1, 1, 32, 32),
                              KeypointAugmentation(hflip=True), views=2)


def test_filters_give_the_first_failed_test_per_landmark() -> None:
    kp = torch.tensor([[[10.0, 10.0], [20.0, 20.0], [30.0, 40.0]],
                       [[10.0, 10.0], [20.0, 20.0], [30.0, 40.0]],
                       [[10.0, 10.0], [20.0, 20.0], [30.0, 40.0]]])
    conf = torch.tensor([[0.9, 0.1, 0.9], [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]])
    spread = torch.tensor([[0.5, 9.0, 0.5], [9.0, 0.5, 0.5], [0.5, 0.5, 0.5]])
    sizes = torch.full((3, 2), 100)
    reasons = filter_pseudo_labels(kp, conf, spread, sizes, min_confidence=0.3, max_spread=0.05)
    assert reasons == [["", "confidence", ""], ["agreement", "", ""], ["", "", ""]]
    # A measure out of the labelled range drops the landmarks it reads (distance 0-1 is 14.1 px here).
    ranges = measure_ranges({"d": DistanceMeasure(0, 1)}, torch.tensor([[[0.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [6.0, 8.0]]]))
    assert ranges == {"d": (5.0, 10.0)}
    dropped = filter_pseudo_labels(kp, torch.ones(3, 3), torch.zeros(3, 3), sizes, measures={"d": DistanceMeasure(0, 1)},
                                   ranges=ranges, measure_margin=0.1)
    assert dropped[2] == ["measure", "measure", ""]
    wide = filter_pseudo_labels(kp, torch.ones(3, 3), torch.zeros(3, 3), sizes, measures={"d": DistanceMeasure(0, 1)},
                                ranges=ranges, measure_margin=1.0)
    assert wide[2] == ["", "", ""]
    stats = PseudoLabelStats.count(reasons, ["A", "B", "C"])
    assert stats.kept == [2, 2, 3] and stats.dropped["agreement"] == [1, 0, 0] and stats.images_used == 3
    assert stats.to_dict()["dropped"]["confidence"] == {"A": 0, "B": 1, "C": 0}


def test_student_records_carry_partial_labels_and_enough_labelled_ones() -> None:
    train = [KeypointRecord(f"l{i}.png", np.zeros((2, 2))) for i in range(2)]
    labels = {"labels": [{"path": f"u{i}.png", "keypoints": [[1.0, 2.0], [3.0, 4.0]], "reasons": ["", ""]}
                         for i in range(6)] + [{"path": "x.png", "keypoints": [[1.0, 2.0], [3.0, 4.0]],
                                                "reasons": ["shape", "confidence"]}]}
    records = student_records(train, labels, labelled_share=0.5)
    pseudo = [r for r in records if r.meta.get(PARTIAL_LABELS)]
    assert len(pseudo) == 6 and len(records) - len(pseudo) == 6  # 2 labelled repeated to half of the set
    assert all(str(r.path) != "x.png" for r in records)


def test_partial_labels_add_no_loss_for_unknown_landmarks(tmp_path: Path) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(img)
    kp = np.array([[10.0, 10.0], [np.nan, np.nan]])
    partial = KeypointRecord(img, kp, meta={PARTIAL_LABELS: True})
    missing = KeypointRecord(img, kp)
    items = KeypointDataset([partial, missing], input_size=(32, 32), num_keypoints=2)
    assert items[0]["annotated"].tolist() == [True, False] and items[1]["annotated"].tolist() == [True, True]
    cfg = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=2,
                         encoder_kwargs={"widths": [4, 8], "bottleneck_width": 8})
    module = HeatmapFinetuneModule(cfg)
    batch = filtering_collate([items[0]])
    module.training_step(batch, 0).backward()
    head = module.model.head.weight.grad
    # The second landmark's heatmap channel gets no gradient: its target is the prediction itself.
    assert head[1].abs().sum().item() == 0.0 and head[0].abs().sum().item() > 0.0
    module.zero_grad()
    module.training_step(filtering_collate([items[1]]), 0).backward()
    assert module.model.head.weight.grad[1].abs().sum().item() > 0.0  # a missing label teaches "no landmark"


# ---------------------------------------------------------------------------------- whole runs


def _blob(kp: np.ndarray, size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    img = sum((0.5 + 0.5 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0) for j, (x, y) in enumerate(kp))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[KeypointRecord], list[Path]]:
    root = tmp_path_factory.mktemp("pseudo")
    rng = np.random.default_rng(0)
    records, pool = [], []
    for i in range(22):
        kp = np.array([rng.uniform(8, 20, 2), rng.uniform(26, 40, 2)])
        path = root / f"{i:02d}.png"
        Image.fromarray(_blob(kp)).save(path)
        if i < 10:
            records.append(KeypointRecord(path, kp))
        else:
            pool.append(path)
    return records, pool


def pseudo_config(**method) -> FinetuneConfig:
    return FinetuneConfig(
        input_size=(32, 32), heatmap_size=(16, 16), sigma=1.0, num_keypoints=2, keypoint_names=("A", "B"),
        measures={"d": DistanceMeasure(0, 1)}, lr=3e-3, batch_size=4, max_epochs=2,
        encoder_kwargs={"widths": [8, 16], "bottleneck_width": 16},
        method=PseudoLabelMethod(**{"views": 3, "min_confidence": 0.0, "max_spread": 0.5, "student_epochs": 1,
                                    **method}),
    )


def test_a_self_training_run_keeps_rounds_and_counts(tmp_path: Path, data) -> None:
    records, pool = data
    train, val = records[:8], records[8:]
    out = tmp_path / "run"
    labelled_in_pool = [r.path for r in train[:3]]  # labelled images given as unlabelled keep their labels
    result = run_finetuning(pseudo_config(rounds=2), (train, val), out, unlabelled=[*pool, *labelled_in_pool],
                            trainer=TRAINER, progress=False)
    assert [(out / f"round{r}" / ROUND_FILE).is_file() for r in range(3)] == [True, True, True]
    assert result.out_dir == out and result.best_checkpoint is not None
    assert result.best_checkpoint.parent.parent == out / "round2"
    assert [h["round"] for h in result.pseudo_labels] == [1, 2]
    first = json.loads((out / "round1" / "pseudo_labels.json").read_text())
    assert {Path(i["path"]) for i in first["labels"]} == set(pool)  # 12 images, the labelled ones left out
    kept = first["stats"]["kept"]
    assert first["stats"]["images"] == 12 and sum(kept.values()) + sum(
        sum(v.values()) for v in first["stats"]["dropped"].values()) == 24
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pseudo_labels"][0]["images"] == 12
    # Run again: every round is finished and reused, nothing is trained or labelled anew.
    stamp = (out / "round1" / "pseudo_labels.json").stat().st_mtime_ns
    again = run_finetuning(pseudo_config(rounds=2), (train, val), out, unlabelled=[*pool, *labelled_in_pool],
                           trainer=TRAINER, progress=False)
    assert again.best_checkpoint == result.best_checkpoint and again.best_metrics == result.best_metrics
    assert (out / "round1" / "pseudo_labels.json").stat().st_mtime_ns == stamp


def test_a_mean_teacher_teacher_and_a_student_from_it(tmp_path: Path, data) -> None:
    records, pool = data
    cfg = pseudo_config(teacher=MeanTeacherMethod(ema_decay=0.5, unlabelled_batch_size=2), student_init="teacher",
                        shape_quantile=0.5, measure_margin=0.0)
    result = run_finetuning(cfg, (records[:8], records[8:]), tmp_path / "mt", unlabelled=pool, trainer=TRAINER,
                            progress=False)
    teacher_config = json.loads((tmp_path / "mt" / "round0" / "config.json").read_text())
    assert teacher_config["method"]["class"].endswith("MeanTeacherMethod")
    student = json.loads((tmp_path / "mt" / "round1" / "run.json").read_text())["settings"]
    assert student["method"]["class"].endswith("SupervisedMethod") and student["init_model"]["file"].startswith("best")
    assert student["augment"] is True and student["augment_kwargs"]["rotation"] == 20.0
    # A strict shape test and no margin drop landmarks, and say so.
    dropped = result.pseudo_labels[0]["dropped"]
    assert sum(dropped["shape"].values()) + sum(dropped["measure"].values()) > 0
    with pytest.raises(ValueError, match="none were given"):
        run_finetuning(cfg, (records[:8], records[8:]), tmp_path / "none", trainer=TRAINER, progress=False)


def test_angle_measures_are_ranged_too() -> None:
    kp = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]])
    assert measure_ranges({"a": AngleMeasure(1, 0, 2)}, kp) == {"a": pytest.approx((45.0, 90.0))}

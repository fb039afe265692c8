"""Tests of sslkeypoint.selection: the strategies on features, the choosing on files, the model's
disagreement, the contact sheet and ``python -m sslkeypoint select``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sslkeypoint.cli import main
from sslkeypoint.configs import FinetuneConfig, TrainerConfig
from sslkeypoint.data import KeypointRecord
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.recipes import run_finetuning
from sslkeypoint.selection import (
    contact_sheet,
    kcenter_greedy,
    kmeans,
    prediction_disagreement,
    select_images,
    typical_clusters,
    typicality,
    uncertain_clusters,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


# ---------------------------------------------------------------------------------- on features


def blobs(counts: list[int], seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    """Well separated 2-D clusters of the given sizes, and each point's cluster."""
    g = torch.Generator().manual_seed(seed)
    points, labels = [], []
    for j, n in enumerate(counts):
        points.append(torch.tensor([10.0 * j, 5.0 * (j % 2)]) + 0.3 * torch.randn(n, 2, generator=g))
        labels += [j] * n
    return torch.cat(points), labels


@settings(max_examples=20)
@given(st.lists(st.integers(2, 12), min_size=2, max_size=6), st.integers(0, 1000))
def test_kmeans_finds_separated_clusters(counts: list[int], seed: int) -> None:
    x, truth = blobs(counts, seed)
    labels, centres = kmeans(x, len(counts), seed=seed, restarts=10)
    assert centres.shape == (len(counts), 2)
    # Same cluster in truth <=> same cluster found.
    for i in range(len(truth)):
        for j in range(i):
            assert (truth[i] == truth[j]) == bool(labels[i] == labels[j])


def test_one_start_can_merge_separated_clusters_and_restarts_fix_it() -> None:
    # A case where the single k-means++ start seeds two centres in the 12-point cluster at (30, 5)
    # and merges the two 2-point clusters at (40, 0) and (50, 5).
    x, truth = blobs([2, 5, 11, 12, 2, 2], 204)
    one, _ = kmeans(x, 6, seed=204)
    assert len(set(one[[t == 3 for t in truth]].tolist())) == 2
    best, _ = kmeans(x, 6, seed=204, restarts=10)
    assert [len(set(best[[t == j for t in truth]].tolist())) for j in range(6)] == [1] * 6
    assert len(set(best.tolist())) == 6
    with pytest.raises(ValueError, match="restarts"):
        kmeans(x, 6, restarts=0)


def test_typical_clusters_cover_every_cluster_before_any_twice() -> None:
    x, truth = blobs([30, 20, 10, 5])
    picks = typical_clusters(x, 4, seed=1)
    assert sorted(truth[p.index] for p in picks) == [0, 1, 2, 3]
    assert [truth[p.index] for p in picks] == [0, 1, 2, 3]  # the largest clusters first
    # Each pick is the most typical point of its cluster.
    typical = typicality(x)
    for p in picks:
        members = [i for i, t in enumerate(truth) if t == truth[p.index]]
        assert typical[p.index] == max(typical[i] for i in members)
    # Clusters with a label already are covered: the budget goes to the others.
    covered = typical_clusters(x, 2, labelled=x[:2], seed=1)
    assert 0 not in {truth[p.index] for p in covered}


def test_groups_are_spread_before_any_is_chosen_twice() -> None:
    x, truth = blobs([40, 2])
    groups = [i // 5 for i in range(len(truth))]  # the big cluster is 8 groups of 5 near-duplicates
    picks = kcenter_greedy(x, 5, groups=groups)
    chosen = [groups[p.index] for p in picks]
    assert len(set(chosen)) == len(chosen)
    clusters = typical_clusters(x, 6, groups=groups, seed=0)
    assert len({groups[p.index] for p in clusters}) == 6


def test_kcenter_goes_farthest_first() -> None:
    x = torch.tensor([[0.0], [1.0], [10.0], [4.0], [4.5]])
    picks = kcenter_greedy(x, 3, labelled=torch.tensor([[0.5]]))
    assert [p.index for p in picks] == [2, 4, 0]  # 10, then 4.5 (4 is then 0.5 from it), then a tie: the first
    assert picks[0].score == pytest.approx(9.5) and "farthest" in picks[0].reason


def test_uncertain_clusters_take_the_most_uncertain_of_each() -> None:
    x, _ = blobs([5, 5, 5])
    u = torch.arange(15, dtype=torch.float64)  # the last of every cluster is its most uncertain
    picks = uncertain_clusters(x, u, 3)
    assert [p.index for p in picks] == [14, 9, 4] and picks[0].score == 14.0
    with pytest.raises(ValueError, match="uncertainty must be"):
        uncertain_clusters(x, u[:3], 2)


# ---------------------------------------------------------------------------------- on files


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 images of three kinds (a bar at three heights), eight of each."""
    root = tmp_path_factory.mktemp("select")
    rng = np.random.default_rng(0)
    for kind in range(3):
        for i in range(8):
            img = (rng.random((32, 32)) * 30).astype(np.uint8)
            img[4 + 10 * kind: 10 + 10 * kind, :] = 220
            Image.fromarray(img).save(root / f"k{kind}_{i}.png")
    return root


def kind(path: Path) -> int:
    return int(path.name[1])


def test_coverage_chooses_one_image_of_each_kind(folder: Path) -> None:
    files = sorted(folder.glob("*.png"))
    sel = select_images(files, 3, strategy="coverage")
    assert sorted(kind(p) for p in sel.paths) == [0, 1, 2] and sel.features == "thumbnails"
    assert [c.rank for c in sel.choices] == [1, 2, 3] and all("cluster" in c.reason for c in sel.choices)
    # Images labelled already are not chosen again, and their kind counts as covered.
    done = [p for p in files if kind(p) == 0][:2]
    more = select_images(files, 2, strategy="coverage", labelled=done)
    assert not set(more.paths) & set(done) and sorted(kind(p) for p in more.paths) == [1, 2]
    assert more.candidates == 22


def test_random_is_a_seeded_order(folder: Path) -> None:
    files = sorted(folder.glob("*.png"))
    a, b = select_images(files, 5, strategy="random", seed=3), select_images(files, 5, strategy="random", seed=3)
    assert a.paths == b.paths and a.paths != select_images(files, 5, strategy="random", seed=4).paths


def test_bad_requests_are_refused(folder: Path) -> None:
    files = sorted(folder.glob("*.png"))
    with pytest.raises(ValueError, match="strategy must be one of"):
        select_images(files, 2, strategy="best")
    with pytest.raises(ValueError, match="budget"):
        select_images(files, 0)
    with pytest.raises(ValueError, match="one group per image"):
        select_images(files, 2, groups=[1, 2])
    with pytest.raises(ValueError, match="needs a fine-tuned model"):
        select_images(files, 2, strategy="uncertainty")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, folder: Path) -> Path:
    """A tiny network fine-tuned on the bars (one landmark: the bar's left end)."""
    files = sorted(folder.glob("*.png"))
    records = [KeypointRecord(p, np.array([[2.0, 7.0 + 10 * kind(p)]])) for p in files]
    cfg = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=1, lr=3e-3, batch_size=4,
                         max_epochs=2, encoder_kwargs={"widths": [4, 8], "bottleneck_width": 8})
    res = run_finetuning(cfg, records, tmp_path_factory.mktemp("model"), progress=False,
                         trainer=TrainerConfig(accelerator="cpu", devices=1, deterministic=True, num_sanity_val_steps=0))
    assert res.best_checkpoint is not None
    return res.best_checkpoint


def test_disagreement_and_the_uncertainty_strategy(folder: Path, model: Path) -> None:
    files = sorted(folder.glob("*.png"))
    predictor = KeypointPredictor.from_checkpoint(model)
    d = prediction_disagreement(predictor, files, views=4)
    assert d.shape == (24,) and (d >= 0).all() and torch.isfinite(d).all()
    again = prediction_disagreement(predictor, files, views=4)
    torch.testing.assert_close(d, again)  # seeded views
    sel = select_images(files, 3, strategy="uncertainty", model=model, views=4)
    assert len(sel) == 3 and all("most uncertain" in c.reason for c in sel.choices)
    assert [c.score for c in sel.choices] == sorted((c.score for c in sel.choices), reverse=True)
    # The fine-tuned network's encoder describes the images too.
    by_encoder = select_images(files, 3, strategy="kcenter", encoder=model)
    assert len(by_encoder) == 3 and by_encoder.features == str(model)


def test_contact_sheet_draws_the_choices(folder: Path, tmp_path: Path) -> None:
    sel = select_images(sorted(folder.glob("*.png")), 10, strategy="kcenter")
    sheet = contact_sheet(sel, tmp_path / "sheet.png", columns=4, thumb=64)
    with Image.open(sheet) as img:
        assert img.size == (4 * 64, 3 * (64 + 18))


def test_the_command_line_writes_the_list_and_the_sheet(folder: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(folder.glob("*.png"))
    labelled = tmp_path / "done.txt"
    labelled.write_text("path\n" + "\n".join(p.name for p in files if kind(p) == 2) + "\n")
    groups = tmp_path / "groups.csv"
    groups.write_text("path,group\n" + "\n".join(f"{p.name},{p.stem}" for p in files) + "\n")
    out = tmp_path / "picks" / "to_label.csv"
    code = main(["select", "--images", str(folder), "--budget", "2", "--labelled", str(labelled),
                 "--groups", str(groups), "--out", str(out), "--no-progress"])
    assert code == 0 and out.with_suffix(".png").is_file()
    rows = list(csv.DictReader(out.open()))
    assert [r["rank"] for r in rows] == ["1", "2"] and sorted(kind(Path(r["path"])) for r in rows) == [0, 1]
    assert all(r["group"] == Path(r["path"]).stem and r["reason"] for r in rows)
    assert "2 of 16 images chosen (coverage, features: thumbnails)" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text("path,group\nk0_0.png,a\n")
    assert main(["select", "--images", str(folder), "--budget", "2", "--groups", str(bad), "--out", str(out)]) == 2
    assert "gives no group for 23 images" in capsys.readouterr().err
    assert main(["select", "--images", str(tmp_path / "nowhere"), "--budget", "2", "--out", str(out)]) == 2

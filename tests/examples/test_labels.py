"""The example's choice of labelled cases: random draws, the library's selection over similarity groups,
two rounds (coverage, then the model's uncertainty), and a choice kept for every variant."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from iugc_aop.stages import choose_labelled, labelled_subset, load_dataset, similarity_group
from tests.examples.test_psfhs import _psfhs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def paths(records: list) -> list[str]:
    return [str(r.path) for r in records]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _psfhs(tmp_path_factory.mktemp("labels") / "psfhs", [k // 3 for k in range(36)])  # 12 groups of 3


def test_random_is_the_seeded_draw(data: Path, tmp_path: Path) -> None:
    train = load_dataset(data).train
    choice = choose_labelled(data, tmp_path, "smoke", 6, strategy="random", seed=2)
    assert paths(choice.records) == paths(labelled_subset(train, 6, 2)) and choice.out_dir is None
    assert choose_labelled(data, tmp_path, "smoke", None, strategy="coverage").strategy == "all"


def test_coverage_spreads_the_labels_over_the_groups_and_is_kept(data: Path, tmp_path: Path) -> None:
    train = load_dataset(data).train
    choice = choose_labelled(data, tmp_path, "smoke", 6, strategy="coverage", seed=0, progress=False)
    assert len(choice.records) == 6 and choice.groups == 6  # no group twice while others remain
    assert set(paths(choice.records)) <= set(paths(train))  # the cases with their labels revealed
    rows = list(csv.DictReader((choice.out_dir / "selection.csv").open()))
    assert [Path(r["path"]) for r in rows] == [Path(r.path) for r in choice.records]
    assert (choice.out_dir / "selection.png").is_file()
    again = choose_labelled(data, tmp_path, "smoke", 6, strategy="coverage", seed=0, progress=False)
    assert again.skipped and paths(again.records) == paths(choice.records)
    with pytest.raises(ValueError, match="unknown selection"):
        choose_labelled(data, tmp_path, "smoke", 6, strategy="best")


def test_coverage_then_uncertainty_labels_in_two_rounds(data: Path, tmp_path: Path) -> None:
    choice = choose_labelled(data, tmp_path, "smoke", 8, strategy="coverage_uncertainty", seed=1, progress=False)
    assert len(choice.records) == 8 and len({str(r.path) for r in choice.records}) == 8
    rows = list(csv.DictReader((choice.out_dir / "selection.csv").open()))
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 9)]
    assert all("cluster" in r["reason"] and "typical" in r["reason"] for r in rows[:4])
    assert all("most uncertain" in r["reason"] for r in rows[4:])
    # The first round's network was trained on the first half, from scratch.
    assert (tmp_path / "finetune" / "labels_coverage_uncertainty_thumbnails_n8_s1_round1" / "variant.json").is_file()
    assert len({similarity_group(r) for r in choice.records}) == choice.groups
    assert choice.out_dir.name == "coverage_uncertainty_thumbnails_n8_s1"

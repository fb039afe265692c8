"""The pipeline on a PSFHS-layout folder: ``demo --data PSFHS --labels N`` end to end (smoke profile)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iugc_aop.cli import main
from iugc_aop.stages import (
    holdout_split,
    load_dataset,
    similarity_group,
    unlabelled_pool,
)
from iugc_aop.stages.common import data_is_real
from tests.examples.test_psfhs import _psfhs

VARIANTS = ("unet", "ssl_unet", "semi_unet", "pseudo_unet")


@pytest.fixture(scope="module")
def psfhs_demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("psfhs")
    data = _psfhs(base / "psfhs", [k // 2 for k in range(30)])  # 30 cases in 15 groups of 2
    out = base / "run"
    rc = main(["demo", "--data", str(data), "--labels", "10", "--profile", "smoke", "--out", str(out),
               "--variants", *VARIANTS, "--select", "coverage", "--no-progress"])
    return {"rc": rc, "data": data, "out": out}


def test_psfhs_demo_writes_a_challenge_folder_for_every_variant(psfhs_demo: dict) -> None:
    assert psfhs_demo["rc"] == 0
    out: Path = psfhs_demo["out"]
    for name in VARIANTS:
        folder = out / "submissions" / name
        assert (folder / "model.py").is_file() and (folder / "model.pt").is_file(), name
        assert json.loads((folder / "metadata.json").read_text())["extra"]["variant"] == name
    # The recommended variant of the profile is also exported as OUT/submission/.
    assert (out / "submission" / "model.py").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics) == list(VARIANTS)
    testing = load_dataset(psfhs_demo["data"]).testing
    for name, m in metrics.items():
        assert m["source"] == "submission" and m["count"] == len(testing), name
        assert m["agrees_within_1e-4_px"] is True, name


def test_psfhs_demo_reports_what_the_pseudo_label_filter_kept(psfhs_demo: dict) -> None:
    out: Path = psfhs_demo["out"]
    summary = json.loads((out / "finetune" / "pseudo_unet" / "summary.json").read_text())
    counts = summary["pseudo_labels"][0]
    # Every landmark of every pool image is kept or dropped for one reason.
    for name in ("PS1", "PS2", "FH1"):
        assert counts["kept"][name] + sum(r[name] for r in counts["dropped"].values()) == counts["images"]
    line = next(x for x in (out / "report.md").read_text().splitlines() if "Pseudo-labels of round 1" in x)
    assert f"{counts['images']} images, {counts['images_used']} used; kept PS1 {counts['kept']['PS1']}" in line


def test_psfhs_demo_chose_its_labelled_cases_by_coverage(psfhs_demo: dict) -> None:
    out: Path = psfhs_demo["out"]
    chosen = out / "labels" / "coverage_stage1_n10_s0"
    assert (chosen / "selection.csv").is_file() and (out / "figures" / "labelled_cases.png").is_file()
    report = (out / "report.md").read_text()
    assert "chosen by `coverage` from" in report and "similarity groups" in report
    # Every variant trained on those cases (and their hold-out split).
    picked = {line.split(",")[1] for line in (chosen / "selection.csv").read_text().splitlines()[1:]}
    for name in VARIANTS:
        assert json.loads((out / "finetune" / name / "variant.json").read_text())["labelled"] == len(picked) == 10


def test_psfhs_demo_has_no_stage_2_and_says_so(psfhs_demo: dict) -> None:
    out: Path = psfhs_demo["out"]
    assert (out / "stage1" / "encoder.safetensors").is_file()
    assert not (out / "stage2").exists() and not (out / "select").exists()
    report = (out / "report.md").read_text()
    assert "no screening and no stage 2" in report
    # One stage of SSL is called so, and a table of dashes (no validation split here) is left out.
    assert "two-stage SSL" not in report and "stage-1 SSL" in report and "SSL (stage 1 only)" in report
    assert "## Validation split" not in report
    assert "| stage | wall s | CPU s |" in report
    # The SSL variant started from the stage-1 encoder.
    init = (out / "finetune" / "ssl_unet" / "encoder_init.txt").read_text()
    assert "stage1" in init and "encoder.safetensors" in init


def test_psfhs_demo_uses_the_label_budget_and_group_splits(psfhs_demo: dict) -> None:
    out: Path = psfhs_demo["out"]
    ds = load_dataset(psfhs_demo["data"])
    assert data_is_real(psfhs_demo["data"])
    train_groups = {r.meta["group"] for r in ds.train}
    assert train_groups.isdisjoint({r.meta["group"] for r in ds.testing})
    variant = json.loads((out / "finetune" / "unet" / "variant.json").read_text())
    assert variant["labelled"] == 10
    # The mean teacher's pool is every training image, never a testing one.
    pool = {str(p) for p in unlabelled_pool(ds)}
    assert len(pool) == len(ds.train) and pool.isdisjoint({str(r.path) for r in ds.testing})


def test_the_mean_teacher_never_trains_on_the_validation_groups(psfhs_demo: dict) -> None:
    ds = load_dataset(psfhs_demo["data"])
    variant = json.loads((psfhs_demo["out"] / "finetune" / "semi_unet" / "variant.json").read_text())
    # The stage's own hold-out split of the chosen cases, made again from its seed.
    rows = (psfhs_demo["out"] / "labels" / "coverage_stage1_n10_s0" / "selection.csv").read_text().splitlines()[1:]
    chosen = {line.split(",")[1] for line in rows}
    records = [r for r in ds.train if str(r.path) in chosen]
    _, val = holdout_split(records, 0.2, variant["seed"])
    held_out = {similarity_group(r) for r in val}
    pool = unlabelled_pool(ds, leave_out=val)
    kept = [r for r in ds.train if similarity_group(r) not in held_out]
    assert val and {str(p) for p in pool} == {str(r.path) for r in kept}
    # Near-duplicates of validation cases (same group, not validation cases themselves) are left out too.
    val_paths = {str(r.path) for r in val}
    partners = [r for r in ds.train if similarity_group(r) in held_out and str(r.path) not in val_paths]
    assert partners and not {str(r.path) for r in partners} & {str(p) for p in pool}
    assert variant["unlabelled"] == len(pool)


def test_holdout_split_keeps_groups_together() -> None:
    import numpy as np

    from sslkeypoint.data import KeypointRecord

    recs = [KeypointRecord(f"{i}.png", np.zeros((3, 2)), meta={"group": i // 3}) for i in range(30)]
    for seed in range(5):
        train, val = holdout_split(recs, 0.2, seed)
        assert {r.meta["group"] for r in train}.isdisjoint({r.meta["group"] for r in val})
        assert len(train) + len(val) == 30 and len(val) == 6  # 2 of 10 groups of 3

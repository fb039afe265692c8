"""Tests of sslkeypoint.metrics: radial error, measure errors, heatmap errors, SDR, KeypointMetrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.measures import AngleMeasure, DistanceMeasure
from sslkeypoint.metrics import (
    KeypointMetrics,
    aop_absolute_error,
    heatmap_mae,
    heatmap_mse,
    mean_radial_error,
    measure_error,
    radial_error,
    success_detection_rate,
)

NAN, INF = math.nan, math.inf
coord = st.floats(-500, 500, allow_nan=False, allow_infinity=False)

# PS1, PS2, FH1 with a right angle at PS1.
RIGHT = torch.tensor([[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]])
AOP = {"aop": AngleMeasure(vertex=0, first=1, second=2)}


# --- radial error ---------------------------------------------------------------------------


def test_radial_error_345_and_shapes():
    pred = torch.tensor([[[3.0, 4.0], [10.0, 10.0]], [[0.0, 0.0], [-6.0, 8.0]]])
    target = torch.tensor([[[0.0, 0.0], [10.0, 10.0]], [[0.0, 0.0], [0.0, 0.0]]])
    err = radial_error(pred, target)
    assert err.shape == (2, 2)
    assert err.tolist() == [[5.0, 0.0], [0.0, 10.0]]
    assert mean_radial_error(pred, target).item() == pytest.approx(15.0 / 4)


def test_radial_error_missing_and_failed():
    pred = torch.tensor([[3.0, 4.0], [NAN, 1.0], [1.0, 1.0], [INF, 0.0]])
    target = torch.tensor([[0.0, 0.0], [0.0, 0.0], [NAN, 0.0], [0.0, 0.0]])
    visible = torch.tensor([True, True, True, False])
    err = radial_error(pred, target, visible)
    assert err[0].item() == 5.0
    assert math.isinf(err[1].item())  # usable target, failed prediction
    assert math.isnan(err[2].item())  # target not finite: missing
    assert math.isnan(err[3].item())  # invisible: missing, whatever the prediction
    assert mean_radial_error(pred, target, visible).item() == 5.0
    assert math.isnan(mean_radial_error(pred[2:], target[2:], visible[2:]).item())


def test_radial_error_pixel_spacing():
    pred, target = torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2)
    assert radial_error(pred, target, pixel_spacing=0.5).item() == 2.5
    # Anisotropic: sqrt((2*3)^2 + (0.5*4)^2) = sqrt(40).
    assert radial_error(pred, target, pixel_spacing=(2.0, 0.5)).item() == pytest.approx(
        math.sqrt(40)
    )
    per_sample = torch.tensor([[[1.0, 1.0]], [[0.1, 0.1]]])  # (B, 1, 2)
    err = radial_error(pred.expand(2, 1, 2), target.expand(2, 1, 2), pixel_spacing=per_sample)
    assert err.flatten().tolist() == pytest.approx([5.0, 0.5])
    with pytest.raises(ValueError, match="pixel_spacing"):
        radial_error(pred, target, pixel_spacing=(1.0, 2.0, 3.0))


def test_radial_error_numpy_dtypes_and_bad_shapes():
    rng = np.random.default_rng(0)
    p, t = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
    ref = np.linalg.norm(p - t, axis=-1)
    out64 = radial_error(p, t)
    out32 = radial_error(torch.from_numpy(p).float(), torch.from_numpy(t).float())
    assert out64.dtype == torch.float64 and out32.dtype == torch.float32
    np.testing.assert_allclose(out64.numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(out32.numpy(), ref, rtol=1e-5)
    assert radial_error(np.array([[3, 4]]), np.array([[0, 0]])).tolist() == [5.0]  # int input
    with pytest.raises(ValueError, match=r"\(\.\.\., K, 2\)"):
        radial_error(torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="shape of pred"):
        radial_error(torch.zeros(2, 3, 2), torch.zeros(3, 3, 2))
    with pytest.raises(ValueError, match="visible"):
        radial_error(
            torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), visible=torch.ones(3, dtype=torch.bool)
        )


# --- AoP error ------------------------------------------------------------------------------


def test_aop_absolute_error_golden():
    # FH1 moved from straight down to 45° down-left: the angle at PS1 drops from 90° to 45°.
    pred = RIGHT.clone()
    pred[2] = torch.tensor([200.0, 180.0])
    assert aop_absolute_error(pred, RIGHT).item() == pytest.approx(45.0)
    assert aop_absolute_error(RIGHT, RIGHT).item() == 0.0
    # Other keypoint order.
    reordered = RIGHT[[2, 0, 1]]
    assert aop_absolute_error(
        pred[[2, 0, 1]], reordered, indices=(1, 2, 0)
    ).item() == pytest.approx(45.0)


def test_aop_absolute_error_degenerate_and_missing():
    coincident = RIGHT.clone()
    coincident[1] = coincident[0]  # PS2 == PS1: predicted AoP undefined -> failed
    batch_pred = torch.stack([RIGHT, coincident, RIGHT, RIGHT])
    batch_target = torch.stack([RIGHT, RIGHT, coincident, RIGHT])  # third: target undefined
    visible = torch.ones(4, 3, dtype=torch.bool)
    visible[3, 2] = False  # fourth: FH1 invisible -> missing
    err = aop_absolute_error(batch_pred, batch_target, visible=visible)
    assert err[0].item() == 0.0
    assert math.isinf(err[1].item())
    assert math.isnan(err[2].item()) and math.isnan(err[3].item())
    with pytest.raises(ValueError, match="3 keypoints"):
        aop_absolute_error(RIGHT, RIGHT, indices=(0, 1))
    with pytest.raises(ValueError, match="out of range"):
        aop_absolute_error(RIGHT, RIGHT, indices=(0, 1, 3))


@given(
    pts=st.lists(st.tuples(coord, coord), min_size=6, max_size=6),
    theta=st.floats(-math.pi, math.pi),
    scale=st.floats(0.1, 10.0),
    shift=st.tuples(coord, coord),
)
def test_aop_error_invariant_under_common_similarity(pts, theta, scale, shift):
    p = torch.tensor(pts, dtype=torch.float64).reshape(2, 3, 2)
    pred, target = p[0], p[1]
    arms = torch.cat([pred[1:] - pred[:1], target[1:] - target[:1]]).norm(dim=-1)
    if arms.min() < 1.0:
        return
    rot = torch.tensor(
        [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
        dtype=torch.float64,
    )
    move = lambda k: scale * k @ rot.T + torch.tensor(shift, dtype=torch.float64)  # noqa: E731
    before = aop_absolute_error(pred, target)
    after = aop_absolute_error(move(pred), move(target))
    assert after.item() == pytest.approx(before.item(), abs=1e-6)
    # numpy input and float32 agree with the float64 tensor result.
    assert aop_absolute_error(pred.numpy(), target.numpy()).item() == pytest.approx(
        before.item(), abs=1e-9
    )
    assert aop_absolute_error(pred.float(), target.float()).item() == pytest.approx(
        before.item(), abs=1e-2
    )


# --- heatmaps and SDR -----------------------------------------------------------------------


def test_heatmap_errors():
    pred = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    pred[0, 1, 0, 0] = 4.0  # one element off by 4 out of 96
    assert heatmap_mse(pred, target).item() == pytest.approx(16.0 / 96)
    assert heatmap_mae(pred, target).item() == pytest.approx(4.0 / 96)
    per = heatmap_mse(pred, target, reduction="none")
    assert per.shape == (2, 3) and per[0, 1].item() == 1.0 and per.sum().item() == 1.0
    with pytest.raises(ValueError, match="shape of pred"):
        heatmap_mse(pred, target[:, :2])
    with pytest.raises(ValueError, match="reduction"):
        heatmap_mae(pred, target, reduction="sum")


def test_success_detection_rate_counts():
    errors = torch.tensor([[0.5, 2.0, 2.0001], [4.0, NAN, INF]])
    # Scored: 0.5, 2, 2.0001, 4, inf (5 values; NaN missing). Within 2: 2; within 4: 4; within 10: 4.
    sdr = success_detection_rate(errors, [2.0, 4.0, 10.0])
    assert sdr.tolist() == pytest.approx([0.4, 0.8, 0.8])
    assert success_detection_rate(errors, 2.0).shape == ()
    assert math.isnan(success_detection_rate(torch.tensor([NAN]), [1.0])[0].item())
    assert success_detection_rate(np.array([1.0, 3.0]), (2.0,)).tolist() == [0.5]


# --- evaluator ------------------------------------------------------------------------------


def test_evaluator_golden_values():
    names = ["PS1", "PS2", "FH1"]
    ev = KeypointMetrics(names, measures=AOP, pixel_spacing=0.1, sdr_radii=(2.0, 5.0))
    target = torch.stack([RIGHT, RIGHT])
    pred = target.clone()
    pred[0, 0] += torch.tensor([3.0, 4.0])  # 5 px at PS1 of sample 0
    pred[1, 2] += torch.tensor([0.0, 1.0])  # 1 px at FH1 of sample 1 (stays on the same ray)
    ev.update(pred[:1], target[:1])
    ev.update(pred[1], target[1])  # a single (K, 2) sample is accepted
    res = ev.compute()
    assert res["count"] == 2 and res["missing"] == 0 and res["failed"] == 0
    assert res["missing_rate"] == 0.0 and res["evaluated"] == 6
    assert res["mre_px"] == pytest.approx(1.0)  # (5 + 1) / 6
    errors = np.array([5.0, 0, 0, 0, 0, 1.0])
    assert res["mre_std_px"] == pytest.approx(errors.std())
    assert res["mre_median_px"] == 0.0
    assert res["per_landmark_px"] == pytest.approx({"PS1": 2.5, "PS2": 0.0, "FH1": 0.5})
    assert res["sdr"] == pytest.approx({2.0: 5 / 6, 5.0: 1.0})
    assert res["mre_mm"] == pytest.approx(0.1)
    assert res["per_landmark_mm"]["PS1"] == pytest.approx(0.25)
    assert res["sdr_mm"] == pytest.approx({2.0: 1.0, 5.0: 1.0})
    # Sample 0: PS1 moved to (303, 84): the AoP changes; sample 1 unchanged.
    # Arms from (303, 84): (-103, -4) to PS2 and (-3, 116) to FH1.
    aop0 = math.degrees(math.acos((309 - 464) / (math.hypot(103, 4) * math.hypot(3, 116))))
    assert res["aop_mae_deg"] == pytest.approx(abs(aop0 - 90.0) / 2)
    assert res["aop_count"] == 2 and res["aop_missing"] == 0 and res["aop_failed"] == 0
    assert "heatmap_mse" not in res


def test_evaluator_missing_failed_and_degenerate():
    ev = KeypointMetrics(measures=AOP, sdr_radii=(1.0,))
    target = torch.stack([RIGHT, RIGHT, RIGHT])
    pred = target.clone()
    pred[0, 2] = NAN  # failed FH1 -> also a failed AoP
    pred[1, 1] = pred[1, 0]  # coincident PS1/PS2: finite landmarks but degenerate AoP -> failed
    visible = torch.ones(3, 3, dtype=torch.bool)
    visible[2, 0] = False  # missing PS1 -> AoP missing
    ev.update(pred, target, visible)
    res = ev.compute()
    assert res["count"] == 3
    assert res["missing"] == 1 and res["missing_rate"] == pytest.approx(1 / 9)
    assert res["failed"] == 1 and res["evaluated"] == 8
    assert res["failure_rate"] == pytest.approx(1 / 8)
    assert res["aop_failed"] == 2 and res["aop_missing"] == 1 and res["aop_count"] == 0
    assert math.isnan(res["aop_mae_deg"])
    # The PS2 error of sample 1 is |(300,80)-(200,80)| = 100; six other scored errors are 0.
    assert res["mre_px"] == pytest.approx(100 / 7)
    assert res["sdr"][1.0] == pytest.approx(6 / 8)  # the failure counts as a miss
    assert res["per_landmark_px"]["kp0"] == 0.0


def test_evaluator_heatmaps_devices_and_reset():
    ev = KeypointMetrics(["a", "b"])
    pred = torch.zeros(2, 2, 2, requires_grad=True)
    hp = torch.zeros(2, 2, 4, 4)
    ht = torch.ones(2, 2, 4, 4) * 0.5
    ev.update(pred * 1.0, torch.zeros(2, 2, 2), pred_heatmaps=hp, target_heatmaps=ht)
    res = ev.compute()
    assert res["heatmap_mse"] == pytest.approx(0.25) and res["heatmap_mae"] == pytest.approx(0.5)
    assert all(e.device.type == "cpu" and e.dtype == torch.float64 for e in ev.errors)
    with pytest.raises(ValueError, match="together"):
        ev.update(pred, torch.zeros(2, 2, 2), pred_heatmaps=hp)
    with pytest.raises(ValueError, match="2 keypoints"):
        ev.update(torch.zeros(1, 3, 2), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match=r"\(B, K, h, w\)"):
        ev.update(pred, torch.zeros(2, 2, 2), pred_heatmaps=hp[:1], target_heatmaps=ht[:1])
    ev.reset()
    with pytest.warns(UserWarning, match="before the ``update``"):
        empty = ev.compute()
    assert empty["count"] == 0 and math.isnan(empty["mre_px"]) and "heatmap_mse" not in empty
    # numpy input is accepted.
    ev.update(np.zeros((1, 2, 2)), np.full((1, 2, 2), 3.0), visible=np.array([[True, False]]))
    assert ev.compute()["mre_px"] == pytest.approx(math.sqrt(18))


def test_evaluator_table():
    ev = KeypointMetrics(["PS1", "PS2", "FH1"], measures=AOP, pixel_spacing=(0.1, 0.1))
    target = RIGHT.unsqueeze(0)
    ev.update(target + torch.tensor([3.0, 4.0]), target)
    table = ev.table()
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["landmark", "n", "mean"]
    assert [line.split()[0] for line in lines[1:5]] == ["PS1", "PS2", "FH1", "all"]
    assert "5.00" in lines[4] and "0.500" in lines[4] and "SDR@5" in lines[0]
    assert lines[-1].startswith("aop: MAE 0.00°")
    assert "KeypointMetrics(" in repr(ev) and "'aop'" in repr(ev)


def test_evaluator_rejects_bad_config():
    with pytest.raises(ValueError, match="valid indices for 2 keypoints"):
        KeypointMetrics(["a", "b"], measures=AOP)
    with pytest.raises(ValueError, match="Measure interface"):
        KeypointMetrics(measures={"aop": (0, 1, 2)})
    with pytest.raises(ValueError, match="pixel_spacing"):
        KeypointMetrics(pixel_spacing=-1.0)
    with pytest.raises(ValueError, match="disagrees"):
        KeypointMetrics(["a", "b"], num_keypoints=3)


def test_evaluator_distance_measure_and_names_from_the_first_batch():
    ev = KeypointMetrics(measures={"ps": DistanceMeasure(0, 1), "aop": AngleMeasure(0, 1, 2)})
    target = torch.stack([RIGHT, RIGHT])
    pred = target.clone()
    pred[0, 1, 0] -= 10.0  # PS2 10 px further left: PS length 110 instead of 100
    pred[1, 2] = NAN  # FH1 failed: the distance is still scored, the AoP fails
    ev.update(pred, target)
    res = ev.compute()
    assert ev.names == ["kp0", "kp1", "kp2"]
    assert res["ps_mae_px"] == pytest.approx(5.0) and res["ps_count"] == 2
    assert res["aop_count"] == 1 and res["aop_failed"] == 1 and res["aop_mae_deg"] == pytest.approx(0.0)


def test_measure_error_golden_and_missing():
    target = torch.stack([RIGHT, RIGHT])
    pred = target.clone()
    pred[0, 2] = torch.tensor([400.0, 180.0])  # FH1 on the 45° ray from PS1
    err = measure_error(AngleMeasure(0, 1, 2), pred, target, visible=torch.tensor([[1, 1, 1], [1, 0, 1]]).bool())
    assert err[0].item() == pytest.approx(45.0) and math.isnan(err[1].item())
    assert measure_error(DistanceMeasure(1, 2), pred, target)[1].item() == 0.0
    with pytest.raises(ValueError, match="out of range"):
        measure_error(AngleMeasure(0, 1, 5), pred, target)


def test_per_image_pixel_sizes_give_mm_errors_and_mm_lengths() -> None:
    """Hand-derived: 4 px and 3 px errors at 0.1 and 0.3 mm/px; an image without a size is missing in mm."""
    from sslkeypoint.measures import AngleMeasure, DistanceMeasure
    from sslkeypoint.metrics import KeypointMetrics

    m = KeypointMetrics(["a", "b", "c"], measures={"span": DistanceMeasure(0, 1), "ang": AngleMeasure(0, 1, 2)})
    target = torch.tensor([[[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]]] * 3)
    pred = target.clone()
    pred[:, 0, 1] += 4.0  # a: 4 px off
    pred[:, 1, 0] += 3.0  # b: 3 px off
    m.update(pred, target, pixel_size=torch.tensor([0.1, 0.3, float("nan")]))
    out = m.compute()
    assert out["mre_px"] == pytest.approx(7 / 3)
    assert out["per_landmark_mm"] == {"a": pytest.approx(0.8), "b": pytest.approx(0.6), "c": pytest.approx(0.0)}
    assert out["mre_mm"] == pytest.approx((0.4 + 0.3 + 1.2 + 0.9) / 6)
    span = (13.0**2 + 4.0**2) ** 0.5 - 10.0  # |predicted span - true span| in px
    assert out["span_mae_px"] == pytest.approx(span)
    assert out["span_mae_mm"] == pytest.approx(0.2 * span)
    assert out["span_count_mm"] == 2 and out["span_missing_mm"] == 1
    assert "ang_mae_mm" not in out and "ang_mae_deg" in out
    none = KeypointMetrics(["a", "b", "c"])
    none.update(pred, target, pixel_size=torch.full((3,), float("nan")))
    assert "mre_mm" not in none.compute()

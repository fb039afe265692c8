"""Tests of sslkeypoint.augment: keypoint-aware augmentation and the MoCo v2 view pipeline."""

from __future__ import annotations

from typing import Any

import kornia.augmentation as K
import pytest
import torch
from kornia.augmentation.container.params import ParamItem
from kornia.augmentation.random_generator import ColorJiggleGenerator
from kornia.filters import gaussian_blur2d

from sslkeypoint.augment import (
    GatedColorJiggle,
    GatedGaussianBlur,
    KeypointAugmentation,
    MoCoV2Augmentation,
    blur_kernel_size,
    keypoint_augmentation,
    keypoints_in_frame,
    moco_v2_augmentation,
)
from sslkeypoint.augment._kornia import GATE_KEY, applied_samples

NAN = float("nan")


def _dot_images(keypoints: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 1, h, w) black images with one white pixel at each integer keypoint (x, y)."""
    b = keypoints.shape[0]
    img = torch.zeros(b, 1, h, w)
    for i in range(b):
        for x, y in keypoints[i].round().long().tolist():
            img[i, 0, y, x] = 1.0
    return img


def _centroid(
    image: torch.Tensor, x: float, y: float, radius: int = 4
) -> tuple[float, float, float]:
    """Intensity-weighted centroid (and mass) of ``image`` (h, w) within ``radius`` px of (x, y)."""
    h, w = image.shape
    xs = torch.arange(w, dtype=torch.float64)
    ys = torch.arange(h, dtype=torch.float64)
    window = ((xs[None, :] - x).abs() <= radius) & ((ys[:, None] - y).abs() <= radius)
    weights = image.double() * window
    mass = float(weights.sum())
    if mass == 0:
        return NAN, NAN, 0.0
    cx = float((weights * xs[None, :]).sum()) / mass
    cy = float((weights * ys[:, None]).sum()) / mass
    return cx, cy, mass


def _random_dots(b: int, k: int, h: int, w: int, margin: int = 12) -> torch.Tensor:
    """Integer keypoints at least 12 px apart from each other and ``margin`` px inside the image."""
    g = torch.Generator().manual_seed(1)
    out = torch.empty(b, k, 2)
    for i in range(b):
        pts: list[tuple[int, int]] = []
        while len(pts) < k:
            x = int(torch.randint(margin, w - margin, (1,), generator=g))
            y = int(torch.randint(margin, h - margin, (1,), generator=g))
            if all(abs(x - px) + abs(y - py) >= 12 for px, py in pts):
                pts.append((x, y))
        out[i] = torch.tensor(pts, dtype=torch.float32)
    return out


# ----------------------------------------------------------------------------------------------
# keypoint augmentation


@pytest.mark.parametrize("hflip", [False, True])
def test_keypoints_follow_the_pixels(hflip: bool) -> None:
    torch.manual_seed(3)
    b, k, h, w = 8, 4, 64, 80
    kp = _random_dots(b, k, h, w)
    images = _dot_images(kp, h, w)
    aug = keypoint_augmentation(
        rotation=30.0, translate=0.1, scale=(0.8, 1.25), brightness=0.0, contrast=0.0, hflip=hflip
    )
    out, kp2, vis = aug(images, kp, None)
    assert out.shape == images.shape and kp2.shape == kp.shape
    checked = 0
    for i in range(b):
        for j in range(k):
            if not vis[i, j]:
                continue
            x, y = kp2[i, j].tolist()
            cx, cy, mass = _centroid(out[i, 0], x, y)
            if mass < 0.5:  # the dot was cut at the border
                continue
            assert abs(cx - x) < 0.5 and abs(cy - y) < 0.5, (i, j, (x, y), (cx, cy))
            checked += 1
    assert checked >= b * k // 2
    # the transform really moved things
    assert (kp2 - kp).abs().nan_to_num().max() > 2.0


def test_keypoints_follow_a_flip_exactly() -> None:
    kp = torch.tensor([[[10.0, 5.0], [50.0, 20.0]]]).repeat(16, 1, 1)
    images = _dot_images(kp, 32, 64)
    aug = keypoint_augmentation(
        rotation=0.0, translate=0.0, scale=None, brightness=0.0, contrast=0.0, hflip=True
    )
    out, kp2, vis = aug(images, kp)
    flipped = kp2[:, 0, 0] != 10.0
    assert 0 < int(flipped.sum()) < 16  # p = 0.5 over 16 samples, seeded
    # x' = W - 1 - x for mirrored samples, unchanged otherwise
    assert torch.equal(kp2[flipped, :, 0], 63.0 - kp[flipped, :, 0])
    assert torch.equal(kp2[~flipped], kp[~flipped])
    assert torch.equal(out[flipped], images[flipped].flip(-1))
    assert vis.all()


def test_flip_pairs_swap_identities() -> None:
    kp = torch.tensor([[[10.0, 5.0], [50.0, 20.0], [30.0, 30.0]]]).repeat(16, 1, 1)
    vis_in = torch.tensor([[True, False, True]]).repeat(16, 1)
    aug = keypoint_augmentation(
        rotation=0.0,
        translate=0.0,
        scale=None,
        brightness=0.0,
        contrast=0.0,
        hflip=True,
        flip_pairs=[(0, 1)],
    )
    _, kp2, vis = aug(torch.rand(16, 1, 32, 64), kp, vis_in)
    flipped = kp2[:, 2, 0] != 30.0
    assert 0 < int(flipped.sum()) < 16
    # landmark 0 of a mirrored sample is the mirror image of landmark 1 (and vice versa)
    assert torch.equal(
        kp2[flipped, 0], torch.tensor([63.0 - 50.0, 20.0]).expand(int(flipped.sum()), 2)
    )
    assert torch.equal(
        kp2[flipped, 1], torch.tensor([63.0 - 10.0, 5.0]).expand(int(flipped.sum()), 2)
    )
    assert torch.equal(
        vis[flipped], torch.tensor([False, True, True]).expand(int(flipped.sum()), 3)
    )
    assert torch.equal(vis[~flipped], vis_in[~flipped])
    with pytest.raises(ValueError, match="hflip"):
        keypoint_augmentation(flip_pairs=[(0, 1)])


def test_no_flip_by_default() -> None:
    aug = keypoint_augmentation()
    assert not any(isinstance(m, K.RandomHorizontalFlip) for m in aug.pipeline.children())


def test_identity_configuration_is_exact() -> None:
    aug = keypoint_augmentation(
        rotation=0.0, translate=0.0, scale=None, brightness=0.0, contrast=0.0
    )
    images = torch.rand(3, 1, 16, 20)
    kp = torch.tensor([[[0.0, 0.0], [19.0, 15.0]]]).repeat(3, 1, 1)
    out, kp2, vis = aug(images, kp)
    assert torch.allclose(out, images, atol=1e-6)
    assert torch.allclose(kp2, kp, atol=1e-5)
    assert vis.all()


def test_out_of_frame_becomes_invisible_and_is_not_clamped() -> None:
    aug = keypoint_augmentation(
        rotation=0.0, translate=0.0, scale=None, brightness=0.0, contrast=0.0
    )
    kp = torch.tensor([[[-3.0, 4.0], [4.0, 40.0], [-0.5, -0.5], [19.49, 15.49], [19.5, 3.0]]])
    _, kp2, vis = aug(torch.rand(1, 1, 16, 20), kp)
    assert vis.tolist() == [[False, False, True, True, False]]
    assert torch.allclose(kp2, kp, atol=1e-5)


def test_visibility_matches_the_frame_after_a_random_warp() -> None:
    torch.manual_seed(5)
    b, k, h, w = 32, 6, 24, 24
    kp = torch.rand(b, k, 2) * torch.tensor([w - 1.0, h - 1.0])
    vis_in = torch.rand(b, k) > 0.2
    aug = keypoint_augmentation(rotation=45.0, translate=0.4, scale=(0.7, 1.4))
    _, kp2, vis = aug(torch.rand(b, 1, h, w), kp, vis_in)
    inside = keypoints_in_frame(kp2, (h, w))
    assert torch.equal(vis, vis_in & inside)
    assert (~inside).any() and inside.any()  # both cases happen


def test_nan_keypoints_stay_nan_and_invisible() -> None:
    torch.manual_seed(0)
    kp = torch.tensor([[[5.0, 6.0], [NAN, NAN], [10.0, 3.0]], [[NAN, 2.0], [8.0, 8.0], [1.0, 1.0]]])
    aug = keypoint_augmentation()
    images = torch.rand(2, 1, 16, 16)
    out, kp2, vis = aug(images, kp, torch.ones(2, 3, dtype=torch.bool))
    assert kp2[0, 1].isnan().all() and kp2[1, 0].isnan().all()
    assert not vis[0, 1] and not vis[1, 0]
    assert torch.isfinite(out).all()
    # the other keypoints moved exactly as they would without the NaN ones
    filled = kp.nan_to_num(3.0)
    _, kp3, _ = aug(images, filled, None, params=aug.last_params)
    finite = torch.isfinite(kp).all(-1)
    assert torch.equal(kp2[finite], kp3[finite])


def test_replay_reproduces_the_call() -> None:
    torch.manual_seed(0)
    images = torch.rand(4, 1, 32, 32)
    kp = torch.rand(4, 3, 2) * 31
    vis = torch.rand(4, 3) > 0.3
    aug = keypoint_augmentation(hflip=True)
    out = aug(images, kp, vis)
    params = aug.last_params
    other = aug(images, kp, vis)
    assert not torch.equal(other[0], out[0])
    again = aug(images, kp, vis, params=params)
    for a, b in zip(out, again):
        assert torch.equal(a, b)


def test_keypoint_augmentation_validates_shapes() -> None:
    aug = KeypointAugmentation()
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        aug(torch.rand(2, 1, 8, 8), torch.rand(3, 2, 2))
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        aug(torch.rand(2, 1, 8, 8), torch.rand(2, 2, 2), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        aug(torch.rand(1, 8, 8), torch.rand(1, 2, 2))
    with pytest.raises(ValueError, match="rotation"):
        KeypointAugmentation(rotation=-1.0)


def test_keypoints_in_frame_bounds() -> None:
    kp = torch.tensor([[-0.5, -0.5], [-0.51, 0.0], [9.49, 4.49], [9.5, 0.0], [0.0, 4.5]])
    assert keypoints_in_frame(kp, (5, 10)).tolist() == [True, False, True, False, False]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_the_batch_device() -> None:
    images = torch.rand(4, 1, 32, 32, device="cuda")
    kp = torch.rand(4, 3, 2, device="cuda") * 31
    out, kp2, vis = keypoint_augmentation(hflip=True)(images, kp)
    assert out.device.type == kp2.device.type == vis.device.type == "cuda"
    view = moco_v2_augmentation(16)(images)
    assert view.device.type == "cuda" and view.shape == (4, 1, 16, 16)


# ----------------------------------------------------------------------------------------------
# MoCo v2


def test_blur_kernel_size_rule() -> None:
    assert blur_kernel_size(224) == 23
    assert blur_kernel_size(256) == 25
    assert blur_kernel_size((64, 128)) == 7
    assert blur_kernel_size(10) == 3
    with pytest.raises(ValueError):
        blur_kernel_size(0)


@pytest.mark.parametrize(("in_chans", "size"), [(1, (24, 24)), (3, (20, 28)), (1, 16)])
def test_moco_output_shape_dtype_range(in_chans: int, size: int | tuple[int, int]) -> None:
    aug = moco_v2_augmentation(size, in_chans=in_chans)
    x = torch.rand(6, in_chans, 40, 36)
    y = aug(x)
    expected = (size, size) if isinstance(size, int) else size
    assert y.shape == (6, in_chans, *expected)
    assert y.dtype == torch.float32
    assert y.min() >= 0.0 and y.max() <= 1.0
    y2 = aug(x)
    assert not torch.equal(y, y2)
    # per-sample draws: views of identical inputs differ within the batch
    same = aug(x[:1].expand(6, -1, -1, -1).contiguous())
    assert not torch.equal(same[0], same[1])


def test_moco_one_channel_has_no_colour_work() -> None:
    mods = list(moco_v2_augmentation(32, in_chans=1).pipeline.children())
    assert not any(isinstance(m, K.RandomGrayscale) for m in mods)
    jitter = [m for m in mods if isinstance(m, GatedColorJiggle)]
    assert len(jitter) == 1 and not jitter[0].colour
    assert not any(isinstance(m, K.ColorJiggle) for m in mods)
    rgb = list(moco_v2_augmentation(32, in_chans=3).pipeline.children())
    assert sum(isinstance(m, K.RandomGrayscale) for m in rgb) == 1
    assert [m.colour for m in rgb if isinstance(m, GatedColorJiggle)] == [True]


def test_moco_identity_configuration() -> None:
    aug = moco_v2_augmentation(
        16, in_chans=1, scale=(1.0, 1.0), ratio=(1.0, 1.0), jitter_p=0.0, blur_p=0.0, hflip_p=0.0
    )
    x = torch.rand(3, 1, 16, 16)
    assert torch.allclose(aug(x), x, atol=1e-6)


def test_moco_replay_and_validation() -> None:
    aug = MoCoV2Augmentation(24, in_chans=1)
    x = torch.rand(4, 1, 32, 32)
    a = aug(x)
    params = aug.last_params
    aug(x)
    assert torch.equal(aug(x, params=params), a)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        aug(torch.rand(4, 3, 32, 32))
    with pytest.raises(ValueError, match="blur_kernel"):
        MoCoV2Augmentation(24, blur_kernel=4)
    with pytest.raises(ValueError, match="scale"):
        MoCoV2Augmentation(24, scale=(0.5, 1.5))


def test_moco_normalize() -> None:
    aug = moco_v2_augmentation(8, in_chans=1, normalize=([0.5], [0.25]), jitter_p=0.0, blur_p=0.0)
    y = aug(torch.full((2, 1, 8, 8), 0.75))
    assert torch.allclose(y, torch.ones_like(y))


def test_gated_jiggle_matches_kornia_colorjiggle() -> None:
    torch.manual_seed(2)
    x = torch.rand(64, 1, 8, 8)
    fast = GatedColorJiggle(0.4, 0.4, p=0.8)
    params = fast.forward_parameters(x.shape)
    out = fast(x, params=params)
    selected = params["brightness_factor"] != 1.0
    assert 0.65 < float(selected.float().mean()) < 0.95  # the gate: about 80 %
    reference = K.ColorJiggle(0.4, 0.4, 0.0, 0.0, p=1.0)(x, params=params)
    assert torch.allclose(out, reference, atol=1e-6)
    assert torch.equal(out[~selected & (params["contrast_factor"] == 1.0)], x[~selected])


def test_gated_colour_jiggle_matches_kornia_colorjiggle() -> None:
    torch.manual_seed(6)
    x = torch.rand(32, 3, 8, 8)
    fast = GatedColorJiggle(0.4, 0.4, 0.4, 0.1, p=0.8)
    params = fast.forward_parameters(x.shape)
    out = fast(x, params=params)
    selected = params["hue_factor"] != 0.0
    assert 0 < int(selected.sum()) < 32
    reference = K.ColorJiggle(0.4, 0.4, 0.4, 0.1, p=1.0)(x, params=params)
    assert torch.allclose(out, reference, atol=1e-5)
    assert torch.equal(out[~selected], x[~selected])


def test_gated_blur_blurs_only_selected_samples() -> None:
    torch.manual_seed(4)
    x = torch.rand(32, 1, 12, 12)
    blur = GatedGaussianBlur(5, (0.5, 2.0), p=0.5)
    params = blur.forward_parameters(x.shape)
    out = blur(x, params=params)
    gate = params["gate"]
    assert 0 < int(gate.sum()) < 32
    sigma = params["sigma"][gate].unsqueeze(-1).expand(-1, 2)
    expected = gaussian_blur2d(x[gate], (5, 5), sigma, border_type="reflect")
    assert torch.allclose(out[gate], expected, atol=1e-6)
    assert torch.equal(out[~gate], x[~gate])


def test_gated_jiggle_steps_by_hand() -> None:
    # 0.5 shifted by +0.2 then scaled by 1.5 is 1.05, clamped to 1; scaled first it is 0.95.
    x = torch.full((2, 1, 2, 2), 0.5)
    jitter = GatedColorJiggle(0.4, 0.5)
    params = {
        "brightness_factor": torch.tensor([1.2, 1.0]),
        "contrast_factor": torch.tensor([1.5, 1.0]),
        "saturation_factor": torch.ones(2),
        "hue_factor": torch.zeros(2),
        "order": torch.tensor([0, 1, 2, 3]),
    }
    out = jitter(x, params=params)
    assert torch.equal(out[0], torch.ones(1, 2, 2)) and torch.equal(out[1], x[1])
    out = jitter(x, params={**params, "order": torch.tensor([3, 1, 2, 0])})
    assert torch.allclose(out[0], torch.full((1, 2, 2), 0.95)) and torch.equal(out[1], x[1])


def test_gated_jiggle_draws_kornias_factors() -> None:
    # Selected samples get exactly the factors kornia's generator draws from the same seed.
    shape = (64, 3, 4, 4)
    torch.manual_seed(8)
    reference = ColorJiggleGenerator(0.4, 0.4, 0.4, 0.1)(shape)
    torch.manual_seed(8)
    params = GatedColorJiggle(0.4, 0.4, 0.4, 0.1, p=0.5).forward_parameters(shape)
    gate = params["hue_factor"] != 0.0
    assert 16 < int(gate.sum()) < 48
    for key in ("brightness_factor", "contrast_factor", "saturation_factor", "hue_factor"):
        assert torch.equal(params[key][gate], reference[key][gate]), key
    assert (params["brightness_factor"][~gate] == 1.0).all()
    assert torch.equal(params["order"], reference["order"])


def test_gated_ops_are_kornia_intensity_augmentations() -> None:
    for cls in (GatedColorJiggle, GatedGaussianBlur):
        assert issubclass(cls, K.IntensityAugmentationBase2D)
    assert not issubclass(GatedColorJiggle, K.ColorJiggle)
    assert not issubclass(GatedGaussianBlur, K.RandomGaussianBlur)
    pipeline = K.AugmentationSequential(
        GatedColorJiggle(0.3, 0.3, p=0.5), GatedGaussianBlur(3, (0.5, 1.0), p=0.5)
    )
    x = torch.rand(6, 1, 8, 8)
    params = pipeline.forward_parameters(x.shape)
    out = pipeline(x, params=params)
    assert out.shape == x.shape and torch.equal(pipeline(x, params=params), out)
    assert "GatedGaussianBlur(kernel_size=(3, 3)" in repr(pipeline)


def test_gated_ops_same_on_batch_and_rng_dtype() -> None:
    x = torch.rand(16, 1, 8, 8)
    jitter = GatedColorJiggle(0.4, 0.4, p=0.5, same_on_batch=True)
    blur = GatedGaussianBlur(3, (0.5, 2.0), p=0.5, same_on_batch=True)
    for _ in range(8):
        factors = jitter.forward_parameters(x.shape)["brightness_factor"]
        assert (factors == factors[0]).all()
        drawn = blur.forward_parameters(x.shape)
        assert (drawn["sigma"] == drawn["sigma"][0]).all()
        assert bool(drawn["gate"].all()) or not bool(drawn["gate"].any())
    jitter.set_rng_device_and_dtype(torch.device("cpu"), torch.float64)
    blur.set_rng_device_and_dtype(torch.device("cpu"), torch.float64)
    assert blur.forward_parameters(x.shape)["sigma"].dtype == torch.float64
    assert jitter.factors.dtype == torch.float64


def test_gated_ops_validate_arguments() -> None:
    with pytest.raises(ValueError, match="p must be"):
        GatedColorJiggle(0.4, 0.4, p=1.5)
    with pytest.raises(ValueError, match="odd"):
        GatedGaussianBlur(4, (0.1, 2.0))
    with pytest.raises(ValueError, match="sigma"):
        GatedGaussianBlur(3, (2.0, 1.0))
    with pytest.raises(ValueError, match="p must be"):
        GatedGaussianBlur(3, (0.1, 2.0), p=-0.1)


# ----------------------------------------------------------------------------------------------
# replay through kornia's public parameter API


def _same_params(a: list[ParamItem], b: list[ParamItem]) -> bool:
    if [item.name for item in a] != [item.name for item in b]:
        return False
    for x, y in zip(a, b):
        assert isinstance(x.data, dict) and isinstance(y.data, dict)
        if x.data.keys() != y.data.keys():
            return False
        if not all(torch.equal(x.data[k], y.data[k]) for k in x.data):
            return False
    return True


@pytest.mark.parametrize(
    ("in_chans", "kwargs"),
    [
        (1, {}),
        (1, {"jitter_p": 0.5, "blur_p": 0.3, "hflip_p": 1.0}),
        (3, {"jitter_p": 0.5, "blur_p": 0.5, "grayscale_p": 0.5}),
    ],
)
def test_moco_last_params_are_the_pipeline_draw(in_chans: int, kwargs: dict[str, Any]) -> None:
    aug = moco_v2_augmentation(16, in_chans=in_chans, **kwargs)
    x = torch.rand(8, in_chans, 24, 20)
    torch.manual_seed(11)
    view = aug(x)
    params = aug.last_params
    assert params is not None
    assert [item.name for item in params] == [name for name, _ in aug.pipeline.named_children()]
    torch.manual_seed(11)
    assert _same_params(params, aug.pipeline.forward_parameters(x.shape))
    aug(x)
    assert torch.equal(aug(x, params=params), view)
    assert aug.last_params is params


def test_keypoint_last_params_are_the_pipeline_draw() -> None:
    aug = keypoint_augmentation(hflip=True, flip_pairs=[(0, 1)], intensity_p=0.5)
    images = torch.rand(8, 1, 24, 24)
    kp = torch.rand(8, 3, 2) * 23
    torch.manual_seed(12)
    out = aug(images, kp)
    params = aug.last_params
    assert params is not None
    torch.manual_seed(12)
    assert _same_params(params, aug.pipeline.forward_parameters(images.shape))
    aug(images, kp)
    again = aug(images, kp, params=params)
    for a, b in zip(out, again):
        assert torch.equal(a.nan_to_num(), b.nan_to_num())


def test_kornia_records_its_gate_as_batch_prob() -> None:
    # KeypointAugmentation swaps flip_pairs for the samples kornia's flip gate selected; the gate
    # is read from the drawn parameters in sslkeypoint/augment/_kornia.py, the only place that
    # relies on kornia's key. This fails when kornia changes it.
    flip = K.RandomHorizontalFlip(p=0.5)
    x = torch.rand(16, 1, 4, 6)
    params = flip.forward_parameters(x.shape)
    assert GATE_KEY in params, (
        f"kornia no longer records its per-sample gate as {GATE_KEY!r} (keys: {sorted(params)}): "
        "update sslkeypoint/augment/_kornia.py"
    )
    gate = applied_samples(params)
    assert gate.shape == (16,) and 0 < int(gate.sum()) < 16
    out = flip(x, params=params)
    assert torch.equal(out[gate], x[gate].flip(-1)) and torch.equal(out[~gate], x[~gate]), (
        f"kornia's {GATE_KEY!r} no longer marks the flipped samples: update sslkeypoint/augment/_kornia.py"
    )
    with pytest.raises(RuntimeError, match="batch_prob"):
        applied_samples({"sigma": torch.ones(2)})

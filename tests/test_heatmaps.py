"""Tests for sslkeypoint.heatmaps: resize maps, Gaussian encoding and heatmap decoding."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import sslkeypoint.heatmaps
from sslkeypoint.heatmaps import (
    HeatmapCodec,
    codec_from_dict,
    codec_to_dict,
    decode_heatmaps,
    keypoints_to_input,
    keypoints_to_original,
    render_gaussian_heatmaps,
    rescale_keypoints,
)

# (input_size, heatmap_size): square stride 4, unequal strides per axis, non-integer strides.
GEOMETRIES = [
    ((256, 256), (64, 64)),
    ((256, 192), (64, 48)),
    ((100, 90), (30, 45)),
]


# --------------------------------------------------------------------------- resize maps


def test_rescale_golden_values() -> None:
    # Pixel centres: 0 -> (0.5 * 0.5) - 0.5 = -0.25; 511 -> 511.5 * 0.5 - 0.5 = 255.25.
    kp = torch.tensor([[0.0, 511.0], [255.5, 255.5]])
    out = rescale_keypoints(kp, (512, 512), (256, 256))
    assert out.tolist() == [[-0.25, 255.25], [127.5, 127.5]]
    # (H, W) order: only the width changes here, so only x changes.
    out = rescale_keypoints(torch.tensor([[9.5, 9.5]]), (20, 20), (20, 40))
    assert out.tolist() == [[19.5, 9.5]]


def test_rescale_per_sample_sizes() -> None:
    kp = torch.tensor([[[0.0, 0.0]], [[0.0, 0.0]]])
    sizes = torch.tensor([[512, 512], [256, 128]])
    out = keypoints_to_input(kp, sizes, (256, 256))
    # Sample 0: factor 0.5 on both axes; sample 1: y factor 1, x factor 2.
    assert out.tolist() == [[[-0.25, -0.25]], [[0.5, 0.0]]]
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        keypoints_to_input(kp[0], sizes, (256, 256))


@given(
    xy=st.tuples(
        st.floats(-10.0, 600.0, allow_nan=False), st.floats(-10.0, 600.0, allow_nan=False)
    ),
    original=st.tuples(st.integers(16, 1024), st.integers(16, 1024)),
    inp=st.tuples(st.integers(16, 512), st.integers(16, 512)),
)
@settings(max_examples=50, deadline=None)
def test_resize_maps_are_exact_inverses(
    xy: tuple[float, float], original: tuple[int, int], inp: tuple[int, int]
) -> None:
    kp = torch.tensor([[xy]], dtype=torch.float64)
    there = keypoints_to_input(kp, original, inp)
    back = keypoints_to_original(there, original, inp)
    torch.testing.assert_close(back, kp, rtol=0, atol=1e-9)
    # And the map is affine with the pixel-centre fixed point: (x + 0.5) scales.
    sx = inp[1] / original[1]
    assert math.isclose(there[0, 0, 0].item(), (xy[0] + 0.5) * sx - 0.5, abs_tol=1e-9)


# --------------------------------------------------------------------------- encode


def test_encode_golden_values_at_pixel_centre() -> None:
    codec = HeatmapCodec((256, 256), (64, 64), sigma=2.0)
    # x = 41.5 -> u = 42 / 4 - 0.5 = 10; y = 21.5 -> v = 5: an exact heatmap pixel centre.
    hm = codec.encode(torch.tensor([[[41.5, 21.5]]]))
    assert hm.shape == (1, 1, 64, 64)
    m = hm[0, 0]
    assert m[5, 10].item() == 1.0
    assert m.max().item() == 1.0
    e1 = math.exp(-1 / (2 * 2.0**2))  # one pixel away
    assert m[5, 11].item() == pytest.approx(e1, rel=1e-6)
    assert m[5, 9].item() == pytest.approx(e1, rel=1e-6)
    assert m[4, 10].item() == pytest.approx(e1, rel=1e-6)
    assert m[6, 11].item() == pytest.approx(math.exp(-2 / 8), rel=1e-6)  # diagonal
    assert m[5, 13].item() == pytest.approx(math.exp(-9 / 8), rel=1e-6)


def test_encode_golden_values_sub_pixel() -> None:
    codec = HeatmapCodec((256, 256), (64, 64), sigma=2.0)
    # x = 40 -> u = 40.5 / 4 - 0.5 = 9.625; y = 0 -> v = 0.5 / 4 - 0.5 = -0.375.
    m = codec.encode(torch.tensor([[40.0, 0.0]], dtype=torch.float64))[0]
    expected = math.exp(-(0.375**2 + 0.375**2) / 8)  # pixel (row 0, col 10)
    assert m[0, 10].item() == pytest.approx(expected, rel=1e-12)
    assert m[0, 9].item() == pytest.approx(math.exp(-(0.625**2 + 0.375**2) / 8), rel=1e-12)
    # The peak value is below 1 because the centre is off the grid.
    assert m.max().item() < 1.0


def test_encode_unbatched_and_dtypes() -> None:
    codec = HeatmapCodec((64, 64), (16, 16))
    kp = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    assert codec.encode(kp).shape == (2, 16, 16)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        assert codec.encode(kp.to(dtype)).dtype == dtype
    # Integer pixel coordinates are accepted and rendered in float32.
    assert codec.encode(kp.long()).dtype == torch.float32


def test_encode_nan_and_invisible_give_zero_maps() -> None:
    codec = HeatmapCodec((64, 64), (16, 16))
    kp = torch.tensor([[[10.0, 20.0], [math.nan, 5.0], [30.0, 40.0]]])
    visible = torch.tensor([[True, True, False]])
    hm = codec.encode(kp, visible)
    assert hm[0, 0].max().item() > 0.9
    assert torch.count_nonzero(hm[0, 1]) == 0
    assert torch.count_nonzero(hm[0, 2]) == 0
    assert not torch.isnan(hm).any()
    _, scores = codec.decode(hm)
    assert scores[0, 1:].tolist() == [0.0, 0.0]


def test_encode_batched_equals_per_sample() -> None:
    codec = HeatmapCodec((256, 192), (64, 48), sigma=1.5)
    kp = torch.rand(5, 3, 2, dtype=torch.float64) * torch.tensor([191.0, 255.0], dtype=torch.float64)
    visible = torch.rand(5, 3) > 0.3
    batched = codec.encode(kp, visible)
    for b in range(5):
        torch.testing.assert_close(batched[b], codec.encode(kp[b], visible[b]), rtol=0, atol=0)
    coords, scores = codec.decode(batched)
    for b in range(5):
        c1, s1 = codec.decode(batched[b : b + 1])
        torch.testing.assert_close(coords[b], c1[0], rtol=0, atol=0)
        torch.testing.assert_close(scores[b], s1[0], rtol=0, atol=0)


def test_encode_is_differentiable() -> None:
    kp = torch.tensor([[[5.3, 7.9], [2.2, 1.1]]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda k: render_gaussian_heatmaps(k, (8, 10), sigma=1.5), (kp,)
    )


def test_render_separable_matches_direct_formula() -> None:
    centres = torch.tensor([[3.3, 2.7], [0.0, 5.5]], dtype=torch.float64)
    hm = render_gaussian_heatmaps(centres, (7, 6), sigma=1.3)
    rows, cols = torch.meshgrid(
        torch.arange(7, dtype=torch.float64), torch.arange(6, dtype=torch.float64), indexing="ij"
    )
    for k in range(2):
        u, v = centres[k]
        direct = torch.exp(-((cols - u) ** 2 + (rows - v) ** 2) / (2 * 1.3**2))
        torch.testing.assert_close(hm[k], direct, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------- decode


def test_decode_argmax_and_quarter_golden() -> None:
    codec = HeatmapCodec((256, 256), (64, 64))
    hm = torch.zeros(1, 1, 64, 64)
    hm[0, 0, 5, 10] = 1.0
    hm[0, 0, 5, 11] = 0.6  # right neighbour higher than left (0)
    hm[0, 0, 4, 10] = 0.3  # upper neighbour higher than lower (0)
    kp, scores = codec.decode(hm, refine="none")
    # u = 10 -> x = 10.5 * 4 - 0.5 = 41.5
    assert kp.tolist() == [[[41.5, 21.5]]]
    assert scores.tolist() == [[1.0]]
    kp, _ = codec.decode(hm, refine="quarter")
    # u = 10.25 -> x = 42.5; v = 4.75 -> y = 20.5
    assert kp.tolist() == [[[42.5, 20.5]]]


def test_argmax_is_first_row_major_maximum_with_ties() -> None:
    g = torch.Generator().manual_seed(3)
    maps = torch.randint(0, 4, (200, 7, 9), generator=g).float()  # many ties
    coords, scores = decode_heatmaps(maps, refine="none")
    flat = maps.reshape(200, -1).argmax(1)  # torch returns the first maximal index
    torch.testing.assert_close(coords[:, 0], (flat % 9).float(), rtol=0, atol=0)
    torch.testing.assert_close(coords[:, 1], (flat // 9).float(), rtol=0, atol=0)
    torch.testing.assert_close(scores, maps.amax(dim=(1, 2)), rtol=0, atol=0)


def test_quarter_leaves_border_axis_unrefined() -> None:
    hm = torch.zeros(1, 6, 6)
    hm[0, 0, 3] = 1.0
    hm[0, 0, 4] = 0.5
    hm[0, 1, 3] = 0.5
    coords, _ = decode_heatmaps(hm, refine="quarter")
    # x has both neighbours: +0.25; y sits on the top border: unchanged.
    assert coords.tolist() == [[3.25, 0.0]]


def test_dark_exact_on_rotated_anisotropic_gaussian() -> None:
    # log-quadratic with a cross term: DARK uses the full 2x2 Hessian, so it is exact.
    rows, cols = torch.meshgrid(
        torch.arange(20, dtype=torch.float64), torch.arange(20, dtype=torch.float64), indexing="ij"
    )
    u0, v0 = 9.37, 11.81
    a, b, c = 0.20, 0.12, 0.15  # positive-definite quadratic form [[a, b], [b, c]]
    dx, dy = cols - u0, rows - v0
    hm = torch.exp(-(a * dx**2 + 2 * b * dx * dy + c * dy**2))[None]
    coords, scores = decode_heatmaps(hm, refine="dark")
    torch.testing.assert_close(coords[0], torch.tensor([u0, v0], dtype=torch.float64), atol=1e-9, rtol=0)
    assert scores.item() == pytest.approx(hm.max().item())


def test_dark_falls_back_to_argmax_on_flat_map() -> None:
    hm = torch.full((2, 3, 8, 8), 0.5)  # Hessian zero: not negative definite
    coords, scores = decode_heatmaps(hm, refine="dark")
    assert coords.eq(0).all()
    assert scores.eq(0.5).all()
    zeros, _ = decode_heatmaps(torch.zeros(1, 8, 8), refine="dark")
    assert zeros.tolist() == [[0.0, 0.0]]


def test_dark_step_is_clamped_to_the_map() -> None:
    # Argmax on the left border; the inward-shifted stencil sees an almost linear log profile
    # whose Newton step would run far outside: it is clamped to the map edge u = -0.5.
    logs = torch.tensor([0.0, -0.1, -0.2 - 1e-6, -3.0, -4.0, -5.0], dtype=torch.float64)
    hm = torch.exp(logs)[None, None, :].expand(1, 5, 6).clone()
    hm = hm * torch.exp(-((torch.arange(5.0, dtype=torch.float64) - 2) ** 2))[None, :, None]
    coords, _ = decode_heatmaps(hm, refine="dark")
    assert coords[0, 0].item() == -0.5
    assert coords[0, 1].item() == pytest.approx(2.0)
    # Inside the map: a negative-definite but nearly singular Hessian (strong cross term) would
    # step ~25 px along the diagonal (x up, y down); the step is clamped to one pixel per axis.
    log_patch = torch.tensor(
        [[-1.98, -0.01, -1e-6], [-1.0, 0.0, -0.01], [-1e-6, -1.0, -1.98]], dtype=torch.float64
    )  # rows y = 1..3, cols x = 1..3 of a 5x5 map; argmax at (x=2, y=2)
    hm2 = torch.full((1, 5, 5), 1e-3, dtype=torch.float64)
    hm2[0, 1:4, 1:4] = torch.exp(log_patch)
    coords2, _ = decode_heatmaps(hm2, refine="dark")
    assert coords2.tolist() == [[3.0, 1.0]]


@pytest.mark.parametrize(("input_size", "heatmap_size"), GEOMETRIES)
@given(
    data=st.data(),
    sigma=st.floats(1.0, 3.0),
)
@settings(max_examples=30, deadline=None)
def test_round_trip_dark_anywhere(
    input_size: tuple[int, int], heatmap_size: tuple[int, int], data: st.DataObject, sigma: float
) -> None:
    H, W = input_size
    codec = HeatmapCodec(input_size, heatmap_size, sigma=sigma)
    x = data.draw(st.lists(st.floats(0.0, W - 1.0), min_size=4, max_size=4))
    y = data.draw(st.lists(st.floats(0.0, H - 1.0), min_size=4, max_size=4))
    # Pin two points to the image corners so borders are always exercised.
    x[:2] = [0.0, W - 1.0]
    y[:2] = [H - 1.0, 0.0]
    kp = torch.tensor([list(zip(x, y))], dtype=torch.float32)
    decoded, scores = codec.decode(codec.encode(kp), refine="dark")
    assert (decoded - kp).abs().max().item() <= 0.01
    assert ((scores > 0.5) & (scores <= 1.0)).all()


@pytest.mark.parametrize(("input_size", "heatmap_size"), GEOMETRIES)
def test_argmax_and_quarter_error_bounds(
    input_size: tuple[int, int], heatmap_size: tuple[int, int]
) -> None:
    codec = HeatmapCodec(input_size, heatmap_size)
    sy, sx = codec.stride
    H, W = input_size
    g = torch.Generator().manual_seed(1)
    kp = torch.rand(400, 2, 2, generator=g, dtype=torch.float64) * torch.tensor(
        [W - 1.0, H - 1.0], dtype=torch.float64
    )
    hm = codec.encode(kp)
    err_none = (codec.decode(hm, refine="none")[0] - kp).abs()
    assert (err_none[..., 0] <= sx / 2 + 1e-9).all()
    assert (err_none[..., 1] <= sy / 2 + 1e-9).all()
    quarter, _ = codec.decode(hm, refine="quarter")
    err_q = (quarter - kp).abs()
    assert (err_q[..., 0] <= sx / 2 + 1e-9).all()
    # Away from the border, the quarter step halves the worst case (to s/4 per axis).
    uv = codec.to_heatmap_coords(kp)
    inner = (uv[..., 0] > 0.5) & (uv[..., 0] < heatmap_size[1] - 1.5)
    assert (err_q[..., 0][inner] <= sx / 4 + 1e-9).all()
    # Quarter is better than argmax on average, DARK far better than both.
    dark, _ = codec.decode(hm, refine="dark")
    assert err_q.mean() < err_none.mean()
    assert (dark - kp).abs().max() < 1e-6


def test_decode_dtypes() -> None:
    codec = HeatmapCodec((64, 64), (16, 16))
    kp = torch.tensor([[[10.3, 20.7]]])
    for dtype in (torch.float32, torch.float64):
        out, scores = codec.decode(codec.encode(kp.to(dtype)))
        assert out.dtype == dtype and scores.dtype == dtype
        torch.testing.assert_close(out, kp.to(dtype), atol=1e-4, rtol=0)
    out, _ = codec.decode(codec.encode(kp).half())
    assert out.dtype == torch.float32  # half precision is decoded in float32
    assert (out - kp).abs().max() < 0.1


def test_blur_keeps_interior_gaussian_exact_and_helps_on_noise() -> None:
    codec = HeatmapCodec((256, 256), (64, 64))
    g = torch.Generator().manual_seed(2)
    kp = 40 + torch.rand(1, 300, 2, generator=g) * 176  # well inside the image
    hm = codec.encode(kp)
    # A Gaussian blurred with a Gaussian is a Gaussian with the same centre.
    blurred, _ = codec.decode(hm, refine="dark", blur_kernel=5)
    assert (blurred - kp).abs().max() < 0.01
    # Peaks at the very edge are decoded from the unsmoothed map: still exact.
    edge = torch.tensor([[[0.0, 0.0], [255.0, 3.0], [128.0, 255.0], [2.5, 100.0]]])
    out, _ = codec.decode(codec.encode(edge), refine="dark", blur_kernel=11)
    assert (out - edge).abs().max() < 0.01
    # Kernel 5 has a radius within the edge margin: exact at every distance from the edge.
    ys = torch.linspace(0.0, 40.0, 161)
    line = torch.stack([torch.full_like(ys, 100.3), ys], dim=-1)[None]
    out, _ = codec.decode(codec.encode(line), refine="dark", blur_kernel=5)
    assert (out - line).abs().max() < 0.01
    noisy = hm + 0.05 * torch.randn(hm.shape, generator=g)
    err_argmax = (codec.decode(noisy, refine="none")[0] - kp).norm(dim=-1).mean()
    err_dark = (codec.decode(noisy, refine="dark", blur_kernel=5)[0] - kp).norm(dim=-1).mean()
    assert err_dark < err_argmax


def test_decode_to_original_per_sample_sizes() -> None:
    codec = HeatmapCodec((256, 256), (64, 64))
    sizes = torch.tensor([[512, 512], [480, 640]])
    kp_orig = torch.tensor([[[300.0, 80.0], [100.0, 400.0]], [[600.0, 20.0], [5.0, 470.0]]])
    hm = codec.encode(keypoints_to_input(kp_orig, sizes, codec.input_size))
    back, scores = codec.decode_to_original(hm, sizes)
    torch.testing.assert_close(back, kp_orig, atol=0.02, rtol=0)
    assert scores.shape == (2, 2)


# --------------------------------------------------------------------------- validation


def test_shape_errors_name_expected_and_actual() -> None:
    codec = HeatmapCodec((256, 256), (64, 64))
    with pytest.raises(ValueError, match=r"\(B, K, 2\).*\(2, 3, 3\)"):
        codec.encode(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        codec.encode(torch.zeros(2, 3, 2), visible=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, K, 64, 64\).*\(2, 3, 32, 32\)"):
        codec.decode(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="refine must be one of"):
        codec.decode(torch.zeros(1, 1, 64, 64), refine="subpixel")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="blur_kernel"):
        codec.decode(torch.zeros(1, 1, 64, 64), blur_kernel=4)
    with pytest.raises(ValueError, match="at least 3x3"):
        decode_heatmaps(torch.zeros(1, 2, 5))


def test_codec_construction() -> None:
    codec = HeatmapCodec([128, 96], torch.tensor([32, 24]), sigma=3)  # type: ignore[arg-type]
    assert codec.input_size == (128, 96)
    assert codec.heatmap_size == (32, 24)
    assert codec.sigma == 3.0
    assert codec.stride == (4.0, 4.0)
    with pytest.raises(ValueError, match="input_size"):
        HeatmapCodec((256,), (64, 64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sigma"):
        HeatmapCodec((256, 256), (64, 64), sigma=0.0)
    with pytest.raises(ValueError, match="at least"):
        HeatmapCodec((256, 256), (2, 64))


@dataclass(frozen=True)
class _UserCodec(HeatmapCodec):
    """A codec of the user's own, built on the library's."""


def test_codec_is_stored_by_its_public_path() -> None:
    # Checkpoints and run folders (whose settings are compared on resume) hold this path: it is
    # the one users import, the same whichever file of the package defines the class.
    codec = HeatmapCodec((32, 32), (8, 8), sigma=1.5, refine="quarter")
    spec = codec_to_dict(codec)
    assert spec == {
        "class": "sslkeypoint.heatmaps.HeatmapCodec",
        "kwargs": {"input_size": [32, 32], "heatmap_size": [8, 8], "sigma": 1.5, "refine": "quarter",
                   "blur_kernel": None},
    }
    assert codec_from_dict(spec) == codec
    # The defining module's path names the same class.
    defined_at = {**spec, "class": f"{HeatmapCodec.__module__}.HeatmapCodec"}
    assert type(codec_from_dict(defined_at)) is HeatmapCodec
    # A subclass is stored by its own path and comes back as itself.
    mine = _UserCodec((32, 32), (8, 8))
    assert codec_to_dict(mine)["class"] == f"{_UserCodec.__module__}._UserCodec"
    assert type(codec_from_dict(codec_to_dict(mine))) is _UserCodec


def test_package_namespace() -> None:
    assert sslkeypoint.heatmaps.__all__ == sorted(set(sslkeypoint.heatmaps.__all__))
    assert sslkeypoint.heatmaps.__all__ == [
        "HeatmapCodec", "KeypointCodec", "check_codec_geometry", "codec_from_dict", "codec_to_dict",
        "decode_heatmaps", "keypoints_to_input", "keypoints_to_original", "render_gaussian_heatmaps",
        "rescale_keypoints",
    ]
    # The type aliases of the signatures are importable from the package too.
    from sslkeypoint.heatmaps import Refine, SizeLike

    assert Refine.__args__ == ("none", "quarter", "dark")  # type: ignore[attr-defined]
    assert torch.Tensor in SizeLike.__args__  # type: ignore[attr-defined]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_round_trip() -> None:
    codec = HeatmapCodec((256, 256), (64, 64))
    kp = torch.rand(4, 3, 2, device="cuda") * 255
    out, scores = codec.decode(codec.encode(kp))
    assert out.device.type == "cuda" and scores.device.type == "cuda"
    assert (out - kp).abs().max().item() < 0.01


def test_encode_with_and_without_autograd_agree_exactly() -> None:
    codec = HeatmapCodec((256, 256), (64, 64), sigma=2.0)
    kp = torch.rand(8, 3, 2, dtype=torch.float64) * 300 - 20  # some off the map
    kp[0, 1] = float("nan")
    plain = codec.encode(kp)
    tracked = codec.encode(kp.clone().requires_grad_(True))
    assert tracked.requires_grad
    assert torch.equal(plain, tracked.detach())


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("refine", ["none", "quarter", "dark"])
@pytest.mark.parametrize("blur_kernel", [None, 5])
def test_one_nan_pixel_away_from_the_peak_changes_nothing(refine, blur_kernel) -> None:
    hm = render_gaussian_heatmaps(torch.tensor([[[10.3, 7.6], [3.2, 12.8]]]), (16, 16), sigma=1.5)
    clean = decode_heatmaps(hm, refine=refine, blur_kernel=blur_kernel)
    hm[0, 0, 0, 15] = math.nan  # far corner of the first map
    hm[0, 1, 15, 15] = math.nan
    coords, scores = decode_heatmaps(hm, refine=refine, blur_kernel=blur_kernel)
    assert torch.equal(coords, clean[0]) and torch.equal(scores, clean[1])


def test_nan_next_to_the_peak_keeps_the_argmax_and_the_score() -> None:
    hm = render_gaussian_heatmaps(torch.tensor([[6.0, 9.0]]), (16, 16), sigma=1.0)
    hm[0, 9, 7] = math.nan  # right neighbour of the peak pixel (row 9, col 6)
    coords, scores = decode_heatmaps(hm, refine="none")
    assert coords.tolist() == [[6.0, 9.0]] and scores.tolist() == [1.0]
    # Quarter: the NaN neighbour counts as the lowest value, so the step goes left, away from it.
    assert decode_heatmaps(hm, refine="quarter")[0].tolist() == [[5.75, 9.0]]


def test_all_nan_map_decodes_to_nan_and_leaves_the_others_alone() -> None:
    hm = render_gaussian_heatmaps(torch.tensor([[[4.0, 5.0], [8.0, 2.0]]]), (12, 12), sigma=1.0)
    hm[0, 0] = math.nan
    for refine in ("none", "quarter", "dark"):
        coords, scores = decode_heatmaps(hm, refine=refine)
        assert torch.isnan(coords[0, 0]).all() and torch.isnan(scores[0, 0])
        assert coords[0, 1].tolist() == [8.0, 2.0] and scores[0, 1].item() == 1.0
    kp, score = HeatmapCodec((48, 48), (12, 12), sigma=1.0).decode(hm)
    assert torch.isnan(kp[0, 0]).all() and torch.isnan(score[0, 0])


def test_decode_refuses_complex_heatmaps() -> None:
    with pytest.raises(ValueError, match="heatmaps must be real"):
        decode_heatmaps(torch.zeros(1, 5, 5, dtype=torch.complex64))


@pytest.mark.parametrize(
    "size", [(64.5, 64.5), (64, 63.9), "64", 0, -4, (True, 64), (math.nan, 64), (math.inf, 64), (64,), (8, 8, 8)]
)
def test_codec_refuses_sizes_that_are_not_positive_whole_numbers(size) -> None:
    with pytest.raises(ValueError, match=r"heatmap_size must be"):
        HeatmapCodec((256, 256), size)
    with pytest.raises(ValueError, match=r"heatmap_size must be"):
        render_gaussian_heatmaps(torch.zeros(1, 2), size)


@pytest.mark.parametrize(
    "size", [64, 64.0, (64.0, 64), (np.int64(64), np.int64(64)), np.array([64, 64]), torch.tensor([64, 64])]
)
def test_codec_takes_whole_numbers_in_any_form(size) -> None:
    codec = HeatmapCodec(256, size)  # type: ignore[arg-type]
    assert codec.heatmap_size == (64, 64) and isinstance(codec.heatmap_size[0], int)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_encode_refuses_infinite_coordinates_and_says_where(value) -> None:
    codec = HeatmapCodec((32, 32), (8, 8))
    kp = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[5.0, value], [math.nan, 1.0]]])
    with pytest.raises(ValueError, match=r"got \[5.0, -?inf\] at index \(1, 0\) of a \(2, 2, 2\) tensor"):
        codec.encode(kp)
    with pytest.raises(ValueError, match="keypoints must be finite"):
        render_gaussian_heatmaps(kp[1], (8, 8))


def test_encode_refuses_complex_keypoints() -> None:
    with pytest.raises(ValueError, match=r"keypoints must be real \(x, y\) coordinates"):
        HeatmapCodec((32, 32), (8, 8)).encode(torch.ones(1, 1, 2, dtype=torch.complex64))

"""Tests for sslkeypoint.ssl.screening: similarity, frame and sequence rules, screening, plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from sslkeypoint.ssl.screening import (
    ScreeningResult,
    embed_images,
    frame_cut,
    plot_scores,
    reference_similarity,
    screen_sequences,
    select_frames,
    select_sequences,
)


def test_reference_similarity_golden() -> None:
    refs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    frames = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    scores, index = reference_similarity(frames, refs)
    torch.testing.assert_close(scores, torch.tensor([0.8, 0.0, 0.0, 1.0]))
    assert index.tolist()[0] == 1 and index.tolist()[3] == 1


@given(
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(2, 5),
    st.floats(0.1, 10.0),
    st.integers(0, 2**16),
)
def test_reference_similarity_is_brute_force_max_and_scale_free(n: int, r: int, d: int, scale: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    frames, refs = torch.randn(n, d, generator=g), torch.randn(r, d, generator=g)
    scores, index = reference_similarity(frames, refs)
    brute = torch.tensor(
        [max(float(torch.cosine_similarity(f, q, dim=0)) for q in refs) for f in frames]
    )
    torch.testing.assert_close(scores, brute, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.cosine_similarity(frames, refs[index], dim=1), scores, atol=1e-5, rtol=0)
    torch.testing.assert_close(reference_similarity(frames * scale, refs)[0], scores, atol=1e-5, rtol=0)
    assert bool((scores.abs() <= 1 + 1e-6).all())


def test_reference_similarity_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(2, 5\)"):
        reference_similarity(torch.zeros(3, 4), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="no reference"):
        reference_similarity(torch.zeros(3, 4), torch.zeros(0, 4))


def test_frame_rules() -> None:
    s = torch.tensor([0.2, 0.995, 0.5, 0.99, 0.7])
    assert select_frames(s, threshold=0.99).tolist() == [False, True, False, True, False]
    assert select_frames(s, top_fraction=0.4).tolist() == [False, True, False, True, False]
    assert select_frames(s, top_fraction=0.5).sum() == 3  # ceil(2.5) = 3 best frames
    mean, std = float(s.mean()), float(s.std())
    assert frame_cut(s, zscore=1.0) == pytest.approx(mean + std)
    assert select_frames(s, zscore=0.5).tolist() == (s >= mean + 0.5 * std).tolist()
    with pytest.raises(ValueError, match="exactly one"):
        select_frames(s, threshold=0.9, top_fraction=0.1)
    with pytest.raises(ValueError, match="top_fraction"):
        select_frames(s, top_fraction=0.0)


def test_sequence_rules() -> None:
    seqs = [torch.tensor([0.99, 0.99, 0.1, 0.1]), torch.tensor([0.99, 0.99, 0.99, 0.1]), torch.tensor([0.5])]
    assert select_sequences(seqs, 0.99, min_fraction=0.5).tolist() == [True, True, False]
    assert select_sequences(seqs, 0.99, min_fraction=0.75).tolist() == [False, True, False]
    # Median of an even count is the mean of the middle two: (0.1 + 0.99) / 2 < 0.99.
    assert select_sequences(seqs, 0.99, rule="median").tolist() == [False, True, False]
    with pytest.raises(ValueError, match="rule"):
        select_sequences(seqs, 0.9, rule="mean")  # type: ignore[arg-type]


def _write(img: np.ndarray, path: Path) -> Path:
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(path)
    return path


def test_screening_picks_the_noisy_copies_of_references(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    refs = [rng.random((16, 16)) for _ in range(3)]
    ref_files = [_write(r, tmp_path / f"ref{i}.png") for i, r in enumerate(refs)]
    sequences = []
    for s in range(4):
        folder = tmp_path / f"seq{s}"
        folder.mkdir()
        frames = []
        for t in range(5):
            good = s < 2 and t != 4  # sequences 0, 1: four noisy copies of a reference, one other
            img = refs[(s + t) % 3] + 0.02 * rng.standard_normal((16, 16)) if good else rng.random((16, 16))
            frames.append(_write(img, folder / f"f{t}.png"))
        sequences.append(frames)
    extractor = nn.Flatten()  # fixed: cosine of the centred pixels
    kw = {"size": 16, "in_chans": 1, "progress": False, "mean": (0.5,), "std": (0.25,), "batch_size": 4}
    result = screen_sequences(extractor, ref_files, sequences, threshold=0.9, min_fraction=0.6, **kw)
    assert result.selected == [0, 1]
    assert result.names == ["seq0", "seq1", "seq2", "seq3"]
    for s in range(4):
        expected = [s < 2 and t != 4 for t in range(5)]
        assert result.frame_masks[s].tolist() == expected
    assert result.frame_reference[0].tolist()[:4] == [0, 1, 2, 0]
    # A relative cut finds the same frames without knowing the score range.
    rel = screen_sequences(extractor, ref_files, sequences, top_fraction=8 / 20, **kw)
    assert rel.selected == [0, 1] and rel.threshold == pytest.approx(float(result.frame_scores[0][:4].min()), abs=0.1)
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["sequences"][0]["kept"] and summary["sequences"][0]["passing"] == 4
    out = plot_scores(result, tmp_path / "scores.png")
    with Image.open(out) as im:
        assert im.size[0] > 100 and im.size[1] > 100


def test_embed_images_with_an_encoder_and_inputs() -> None:
    from sslkeypoint.encoders import UNetEncoder

    enc = UNetEncoder(in_chans=1, widths=(4, 8), bottleneck_width=16)
    enc.train()
    x = torch.rand(5, 1, 20, 24)
    emb = embed_images(enc, x, batch_size=2, size=(16, 16), in_chans=1, progress=False)
    assert emb.shape == (5, 16) and enc.training  # eval during embedding, restored afterwards
    as_list = embed_images(enc, list(x), batch_size=3, size=(16, 16), in_chans=1, progress=False)
    torch.testing.assert_close(emb, as_list)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        embed_images(enc, torch.rand(1, 20, 24), in_chans=1, progress=False)
    with pytest.raises(ValueError, match=r"expected an image of shape \(3, H, W\)"):
        embed_images(nn.Flatten(), x, in_chans=3, progress=False)


def test_plot_scores_with_nearly_constant_scores(tmp_path) -> None:
    """An untrained extractor can give almost identical scores; the plot must still draw."""
    scores = [torch.full((5,), 0.9999999, dtype=torch.float32), torch.full((4,), 0.99999994)]
    result = ScreeningResult(
        frame_scores=scores,
        frame_reference=[torch.zeros(5, dtype=torch.long), torch.zeros(4, dtype=torch.long)],
        frame_masks=[s >= 0.5 for s in scores],
        sequence_mask=torch.tensor([True, True]),
        threshold=0.5,
        rule="fraction",
        min_fraction=0.5,
        names=["a", "b"],
    )
    out = plot_scores(result, tmp_path / "flat.png")
    with Image.open(out) as im:
        assert im.size[0] > 100 and im.size[1] > 100

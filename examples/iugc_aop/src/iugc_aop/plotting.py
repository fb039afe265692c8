"""Contact sheets of IUGC-format data: labelled frames with the AoP construction, and videos.

Drawing reads data only through :mod:`iugc_aop.formats` (the reader and, for synthetic data, the
truth file); it never imports the synthetic generator.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from iugc_aop.formats.dataset import IUGCDataset
from iugc_aop.formats.reader import read_iugc
from iugc_aop.formats.truth import load_truth
from iugc_aop.landmarks import LANDMARK_NAMES
from sslkeypoint.atomic import atomic_path
from sslkeypoint.data import open_image, read_image_size

__all__ = ["contact_sheet"]

_COLOURS = dict(zip(LANDMARK_NAMES, ("#ff4040", "#40a0ff", "#ffc800")))


def _palette() -> Image.Image:
    """48 gray levels plus the landmark colours."""
    colours = [(round(v), round(v), round(v)) for v in np.linspace(0, 255, 48)]
    colours += [(int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)) for c in _COLOURS.values()]
    flat = [v for c in colours for v in c]
    flat += flat[-3:] * (256 - len(colours))
    img = Image.new("P", (1, 1))
    img.putpalette(flat)
    return img


def _thumb(path: Path, size: int) -> np.ndarray:
    im = open_image(path)  # upright, as the labels were placed
    return np.asarray(im.convert("L").resize((size, size), Image.Resampling.BILINEAR))


def contact_sheet(
    dataset_or_dir: IUGCDataset | str | os.PathLike[str],
    out_png: str | os.PathLike[str],
    *,
    labelled: int = 12,
    sequences: int = 3,
    frames: int = 6,
    thumb: int = 160,
    seed: int = 0,
    truth: dict[str, Any] | None = None,
) -> Path:
    """Draw labelled samples (landmarks, ``PS1→PS2`` and ``PS1→FH1``, AoP) and a few videos.

    Labelled samples are taken from training and testing (half each when both exist). For
    synthetic data (a ``synthetic_truth.json`` next to ``Training/``, or ``truth``) each video
    row is titled with its kind and whether it is a good standard-plane sequence.

    Args:
        dataset_or_dir: A dataset from :func:`~iugc_aop.formats.read_iugc`, or its root folder.
        out_png: Where to write the PNG.
        labelled: Number of labelled samples.
        sequences: Number of videos (one row each).
        frames: Frames per video row, evenly spaced through the video; also the number of
            columns.
        thumb: Side of each thumbnail (px); landmarks are scaled to it.
        seed: Seed of the choice of samples.
        truth: The synthetic truth record (:func:`~iugc_aop.formats.load_truth`); read from the
            data set's root when ``None``.

    Returns:
        The path written.

    Raises:
        ValueError: If the data set has no labelled image and no video.

    Examples:
        >>> import tempfile
        >>> from iugc_aop.synth import SynthConfig, write_synthetic_iugc
        >>> root = Path(tempfile.mkdtemp())
        >>> config = SynthConfig(train=2, validation=0, testing=2, sequences=1, frames=2,
        ...                      references=0, test_duplicates=0)
        >>> _ = write_synthetic_iugc(root, config, progress=False)
        >>> contact_sheet(root, root / "sheet.png", labelled=4, frames=2).stat().st_size > 0
        True
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ds = (dataset_or_dir if isinstance(dataset_or_dir, IUGCDataset)
          else read_iugc(dataset_or_dir, check_images=False, progress=False))
    if truth is None:
        truth = load_truth(ds.root)
    rng = np.random.default_rng(seed)
    pools = [r for r in (ds.train, ds.testing, ds.validation) if r]
    picks: list[Any] = []
    if pools:
        per = [labelled // len(pools[:2])] * len(pools[:2])
        per[0] += labelled - sum(per)
        for pool, n in zip(pools[:2], per):
            idx = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
            picks.extend(pool[int(i)] for i in sorted(idx))
    seq_names = list(ds.sequences)
    if truth is not None and seq_names:
        # Show good and poor videos side by side when the truth is known.
        good = [n for n in seq_names if truth["sequences"].get(n, {}).get("good")]
        poor = [n for n in seq_names if n not in good]
        chosen = [n for pair in zip(good, poor) for n in pair] + good[len(poor):] + poor[len(good):]
        seq_names = chosen
    seq_names = seq_names[:sequences]

    cols = max(frames, 4)
    lab_rows = -(-len(picks) // cols) if picks else 0
    rows = lab_rows + len(seq_names)
    if rows == 0:
        raise ValueError(f"nothing to draw: no labelled images and no sequences under {ds.root}")
    scale = thumb / 100.0
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale * 1.08), dpi=100,
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, rec in enumerate(picks):
        ax = axes[k // cols, k % cols]
        h, w = read_image_size(rec.path)
        ax.imshow(_thumb(Path(rec.path), thumb), cmap="gray", vmin=0, vmax=255)
        kp = (np.asarray(rec.keypoints) + 0.5) * np.array([thumb / w, thumb / h]) - 0.5
        ps1, ps2, fh1 = kp
        ax.plot([ps1[0], ps2[0]], [ps1[1], ps2[1]], color="#ff4040", lw=0.8)
        ax.plot([ps1[0], fh1[0]], [ps1[1], fh1[1]], color="#ffc800", lw=0.8)
        for name, p in zip(LANDMARK_NAMES, kp):
            ax.plot(p[0], p[1], "o", ms=2.5, color=_COLOURS[name])
        aop = rec.meta.get("aop")
        label = f"{rec.meta['split']}/{rec.meta['filename']}"
        if aop is not None:
            label += f"  AoP {aop:.1f}°"
        ax.set_title(label, fontsize=6, pad=1.5)
    for r, name in enumerate(seq_names):
        paths = ds.sequences[name]
        idx = np.unique(np.linspace(0, len(paths) - 1, min(frames, len(paths))).round().astype(int))
        info = ""
        if truth is not None and name in truth["sequences"]:
            t = truth["sequences"][name]
            info = f" — {t['kind']}, {'good' if t['good'] else 'poor'}"
        for c, i in enumerate(idx):
            ax = axes[lab_rows + r, c]
            ax.imshow(_thumb(paths[int(i)], thumb), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{name}{info}  frame {i + 1}" if c == 0 else f"frame {i + 1}",
                         fontsize=6, pad=1.5, loc="left" if c == 0 else "center")
    fig.subplots_adjust(left=0.005, right=0.995, top=0.97, bottom=0.005, wspace=0.02, hspace=0.12)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    # Gray images with a few coloured marks: a palette keeps the file small.
    with Image.open(buf) as im:
        pal = im.convert("RGB").quantize(palette=_palette(), dither=Image.Dither.NONE)
    with atomic_path(out) as tmp:
        pal.save(tmp, format="PNG", optimize=True)
    return out

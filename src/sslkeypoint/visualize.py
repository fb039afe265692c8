"""Visual checks: landmark overlays with the Angle of Progression, and target-heatmap grids.

Two pictures catch most silent mistakes before any training time is spent:

* :func:`render_keypoint_grid` draws a grid of training images with their landmarks and the
  Gaussian targets the network will be asked to produce. Swapped ``(x, y)``, landmarks scaled to
  the wrong image size or a wrong landmark order are obvious at a glance.
* :func:`draw_predictions` draws predicted (and optionally ground-truth) landmarks on one image,
  with the construction of named measures (:mod:`sslkeypoint.measures`: the arms and value of an
  angle such as the AoP, the span of a distance).

:func:`draw_predictions` needs only Pillow. :func:`render_keypoint_grid` uses matplotlib (the
``viz`` extra, ``pip install sslkeypoint[viz]``) with its non-interactive ``Agg`` backend.

Coordinates follow the library convention: ``(x, y)`` pixels with integer values at pixel centres.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from sslkeypoint.atomic import atomic_path
from sslkeypoint.data.image_files import open_image
from sslkeypoint.measures import Measure, validate_measures

if TYPE_CHECKING:  # pragma: no cover
    from sslkeypoint.heatmaps import HeatmapCodec

__all__ = ["draw_predictions", "render_keypoint_grid", "to_pil_image"]

#: Colours for successive landmarks (RGB), cycled when there are more landmarks.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 64, 64),
    (64, 160, 255),
    (255, 200, 0),
    (200, 80, 255),
    (0, 220, 160),
    (255, 128, 0),
    (160, 255, 64),
    (255, 96, 200),
)
_GT_COLOUR = (0, 230, 0)


def to_pil_image(image: Any) -> Image.Image:
    """Convert an image of any supported kind to an RGB :class:`PIL.Image.Image`.

    Args:
        image: A path (decoded by content, upright as :func:`~sslkeypoint.data.read_image` reads
            it), a PIL image, a numpy array ``(H, W)`` or ``(H, W, C)`` (``uint8`` in
            ``[0, 255]`` or float in ``[0, 1]``), or a tensor
            ``(C, H, W)`` / ``(H, W)`` (float in ``[0, 1]`` or ``uint8``).

    Returns:
        An RGB image of the same size.

    Raises:
        ValueError: If the array or tensor has an unsupported shape.

    Examples:
        >>> import torch
        >>> to_pil_image(torch.zeros(1, 4, 6)).size
        (6, 4)
    """
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, Path)):
        return open_image(image).convert("RGB")  # upright, as read_image reads files
    if isinstance(image, Tensor):
        t = image.detach().cpu()
        if t.ndim == 3:
            if t.shape[0] not in (1, 3, 4):
                raise ValueError(f"image tensor must be (C, H, W) with C in (1, 3, 4); got {tuple(t.shape)}")
            t = t.permute(1, 2, 0)
        elif t.ndim != 2:
            raise ValueError(f"image tensor must be (C, H, W) or (H, W); got {tuple(t.shape)}")
        arr = t.numpy()
    else:
        arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)):
        raise ValueError(f"image array must be (H, W) or (H, W, C) with C in (1, 3, 4); got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = (np.clip(np.nan_to_num(arr.astype(np.float64)), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    return Image.fromarray(arr).convert("RGB")


def _as_points(keypoints: Any, name: str) -> np.ndarray:
    arr = np.asarray(keypoints.detach().cpu() if isinstance(keypoints, Tensor) else keypoints, dtype=np.float64)
    if arr.ndim == 1 and arr.size % 2 == 0:
        arr = arr.reshape(-1, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name} must have shape (K, 2) (x, y) pixels; got {arr.shape}")
    return arr


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _unit_text(value: float, unit: str) -> str:
    return f"{value:.1f}°" if unit == "deg" else f"{value:.1f} {unit}"


def draw_predictions(
    image: Any,
    keypoints: Any,
    gt: Any | None = None,
    names: Sequence[str] | None = None,
    measures: Mapping[str, Measure] | None = None,
    *,
    radius: float | None = None,
) -> Image.Image:
    """Draw predicted landmarks (and ground truth) on an image, with the construction of measures.

    Predicted landmarks are filled discs in per-landmark colours with their names; ground-truth
    landmarks are green rings joined to the matching prediction by a thin line (the error). For
    every measure its segments are drawn from the predictions (the arms ``PS1→PS2`` and
    ``PS1→FH1`` of the AoP, the span of a distance) and its value is written next to its first
    landmark (with the ground-truth value when ``gt`` is given). Missing (NaN) landmarks are
    skipped.

    Args:
        image: The image in the same pixel frame as the landmarks (see :func:`to_pil_image`).
        keypoints: Predicted ``(K, 2)`` ``(x, y)`` pixels (tensor, array or flat list of ``2K``).
        gt: Optional ground-truth ``(K, 2)`` pixels.
        names: Optional ``K`` landmark names to label the points with.
        measures: Optional name → :class:`~sslkeypoint.measures.Measure` to draw, e.g.
            ``{"AoP": AngleMeasure(0, 1, 2)}``.
        radius: Marker radius in pixels; by default 1 % of the image's longer side (at least 2).

    Returns:
        A new RGB image; the input is not modified.

    Raises:
        ValueError: On shape mismatches between ``keypoints``, ``gt`` and ``names``, or a measure
            that uses a landmark that does not exist.

    Examples:
        >>> import torch
        >>> from sslkeypoint.measures import AngleMeasure
        >>> img = draw_predictions(torch.zeros(1, 64, 64), [[40.0, 10.0], [10.0, 10.0], [40.0, 50.0]],
        ...                        names=["PS1", "PS2", "FH1"], measures={"AoP": AngleMeasure(0, 1, 2)})
        >>> img.size, img.getpixel((40, 10)) != (0, 0, 0)
        ((64, 64), True)
    """
    canvas = to_pil_image(image).copy()
    pred = _as_points(keypoints, "keypoints")
    k = pred.shape[0]
    truth = _as_points(gt, "gt") if gt is not None else None
    if truth is not None and truth.shape != pred.shape:
        raise ValueError(f"gt must have the same shape as keypoints {pred.shape}; got {truth.shape}")
    if names is not None and len(names) != k:
        raise ValueError(f"names must have {k} entries (one per landmark); got {len(names)}")
    checked = validate_measures(measures, num_keypoints=k)
    w, h = canvas.size
    r = float(radius) if radius is not None else max(2.0, 0.01 * max(w, h))
    width = max(1, round(r / 3))
    font = _font(max(10, round(3 * r)))
    draw = ImageDraw.Draw(canvas)

    def ok(p: np.ndarray) -> bool:
        return bool(np.isfinite(p).all())

    for line, (name, measure) in enumerate(checked.items()):
        for i, j in measure.segments:
            if ok(pred[i]) and ok(pred[j]):
                draw.line([tuple(pred[i]), tuple(pred[j])], fill=(255, 255, 255), width=width)
        value = float(measure(torch.from_numpy(pred)))
        text = f"{name} {_unit_text(value, measure.unit)}" if math.isfinite(value) else f"{name} n/a"
        if truth is not None:
            true_value = float(measure(torch.from_numpy(truth)))
            if math.isfinite(true_value):
                text += f" (gt {_unit_text(true_value, measure.unit)})"
        anchor = pred[measure.landmarks[0]]
        anchor = anchor if ok(anchor) else np.array([r, r])
        y = float(anchor[1]) - 4 * r + line * 3.5 * r
        draw.text((float(anchor[0]) + 2 * r, y), text, fill=(255, 255, 255), font=font)
    if truth is not None:
        for p, q in zip(truth, pred):
            if not ok(p):
                continue
            if ok(q):
                draw.line([tuple(p), tuple(q)], fill=_GT_COLOUR, width=1)
            draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], outline=_GT_COLOUR, width=width)
    for i, p in enumerate(pred):
        if not ok(p):
            continue
        colour = PALETTE[i % len(PALETTE)]
        draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=colour)
        if names is not None:
            draw.text((float(p[0]) + 1.5 * r, float(p[1]) + 0.5 * r), str(names[i]), fill=colour, font=font)
    return canvas


def _import_pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "render_keypoint_grid needs matplotlib: install the 'viz' extra "
            "(pip install 'sslkeypoint[viz]') or matplotlib itself"
        ) from err
    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    return plt


def _collect_samples(source: Any, n: int) -> list[dict[str, Any]]:
    """Up to ``n`` valid samples (dicts with image, keypoints, visible) from a dataset or batch."""
    if isinstance(source, Mapping):
        images = source["image"]
        count = min(n, int(images.shape[0]))
        return [
            {
                "image": images[i],
                "keypoints": source["keypoints"][i],
                "visible": source["visible"][i] if "visible" in source else None,
                "path": source["path"][i] if "path" in source else None,
            }
            for i in range(count)
        ]
    samples: list[dict[str, Any]] = []
    for i in range(len(source)):
        if len(samples) >= n:
            break
        item = source[i]
        if isinstance(item, Mapping) and "image" in item and "keypoints" in item:
            samples.append(dict(item))
    return samples


def render_keypoint_grid(
    source: Any,
    codec: HeatmapCodec,
    out_png: str | Path,
    n: int = 16,
    keypoint_names: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    panel_inches: float = 3.0,
    dpi: int = 100,
) -> Path:
    """Save a grid of network-input images with their landmarks and target heatmaps overlaid.

    For each sample the image (as the network sees it, after resizing) is shown in grey, the
    maximum over landmarks of the Gaussian targets that :meth:`HeatmapCodec.encode` builds is
    overlaid in colour, and every visible landmark is marked (invisible ones are not drawn).
    The heatmap is drawn over the same pixel extent as the image, so a target peak must sit
    exactly under its marker: a visible offset means a coordinate mistake (``(x, y)`` swapped,
    labels in another image size, a wrong stride). Invalid dataset items (see
    :class:`~sslkeypoint.data.KeypointDataset`) are skipped.

    Args:
        source: A keypoint dataset (items are dicts with ``image (C, H, W)``, ``keypoints
            (K, 2)`` in input pixels and ``visible (K,)``) or a collated batch dict of the same
            keys with a leading batch dimension.
        codec: The heatmap codec used for training; its ``input_size`` must match the images.
        out_png: Output PNG file (parent folders are created).
        n: Number of samples to draw (fewer if the source has fewer valid ones).
        keypoint_names: Optional names for the legend.
        ncols: Panels per row.
        panel_inches: Size of one panel in inches.
        dpi: Output resolution.

    Returns:
        The path of the written PNG.

    Raises:
        ImportError: If matplotlib is not installed.
        ValueError: If there is nothing to draw or the image size differs from ``codec.input_size``.

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> from sslkeypoint.heatmaps import HeatmapCodec
        >>> codec = HeatmapCodec(input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0)
        >>> batch = {"image": torch.rand(2, 1, 32, 32), "keypoints": torch.tensor([[[8.0, 20.0]]] * 2),
        ...          "visible": torch.ones(2, 1, dtype=torch.bool)}
        >>> out = render_keypoint_grid(batch, codec, Path(tempfile.mkdtemp()) / "grid.png")
        >>> out.suffix
        '.png'
    """
    plt = _import_pyplot()
    samples = _collect_samples(source, n)
    if not samples:
        raise ValueError("render_keypoint_grid: the source has no valid labelled samples to draw")
    in_h, in_w = (int(s) for s in codec.input_size)
    rows = math.ceil(len(samples) / ncols)
    cols = min(ncols, len(samples))
    fig, axes = plt.subplots(rows, cols, figsize=(panel_inches * cols, panel_inches * rows), squeeze=False)
    try:
        for ax in axes.flat:
            ax.axis("off")
        for ax, sample in zip(axes.flat, samples):
            image = torch.as_tensor(sample["image"]).detach().float().cpu()
            if image.ndim != 3 or tuple(image.shape[-2:]) != (in_h, in_w):
                raise ValueError(
                    f"images must be (C, {in_h}, {in_w}) to match codec.input_size; got {tuple(image.shape)}"
                )
            kp = torch.as_tensor(sample["keypoints"]).detach().float().cpu()
            vis = sample.get("visible")
            vis_t = (
                torch.as_tensor(vis).detach().bool().cpu()
                if vis is not None
                else torch.isfinite(kp).all(-1)
            )
            heat = codec.encode(kp[None], vis_t[None])[0].amax(0).numpy() if kp.shape[0] else None
            extent = (-0.5, in_w - 0.5, in_h - 0.5, -0.5)
            if image.shape[0] == 1:
                ax.imshow(image[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0, extent=extent)
            else:
                ax.imshow(image[:3].permute(1, 2, 0).clamp(0, 1).numpy(), extent=extent)
            if heat is not None:
                ax.imshow(heat, cmap="jet", alpha=0.4 * (heat > 0.02), vmin=0.0, vmax=1.0, extent=extent)
            for i in range(kp.shape[0]):
                if not bool(vis_t[i]):
                    continue
                colour = tuple(c / 255 for c in PALETTE[i % len(PALETTE)])
                label = keypoint_names[i] if keypoint_names is not None and i < len(keypoint_names) else str(i)
                ax.plot(float(kp[i, 0]), float(kp[i, 1]), marker="+", ms=8, mew=1.5, color=colour, label=label)
            ax.set_xlim(-0.5, in_w - 0.5)
            ax.set_ylim(in_h - 0.5, -0.5)
            path = sample.get("path")
            if path:
                ax.set_title(Path(str(path)).name, fontsize=7)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 8), fontsize=8)
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        out = Path(out_png)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=dpi)
    finally:
        plt.close(fig)
    return out

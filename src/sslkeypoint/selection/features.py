"""Image features for choosing which images to label: an encoder's, or thumbnails when there is none.

Coverage needs a notion of "these two frames look alike". With a pre-trained encoder
(:func:`~sslkeypoint.encoders.load_pretrained_encoder`, or a fine-tuned network's encoder) an image
is its deepest feature map average-pooled onto a 2×2 grid — what it shows and roughly where;
without one, its thumbnail (the image shrunk to ``thumbnail × thumbnail`` grayscale pixels,
standardised). Both are L2-normalised, so distances compare shapes, not brightness.
"""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from sslkeypoint.data import read_image, resize_image

__all__ = ["encoder_features", "load_feature_encoder", "thumbnail_features"]

ImagePath = str | PathLike[str]


def thumbnail_features(images: Sequence[ImagePath], thumbnail: int = 24, progress: bool = False) -> Tensor:
    """``(N, thumbnail²)`` standardised, L2-normalised grayscale thumbnails.

    Args:
        images: Image files (decoded by content).
        thumbnail: Side of the thumbnail in px.
        progress: Show a progress bar.

    Examples:
        >>> import tempfile, numpy as np
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> folder = Path(tempfile.mkdtemp())
        >>> for i in range(2):
        ...     Image.fromarray(np.full((40, 30), 60 * (i + 1), np.uint8)).save(folder / f"{i}.png")
        >>> thumbnail_features([folder / "0.png", folder / "1.png"], thumbnail=8).shape
        torch.Size([2, 64])
    """
    if thumbnail < 2:
        raise ValueError(f"thumbnail must be >= 2 px; got {thumbnail}")
    rows = []
    for path in tqdm(images, desc="thumbnails", disable=not progress):
        small = resize_image(read_image(path, channels=1), (thumbnail, thumbnail)).flatten()
        small = (small - small.mean()) / small.std().clamp_min(1e-6)
        rows.append(small)
    if not rows:
        raise ValueError("no images to describe")
    return F.normalize(torch.stack(rows).float(), dim=1)


@torch.no_grad()
def encoder_features(encoder: nn.Module, images: Sequence[ImagePath], size: tuple[int, int], *, grid: int = 2,
                     batch_size: int = 32, progress: bool = False) -> Tensor:
    """``(N, C · grid²)`` L2-normalised features: the encoder's deepest map pooled onto a ``grid × grid`` grid.

    Args:
        encoder: An sslkeypoint encoder (``forward(x) -> list of maps``, attribute ``in_chans``).
        images: Image files (decoded by content), resized to ``size``.
        size: Network input ``(H, W)`` in px.
        grid: Side of the pooling grid (1: global average pooling).
        batch_size: Images per forward pass.
        progress: Show a progress bar.

    Examples:
        >>> import tempfile, numpy as np
        >>> from pathlib import Path
        >>> from PIL import Image
        >>> from sslkeypoint.encoders import UNetEncoder
        >>> f = Path(tempfile.mkdtemp()) / "a.png"
        >>> Image.fromarray(np.zeros((20, 20), np.uint8)).save(f)
        >>> encoder_features(UNetEncoder(in_chans=1, widths=(4, 8), bottleneck_width=8), [f], (16, 16)).shape
        torch.Size([1, 32])
    """
    chans = int(getattr(encoder, "in_chans", 1))
    device = next(iter(encoder.parameters())).device
    mode = encoder.training
    encoder.eval()
    out = []
    try:
        for start in tqdm(range(0, len(images), batch_size), desc="features", disable=not progress):
            batch = torch.stack([resize_image(read_image(Path(p), channels=chans), size)
                                 for p in images[start:start + batch_size]]).to(device)
            deepest = encoder(batch)[-1]
            out.append(F.adaptive_avg_pool2d(deepest, grid).flatten(1).float().cpu())
    finally:
        encoder.train(mode)
    if not out:
        raise ValueError("no images to describe")
    return F.normalize(torch.cat(out), dim=1)


def load_feature_encoder(path: ImagePath) -> tuple[nn.Module, tuple[int, int]]:
    """The encoder in a pre-training weight file or a fine-tuning checkpoint, and its input size.

    Args:
        path: ``encoder.safetensors`` / ``unet.safetensors`` of a pre-training run (input size:
            the run's ``config.json`` beside it, else 256 × 256), or a fine-tuning checkpoint or
            predictor folder (its codec's input size).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        sslkeypoint.weights.WeightFileError: If it holds neither.
    """
    import json

    from sslkeypoint.encoders import load_pretrained_encoder
    from sslkeypoint.inference import KeypointPredictor

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"encoder file not found: {p}")
    if p.suffix == ".safetensors" and p.name != "model.safetensors":
        encoder = load_pretrained_encoder(p)
        config = p.parent / "config.json"
        size = (256, 256)
        if config.is_file():
            image_size = json.loads(config.read_text()).get("image_size", size)
            size = (int(image_size[0]), int(image_size[1])) if isinstance(image_size, list) else (int(image_size),) * 2
        return encoder, size
    predictor = KeypointPredictor.from_checkpoint(p)
    return getattr(predictor.model, "encoder", predictor.model), predictor.input_size

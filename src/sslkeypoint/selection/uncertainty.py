"""How unsure a fine-tuned model is about an image: where its predictions disagree across views.

The image is predicted as it is and in keypoint-aware augmented views (no mirroring); every view's
landmarks are mapped back (:func:`~sslkeypoint.ssl.predict_pseudo_labels`), and the disagreement
is their root mean squared distance to their mean, averaged over the landmarks, as a share of the
image's larger side. A model that has learnt an image predicts the same landmarks however it is
turned or shifted; where it has not, the views scatter — the images worth labelling next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from sslkeypoint.augment import KeypointAugmentation
from sslkeypoint.data import read_image, resize_image
from sslkeypoint.methods import VIEW_AUGMENT
from sslkeypoint.ssl import predict_pseudo_labels

__all__ = ["prediction_disagreement"]


def prediction_disagreement(
    predictor: Any,
    images: Sequence[str | PathLike[str]],
    *,
    views: int = 8,
    augment: Mapping[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> Tensor:
    """``(N,)`` disagreement of a predictor's landmarks over augmented views (share of the image size).

    Args:
        predictor: A :class:`~sslkeypoint.inference.KeypointPredictor`.
        images: Image files (decoded by content).
        views: Views per image (at least 2).
        augment: Keypoint augmentation arguments of the views (default
            :data:`~sslkeypoint.methods.VIEW_AUGMENT`; no mirroring).
        seed: Seed of the views.
        batch_size: Images per forward pass.
        progress: Show a progress bar.

    Raises:
        ValueError: With fewer than 2 views.
    """
    if views < 2:
        raise ValueError(f"disagreement needs at least 2 views; got {views}")
    augmentation = KeypointAugmentation(**dict(augment if augment is not None else VIEW_AUGMENT))
    network, codec = predictor.model, predictor.codec
    device = next(network.parameters()).device
    size = predictor.input_size
    out = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in tqdm(range(0, len(images), batch_size), desc="disagreement", disable=not progress):
            originals = [read_image(Path(p), channels=predictor.in_chans) for p in images[start:start + batch_size]]
            batch = torch.stack([resize_image(image, size) for image in originals]).to(device)
            labels = predict_pseudo_labels(network, codec, batch, augmentation, views)
            hw = torch.tensor([list(image.shape[-2:]) for image in originals], dtype=torch.float64)
            # Input px to shares of the image: the input's larger side is the image's larger side.
            scale = (hw / torch.tensor(size, dtype=torch.float64)).amax(dim=1) / hw.amax(dim=1)
            out.append(labels.spread.double().cpu().nanmean(dim=1) * scale)
    if not out:
        raise ValueError("no images to predict")
    return torch.cat(out)

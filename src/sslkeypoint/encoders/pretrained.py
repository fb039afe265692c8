"""The encoder of a pre-training run, rebuilt from the weight file alone.

:func:`~sslkeypoint.recipes.run_pretraining` writes ``encoder.safetensors`` (and, for a method that
trains the decoder too, ``unet.safetensors``) with the encoder's name, keyword arguments and input
channels in the file's metadata; :func:`load_pretrained_encoder` builds that encoder and loads the
weights, e.g. to embed images for choosing which ones to label (:mod:`sslkeypoint.selection`).
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path

from torch import nn

from sslkeypoint.encoders.registry import create_encoder
from sslkeypoint.weights import WeightFileError, load_state_dict_file, weight_file_metadata

__all__ = ["load_pretrained_encoder"]


def load_pretrained_encoder(path: str | PathLike[str]) -> nn.Module:
    """The encoder a pre-training run saved, with its weights (eval mode).

    Args:
        path: ``encoder.safetensors`` or ``unet.safetensors`` of a pre-training run folder.

    Returns:
        The encoder (an sslkeypoint encoder: ``forward(x) -> list of maps``).

    Raises:
        FileNotFoundError: If the file does not exist.
        WeightFileError: If the file is no pre-training weight file of sslkeypoint (no ``encoder``
            in its metadata), or its weights do not fit the encoder it describes.

    Examples:
        >>> import tempfile, json
        >>> from pathlib import Path
        >>> from sslkeypoint.encoders import UNetEncoder
        >>> from sslkeypoint.weights import save_state_dict
        >>> kw = {"widths": [4, 8], "bottleneck_width": 8}
        >>> f = save_state_dict(UNetEncoder(in_chans=1, **kw), Path(tempfile.mkdtemp()) / "encoder.safetensors",
        ...                     metadata={"encoder": "unet", "encoder_kwargs": json.dumps(kw), "in_chans": "1"})
        >>> type(load_pretrained_encoder(f)).__name__
        'UNetEncoder'
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"pre-trained weights not found: {p}")
    meta = weight_file_metadata(p)
    if "encoder" not in meta:
        raise WeightFileError(
            p, "its metadata does not say which encoder it holds: give the encoder.safetensors (or "
            "unet.safetensors) of an sslkeypoint pre-training run, or a fine-tuning checkpoint"
        )
    kwargs = json.loads(meta.get("encoder_kwargs") or "{}")
    encoder = create_encoder(meta["encoder"], in_chans=int(meta.get("in_chans", 1)), **kwargs)
    weights = load_state_dict_file(p)
    if any(k.startswith("encoder.") for k in weights):  # a unet.safetensors: encoder.* and decoder.*
        weights = {k[len("encoder."):]: v for k, v in weights.items() if k.startswith("encoder.")}
    try:
        encoder.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise WeightFileError(p, f"the weights do not fit the {meta['encoder']} encoder it names: {exc}") from exc
    return encoder.eval()

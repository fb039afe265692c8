"""What a predictor is stored as, and what a file that is not one holds instead.

:func:`predictor_spec` is the plain description (model, codec, landmark names, measures) that
fine-tuning checkpoints and ``predictor.json`` carry; :func:`spec_parts` rebuilds its codec and
measures. :func:`checkpoint_contents` and :func:`not_a_predictor_folder` word the errors of
:meth:`~sslkeypoint.inference.KeypointPredictor.from_checkpoint` for files that hold no fine-tuned
model. The public names are re-exported by :mod:`sslkeypoint.inference`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from sslkeypoint.heatmaps import HeatmapCodec, KeypointCodec, codec_from_dict, codec_to_dict
from sslkeypoint.measures import AngleMeasure, Measure, measures_from_dict, measures_to_dict

__all__ = ["SPEC_KEY", "SPEC_VERSION", "checkpoint_contents", "not_a_predictor_folder", "predictor_spec", "spec_parts"]

#: Format version of the ``sslkeypoint`` entry in checkpoints and of ``predictor.json``.
SPEC_VERSION = 2
#: Key of that entry in fine-tuning checkpoints.
SPEC_KEY = "sslkeypoint"


def predictor_spec(
    model_spec: Mapping[str, Any],
    codec: KeypointCodec,
    keypoint_names: Sequence[str] | None = None,
    measures: Mapping[str, Measure] | None = None,
) -> dict[str, Any]:
    """The plain description a predictor is rebuilt from (no weights): model, codec, names, measures.

    Args:
        model_spec: :func:`~sslkeypoint.models.build_heatmap_model` description.
        codec: The codec the network was trained with.
        keypoint_names: Optional landmark names.
        measures: Optional named measures.

    Returns:
        A JSON-ready dict (also safe for ``torch.load(weights_only=True)``).

    Examples:
        >>> spec = predictor_spec({"encoder": "unet", "in_chans": 1, "num_keypoints": 2},
        ...                       HeatmapCodec((32, 32), (8, 8)))
        >>> spec["version"], spec["codec"]["class"]
        (2, 'sslkeypoint.heatmaps.HeatmapCodec')
    """
    return {
        "version": SPEC_VERSION,
        "model": dict(model_spec),
        "codec": codec_to_dict(codec),
        "keypoint_names": list(keypoint_names) if keypoint_names is not None else None,
        "measures": measures_to_dict(measures or {}),
    }


def spec_parts(spec: Mapping[str, Any]) -> tuple[KeypointCodec, dict[str, Measure]]:
    """The codec and measures of a spec (version 1 specs: codec sizes, ``refine``, ``aop_indices``)."""
    version = int(spec.get("version", 1))
    if version >= 2:
        return codec_from_dict(spec["codec"]), measures_from_dict(spec.get("measures"))
    c = spec["codec"]
    codec = HeatmapCodec(tuple(c["input_size"]), tuple(c["heatmap_size"]), float(c["sigma"]), spec.get("refine", "dark"))
    aop = spec.get("aop_indices")
    return codec, ({"aop": AngleMeasure(*aop)} if aop else {})


_INIT_HINT = (
    "To start fine-tuning from its weights, pass it as the encoder initialisation: "
    "FinetuneConfig(init_encoder='{path}')"
)


def _count(n: int) -> str:
    return f"{n} tensor" if n == 1 else f"{n} tensors"


def checkpoint_contents(path: Path, ckpt: Any) -> str:
    """What a checkpoint that holds no fine-tuned sslkeypoint model holds instead (for an error)."""
    if not isinstance(ckpt, Mapping):
        return (
            f"holds a {type(ckpt).__name__}, not a checkpoint: it was not written by sslkeypoint "
            "fine-tuning (a .ckpt file from run_finetuning, or a folder from KeypointPredictor.save)"
        )
    entry = ckpt.get(SPEC_KEY)
    if isinstance(entry, Mapping) and "stage" in entry:
        return (
            f"is a pre-training checkpoint (MoCo, stage {entry['stage']}): it holds an encoder and its "
            "projection heads but no heatmap head, so it cannot predict keypoints. Use its encoder to "
            f"initialise fine-tuning: FinetuneConfig(init_encoder='{path}') (or the run's "
            "encoder.safetensors), then load the fine-tuning checkpoint here"
        )
    if isinstance(entry, Mapping) and "model" in entry:
        return (
            f"has a '{SPEC_KEY}' model description but no 'state_dict' of weights: the checkpoint is "
            "incomplete"
        )
    tensors = sum(isinstance(v, Tensor) for v in ckpt.values())
    inner = next((ckpt[k] for k in ("state_dict", "model_state_dict", "model") if isinstance(ckpt.get(k), Mapping)), None)
    if inner is not None:
        tensors = sum(isinstance(v, Tensor) for v in inner.values())
    if "pytorch-lightning_version" in ckpt or "lightning_version" in ckpt:
        kind = f"is a Lightning checkpoint ({_count(tensors)}) without a '{SPEC_KEY}' model description"
    else:
        kind = f"holds weights only ({_count(tensors)}) and no model description"
    return (
        f"{kind}: it was not written by sslkeypoint fine-tuning (a .ckpt file from run_finetuning, or a "
        f"folder from KeypointPredictor.save). {_INIT_HINT.format(path=path)}"
    )


def not_a_predictor_folder(path: Path, folder: Path, load: Any) -> str:
    """Why ``path`` (a folder, or a safetensors file in one) is not a predictor folder (for an error)."""
    if path.is_dir():
        checkpoints = sorted(folder.glob("*.ckpt")) + sorted(folder.glob("checkpoints/*.ckpt"))
        hint = f"; it holds checkpoints: give one of them, e.g. {checkpoints[0]}" if checkpoints else ""
        return f"is a folder without predictor.json: not a folder written by KeypointPredictor.save{hint}"
    tensors = load(path)  # a damaged file is reported as such
    return (
        f"holds weights only ({_count(len(tensors))}) and no predictor.json lies beside it, so nothing "
        "says which model, codec and landmarks they belong to (a folder from KeypointPredictor.save "
        f"holds both). An encoder weight file such as pre-training's encoder.safetensors cannot "
        f"predict keypoints. {_INIT_HINT.format(path=path)}"
    )

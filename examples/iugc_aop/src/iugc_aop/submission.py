"""The IUGC 2025 challenge submission: export a folder for Codabench and evaluate one.

A submission folder holds

* ``model.py`` — ``class model`` with ``load(path)`` and ``predict(X)``: ``X`` is a PIL RGB image
  of any size, the result a numpy array ``[x1, y1, x2, y2, x3, y3]`` (PS1, PS2, FH1) in ``X``'s
  pixels. It imports only torch, numpy, Pillow and the standard library (the organisers advise
  against third-party packages), and its preprocessing is sslkeypoint's exactly, so its
  predictions equal :class:`~sslkeypoint.inference.KeypointPredictor`'s;
* ``model.pt`` — the network with its heatmap decode
  (:class:`~sslkeypoint.inference.KeypointDecoder`) as TorchScript, loadable with torch alone;
* ``metadata.json`` — input size, channels, landmark names and order, decode mode, library
  version and the SHA-256 of the source checkpoint.

:func:`export_submission` writes one from a fine-tuning checkpoint; :func:`evaluate_submission`
loads a folder the way the challenge does (``model.py`` imported from its path, in this process)
and scores it on labelled records with :class:`~sslkeypoint.metrics.KeypointEvaluator`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslkeypoint.data import KeypointRecord

__all__ = [
    "IUGC_KEYPOINTS",
    "SUBMISSION_FILES",
    "evaluate_submission",
    "export_submission",
    "file_sha256",
    "load_submission",
    "submission_template",
]

#: Landmark order of the challenge's output vector.
IUGC_KEYPOINTS: tuple[str, str, str] = ("PS1", "PS2", "FH1")
#: Files of a submission folder.
SUBMISSION_FILES: tuple[str, ...] = ("model.py", "model.pt", "metadata.json")
#: Format version of ``metadata.json``.
METADATA_VERSION = 1


def submission_template() -> str:
    """The text of the submission's ``model.py``.

    Examples:
        >>> text = submission_template()
        >>> "class model:" in text and "import sslkeypoint" not in text
        True
    """
    ref = resources.files("iugc_aop").joinpath("_submission_template", "model.py")
    return ref.read_text(encoding="utf-8")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _library_version() -> str:
    try:
        from importlib.metadata import version

        return version("sslkeypoint")
    except Exception:  # not installed as a distribution: fall back to the module attribute
        import sslkeypoint

        return str(getattr(sslkeypoint, "__version__", "unknown"))


def _output_indices(names: Sequence[str] | None, num_keypoints: int) -> list[int]:
    """Positions of PS1, PS2, FH1 among the network's outputs."""
    if names is not None and all(n in names for n in IUGC_KEYPOINTS):
        return [list(names).index(n) for n in IUGC_KEYPOINTS]
    if num_keypoints == 3:
        return [0, 1, 2]
    raise ValueError(
        f"the checkpoint predicts {num_keypoints} landmarks named {names}; a submission needs "
        f"{IUGC_KEYPOINTS} (by name, or exactly three landmarks in that order)"
    )


def export_submission(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    metadata: Mapping[str, Any] | None = None,
    codec: Any = None,
    refine: str | None = None,
    map_back: str | None = None,
    check: bool = True,
) -> Path:
    """Write a ready Codabench submission folder from a fine-tuning checkpoint.

    The checkpoint is read with :meth:`KeypointPredictor.from_checkpoint
    <sslkeypoint.inference.KeypointPredictor.from_checkpoint>`; the network and its heatmap
    decode are exported with :meth:`~sslkeypoint.inference.KeypointPredictor.export_torchscript`
    to ``model.pt``, next to ``model.py`` and ``metadata.json``.

    Args:
        checkpoint: Fine-tuning checkpoint (``.ckpt``) or a folder written by
            :meth:`KeypointPredictor.save <sslkeypoint.inference.KeypointPredictor.save>`.
        out_dir: Submission folder (created; the three submission files are overwritten).
        metadata: Extra JSON-ready entries stored under ``"extra"`` in ``metadata.json`` (e.g.
            the variant name or the run's validation metrics).
        codec: Codec to decode with instead of the checkpoint's
            :class:`~sslkeypoint.heatmaps.HeatmapCodec`, e.g. a
            :class:`~iugc_aop.starter.StarterCodec` for a model trained with the starter's
            targets (same input and heatmap size).
        refine: Sub-pixel refinement instead of the checkpoint's (``"dark"``, ``"quarter"``,
            ``"none"``).
        map_back: How ``model.py`` maps input-pixel landmarks to the image's pixels:
            ``"pixel_centre"`` (``x = (x_in + 0.5) * W / W_in - 0.5``, the library's) or
            ``"scale"`` (``x = x_in * W / W_in``, the IUGC starter's). Default: ``"scale"`` with a
            :class:`~iugc_aop.starter.StarterCodec`, else ``"pixel_centre"``.
        check: Load the written folder through the challenge interface and compare it with the
            library predictor on a synthetic 512×512 image and a 400×300 one; raise if any
            landmark differs by more than 0.5 px.

    Returns:
        The submission folder.

    Raises:
        FileNotFoundError: If the checkpoint does not exist.
        ValueError: If the checkpoint's landmarks are not PS1, PS2, FH1, if a ``codec`` does
            not match the network's sizes, or if the check fails.
    """
    from iugc_aop.starter import StarterCodec
    from sslkeypoint.inference import KeypointPredictor

    if map_back is None:
        map_back = "scale" if isinstance(codec, StarterCodec) else "pixel_centre"
    if map_back not in ("pixel_centre", "scale"):
        raise ValueError(f"map_back must be 'pixel_centre' or 'scale'; got {map_back!r}")
    src = Path(checkpoint)
    if not src.exists():
        raise FileNotFoundError(f"checkpoint not found: {src}")
    overrides: dict[str, Any] = {"device": "cpu"}
    if refine is not None:
        overrides["refine"] = refine
    predictor = KeypointPredictor.from_checkpoint(src, **overrides)
    codec_kind = "exact"
    if codec is not None:
        if tuple(codec.input_size) != predictor.input_size or tuple(codec.heatmap_size) != tuple(
            predictor.codec.heatmap_size
        ):
            raise ValueError(
                f"codec sizes input={tuple(codec.input_size)} heatmap={tuple(codec.heatmap_size)} do not "
                f"match the checkpoint's input={predictor.input_size} "
                f"heatmap={tuple(predictor.codec.heatmap_size)}"
            )
        predictor = KeypointPredictor(
            predictor.model,
            codec,
            refine=predictor.refine,
            in_chans=predictor.in_chans,
            device="cpu",
            keypoint_names=predictor.keypoint_names,
            aop_indices=predictor.aop_indices,
        )
        codec_kind = type(codec).__name__
    num_k = int(getattr(predictor.model, "num_keypoints", 0)) or _count_keypoints(predictor)
    order = _output_indices(predictor.keypoint_names, num_k)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictor.export_torchscript(out / "model.pt")
    (out / "model.py").write_text(submission_template(), encoding="utf-8")
    meta: dict[str, Any] = {
        "format": METADATA_VERSION,
        "task": "IUGC 2025 landmarks (PS1, PS2, FH1)",
        "input_size": list(predictor.input_size),
        "heatmap_size": list(predictor.codec.heatmap_size),
        "in_chans": predictor.in_chans,
        "keypoint_names": list(predictor.keypoint_names) if predictor.keypoint_names else None,
        "output_indices": order,
        "output_names": list(IUGC_KEYPOINTS),
        "codec": codec_kind,
        "refine": predictor.refine if codec is None else "none",
        "map_back": map_back,
        "library": "sslkeypoint",
        "library_version": _library_version(),
        "torch_version": torch.__version__,
        "source_checkpoint": src.name,
        "source_checkpoint_sha256": file_sha256(src) if src.is_file() else _folder_sha256(src),
        "extra": dict(metadata) if metadata else {},
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    if check:
        worst = _self_check(out, predictor, order, map_back)
        if not worst <= 0.5:
            raise ValueError(
                f"the exported submission in {out} disagrees with the library predictor by {worst:.4f} px "
                "(more than 0.5 px)"
            )
    return out


def _count_keypoints(predictor: Any) -> int:
    with torch.inference_mode():
        kp, _ = predictor.decoder(predictor._example_input(1))
    return int(kp.shape[1])


def _folder_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(f.name.encode())
        digest.update(file_sha256(f).encode())
    return digest.hexdigest()


def _self_check(folder: Path, predictor: Any, order: Sequence[int], map_back: str) -> float:
    """Largest landmark difference (px) between the submission and the predictor.

    With ``map_back="scale"`` the predictor's pixel-centre map is converted to the starter's:
    ``x_in * r = x + 0.5 - 0.5 * r`` for ``x = (x_in + 0.5) * r - 0.5``, ``r = W / W_in``.
    """
    from PIL import Image

    sub = load_submission(folder)
    rng = np.random.default_rng(0)
    worst = 0.0
    for h, w in ((512, 512), (300, 400)):
        grey = rng.integers(0, 256, size=(h, w), dtype=np.uint8)
        img = Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))
        got = np.asarray(sub.predict(img), dtype=np.float64).reshape(-1, 2)
        ref = predictor.predict(img).keypoints[0][list(order)].double().numpy()
        if map_back == "scale":
            r = np.array([w / predictor.input_size[1], h / predictor.input_size[0]])
            ref = ref + 0.5 - 0.5 * r
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst


def load_submission(submission_dir: str | Path) -> Any:
    """Import ``model.py`` from a submission folder by its path and return ``model().load(dir)``.

    This is what the challenge does: the module is loaded from the file (under a unique module
    name, so several submissions can be loaded in one process), instantiated with no argument,
    and given the folder.

    Raises:
        FileNotFoundError: If ``model.py`` is missing.
        ValueError: If it defines no ``model`` class.
    """
    folder = Path(submission_dir)
    path = folder / "model.py"
    if not path.is_file():
        raise FileNotFoundError(f"the submission folder {folder} has no model.py")
    name = f"_iugc_submission_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    cls = getattr(module, "model", None)
    if cls is None:
        raise ValueError(f"{path} defines no class 'model'")
    instance = cls()
    loaded = instance.load(str(folder))
    return loaded if loaded is not None else instance


def evaluate_submission(
    submission_dir: str | Path,
    records: Sequence[KeypointRecord],
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a submission folder through the challenge interface on labelled records.

    Each record's image is opened with ``PIL.Image.open(path).convert("RGB")`` and given to the
    submission's ``predict``; the ``(6,)`` answers are scored against the records' keypoints
    (PS1, PS2, FH1, in original pixels) with
    :class:`~sslkeypoint.metrics.KeypointEvaluator` (``keypoint_names=("PS1", "PS2", "FH1")``,
    ``aop_indices=(0, 1, 2)``).

    Args:
        submission_dir: The folder with ``model.py``.
        records: Labelled records (``keypoints`` ``(3, 2)`` in original pixels).
        progress: Show a progress bar.

    Returns:
        The evaluator's dict (``mre_px``, ``aop_mae_deg``, ``per_landmark_px``, ``missing``,
        ``failed``, ``count``, ...) plus ``predictions`` (one dict per record: ``path``,
        ``keypoints`` ``[[x, y], ...]`` in original pixels, ``aop`` in degrees) and
        ``ms_per_image`` (mean wall time of ``predict``).

    Raises:
        ValueError: If a record has no keypoints or not three, or ``predict`` returns something
            other than six finite-or-NaN numbers (the message names the image).
    """
    from PIL import Image

    from sslkeypoint.geometry import angle_of_progression
    from sslkeypoint.metrics import KeypointEvaluator

    sub = load_submission(submission_dir)
    evaluator = KeypointEvaluator(keypoint_names=IUGC_KEYPOINTS, aop_indices=(0, 1, 2))
    items: Any = records
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(records, desc="evaluate submission", unit="image")
    predictions: list[dict[str, Any]] = []
    seconds = 0.0
    for i, rec in enumerate(items):
        if rec.keypoints is None or np.asarray(rec.keypoints).shape != (3, 2):
            shape = None if rec.keypoints is None else np.asarray(rec.keypoints).shape
            raise ValueError(f"record {i} ({rec.path}): expected keypoints of shape (3, 2); got {shape}")
        with Image.open(rec.path) as im:
            img = im.convert("RGB")
        start = time.perf_counter()
        out = sub.predict(img)
        seconds += time.perf_counter() - start
        arr = np.asarray(out, dtype=np.float64)
        if arr.shape != (6,):
            raise ValueError(f"predict({rec.path}) returned shape {arr.shape}; expected (6,)")
        pred = torch.from_numpy(arr.reshape(3, 2))
        target = torch.as_tensor(np.asarray(rec.keypoints, dtype=np.float64))
        visible = None if rec.visible is None else torch.as_tensor(np.asarray(rec.visible, dtype=bool))
        evaluator.update(pred[None], target[None], visible=None if visible is None else visible[None])
        aop = float(angle_of_progression(pred[0], pred[1], pred[2]))
        predictions.append({"path": str(rec.path), "keypoints": pred.tolist(), "aop": aop})
    result = dict(evaluator.compute())
    result["predictions"] = predictions
    result["ms_per_image"] = 1000.0 * seconds / len(predictions) if predictions else math.nan
    return result


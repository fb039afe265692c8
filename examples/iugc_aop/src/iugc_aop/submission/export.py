"""Write a Codabench submission folder from a fine-tuning checkpoint.

The folder holds :data:`SUBMISSION_FILES`: ``model.py`` (:func:`submission_template`),
``model.pt`` (the network with its codec's decode as TorchScript, written by
:func:`sslkeypoint.export.export_torchscript`) and ``metadata.json`` (:func:`submission_metadata`).
The codec is the one stored in the checkpoint: a model trained with
:class:`~iugc_aop.starter_codec.StarterCodec` decodes with it and maps back with the starter's
``x * W / W_in`` (``"map_back": "scale"``); any other codec maps back with the pixel-centre
``x = (x_in + 0.5) * W / W_in - 0.5`` (``"pixel_centre"``).

``metadata.json`` lists the files written with it and their SHA-256 (``"files"``), which makes the
folder recognisable as one this exporter wrote: :func:`export_submission` refreshes such a folder,
refuses one whose ``model.py`` or ``model.pt`` was changed since, and refuses a non-empty folder
it did not write (:func:`check_submission_folder`) unless ``force`` — and then replaces only the
three submission files, leaving any other file where it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iugc_aop.landmarks import LANDMARK_NAMES
from iugc_aop.starter_codec import StarterCodec
from iugc_aop.submission.evaluate import load_submission
from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.export import export_torchscript
from sslkeypoint.heatmaps import KeypointCodec, codec_to_dict
from sslkeypoint.inference import KeypointPredictor

__all__ = [
    "MAP_BACK_MODES",
    "METADATA_VERSION",
    "SUBMISSION_FILES",
    "SubmissionFolderError",
    "check_submission_folder",
    "export_submission",
    "file_sha256",
    "map_back_mode",
    "output_indices",
    "submission_metadata",
    "submission_template",
]

#: Files of a submission folder.
SUBMISSION_FILES: tuple[str, ...] = ("model.py", "model.pt", "metadata.json")
#: Format version of ``metadata.json`` (3: the ``"files"`` entry).
METADATA_VERSION = 3
#: ``metadata.json``'s ``"task"``, which also marks a folder this exporter wrote.
TASK = "IUGC 2025 landmarks (PS1, PS2, FH1)"
#: How ``model.py`` maps input-pixel landmarks to the image's pixels (``metadata["map_back"]``).
MAP_BACK_MODES: tuple[str, ...] = ("pixel_centre", "scale")
#: Largest landmark difference (px) :func:`export_submission` accepts in its check.
CHECK_TOLERANCE_PX = 0.5


def submission_template() -> str:
    """The text of the submission's ``model.py`` (shipped with the package as data).

    Examples:
        >>> text = submission_template()
        >>> "class model:" in text and "import sslkeypoint" not in text
        True
    """
    ref = resources.files("iugc_aop.submission").joinpath("template", "model.py")
    return ref.read_text(encoding="utf-8")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes.

    Examples:
        >>> import tempfile, pathlib
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = pathlib.Path(d) / "x"
        ...     _ = p.write_bytes(b"abc")
        ...     file_sha256(p)[:16]
        'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def map_back_mode(codec: KeypointCodec) -> str:
    """``"scale"`` for a :class:`~iugc_aop.starter_codec.StarterCodec`, else ``"pixel_centre"``.

    Examples:
        >>> from sslkeypoint.heatmaps import HeatmapCodec
        >>> map_back_mode(StarterCodec((64, 64), (16, 16))), map_back_mode(HeatmapCodec((64, 64), (16, 16)))
        ('scale', 'pixel_centre')
    """
    return "scale" if isinstance(codec, StarterCodec) else "pixel_centre"


def output_indices(names: Sequence[str] | None, num_keypoints: int) -> list[int]:
    """Positions of PS1, PS2, FH1 among a network's ``num_keypoints`` outputs.

    By name when the names include all three, else ``[0, 1, 2]`` for a network with exactly
    three outputs.

    Raises:
        ValueError: If neither applies (the message names the landmarks found).

    Examples:
        >>> output_indices(["FH1", "PS1", "PS2", "X"], 4)
        [1, 2, 0]
        >>> output_indices(None, 3)
        [0, 1, 2]
    """
    if names is not None and all(n in names for n in LANDMARK_NAMES):
        return [list(names).index(n) for n in LANDMARK_NAMES]
    if num_keypoints == len(LANDMARK_NAMES):
        return list(range(len(LANDMARK_NAMES)))
    shown = tuple(names) if names is not None else None
    raise ValueError(
        f"the checkpoint predicts {num_keypoints} landmarks named {shown}; a submission needs "
        f"{LANDMARK_NAMES} (by name, or exactly three landmarks in that order)"
    )


def _library_version() -> str:
    try:
        from importlib.metadata import version

        return version("sslkeypoint")
    except Exception:  # not installed as a distribution: fall back to the module attribute
        import sslkeypoint

        return str(getattr(sslkeypoint, "__version__", "unknown"))


def _num_keypoints(predictor: KeypointPredictor) -> int:
    """``K`` of the predictor's network (from the model, else from one forward pass)."""
    k = getattr(predictor.model, "num_keypoints", None)
    if isinstance(k, int) and k > 0:
        return k
    h, w = predictor.input_size
    with torch.inference_mode():
        kp, _ = predictor.decoder(torch.zeros(1, predictor.in_chans, h, w, device=predictor.device))
    return int(kp.shape[1])


def _folder_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(f.name.encode())
        digest.update(file_sha256(f).encode())
    return digest.hexdigest()


def submission_metadata(
    predictor: KeypointPredictor,
    source: str | Path,
    order: Sequence[int],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``metadata.json`` of a submission exported from ``predictor``.

    ``model.py`` reads ``input_size``, ``in_chans``, ``output_indices`` and ``map_back``; the rest
    is provenance: the codec (:func:`~sslkeypoint.heatmaps.codec_to_dict`), its refinement
    (``"none"`` for a codec without one), the library and torch versions and the SHA-256 of the
    source checkpoint (of a saved-predictor folder: of its files' names and hashes).
    :func:`export_submission` adds ``"files"``: the SHA-256 of the ``model.py`` and ``model.pt``
    it wrote beside it.

    Args:
        predictor: The predictor whose network is exported.
        source: The checkpoint file (or saved-predictor folder) it was read from.
        order: Positions of PS1, PS2, FH1 among its outputs (:func:`output_indices`).
        extra: JSON-ready entries stored under ``"extra"``.

    Returns:
        A JSON-ready dict.
    """
    src = Path(source)
    codec = predictor.codec
    return {
        "format": METADATA_VERSION,
        "task": TASK,
        "input_size": list(predictor.input_size),
        "heatmap_size": [int(v) for v in codec.heatmap_size],
        "in_chans": predictor.in_chans,
        "keypoint_names": list(predictor.keypoint_names) if predictor.keypoint_names else None,
        "output_indices": [int(i) for i in order],
        "output_names": list(LANDMARK_NAMES),
        "codec": codec_to_dict(codec),
        "refine": str(getattr(codec, "refine", "none")),
        "map_back": map_back_mode(codec),
        "library": "sslkeypoint",
        "library_version": _library_version(),
        "torch_version": torch.__version__,
        "source_checkpoint": src.name,
        "source_checkpoint_sha256": file_sha256(src) if src.is_file() else _folder_sha256(src),
        "extra": dict(extra) if extra else {},
    }


class SubmissionFolderError(ValueError):
    """A folder :func:`export_submission` will not write into without ``force``."""


def _exported_metadata(folder: Path) -> dict[str, Any] | None:
    """The folder's ``metadata.json`` when this exporter wrote it, else ``None``."""
    try:
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(meta, dict) and meta.get("library") == "sslkeypoint" and meta.get("task") == TASK:
        return meta
    return None


def _changed_since_export(folder: Path, meta: dict[str, Any]) -> list[str]:
    """Submission files in ``folder`` that differ from what the export recorded.

    ``metadata.json`` of format 3 on lists each file's SHA-256; an older folder records none, so
    its ``model.py`` must equal :func:`submission_template`.
    """
    recorded = meta.get("files")
    if not isinstance(recorded, dict):
        model_py = folder / "model.py"
        same = not model_py.is_file() or model_py.read_text(encoding="utf-8") == submission_template()
        return [] if same else ["model.py"]
    return [name for name, digest in sorted(recorded.items())
            if name in SUBMISSION_FILES and (folder / name).is_file() and file_sha256(folder / name) != digest]


def check_submission_folder(out_dir: str | Path, *, force: bool = False) -> None:
    """Refuse a submission folder whose files :func:`export_submission` would wrongly replace.

    Accepted: a new or empty folder, or one this exporter wrote (its ``metadata.json`` names the
    task and the library) whose ``model.py`` and ``model.pt`` are as exported. With ``force`` any
    folder is accepted (only the submission files in it are then replaced).

    Args:
        out_dir: The intended submission folder.
        force: Accept any folder.

    Raises:
        SubmissionFolderError: If ``out_dir`` is a file; holds files but was not written by this
            exporter; or holds a submission whose ``model.py`` or ``model.pt`` changed since its
            export (the message names the folder and the files).

    Examples:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> check_submission_folder(folder)  # empty: fine
        >>> _ = (folder / "model.py").write_text("class model: ...")
        >>> check_submission_folder(folder)
        Traceback (most recent call last):
        ...
        iugc_aop.submission.export.SubmissionFolderError: ... holds model.py but is not a submission folder ...
        >>> check_submission_folder(folder, force=True)
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SubmissionFolderError(f"{out} is a file, not a folder; nothing was written")
    if force or not out.exists() or not any(out.iterdir()):
        return
    meta = _exported_metadata(out)
    if meta is None:
        present = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
        clash = [n for n in SUBMISSION_FILES if (out / n).exists()]
        what = f"; exporting would replace its {', '.join(clash)}" if clash else ""
        raise SubmissionFolderError(
            f"{out} holds {', '.join(present[:6])}{' …' if len(present) > 6 else ''} but is not a "
            f"submission folder written by export_submission (no metadata.json of one){what}. Nothing "
            "was written: choose a new or empty folder, or pass force=True (--force) to write the "
            f"submission files ({', '.join(SUBMISSION_FILES)}) into it anyway."
        )
    changed = _changed_since_export(out, meta)
    if changed:
        raise SubmissionFolderError(
            f"{', '.join(changed)} in {out} changed after it was exported (it no longer matches "
            "metadata.json); exporting again would replace it. Nothing was written: copy your "
            "changes elsewhere, or pass force=True (--force) to replace it."
        )


def export_submission(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    metadata: Mapping[str, Any] | None = None,
    refine: str | None = None,
    check: bool = True,
    force: bool = False,
) -> Path:
    """Write a ready Codabench submission folder from a fine-tuning checkpoint.

    The checkpoint is read with :meth:`KeypointPredictor.from_checkpoint
    <sslkeypoint.inference.KeypointPredictor.from_checkpoint>`, which rebuilds exactly the codec
    the model was trained with; the network and that codec's decode are exported with
    :func:`sslkeypoint.export.export_torchscript` to ``model.pt``, next to ``model.py`` and
    ``metadata.json``. A :class:`~iugc_aop.starter_codec.StarterCodec` checkpoint gives
    ``"map_back": "scale"`` (the starter's ``x * W / W_in``), any other ``"pixel_centre"``.

    Args:
        checkpoint: Fine-tuning checkpoint (``.ckpt``) or a folder written by
            :meth:`KeypointPredictor.save <sslkeypoint.inference.KeypointPredictor.save>`.
        out_dir: Submission folder: new, empty, or one this function wrote before (refreshed);
            any other folder is refused unless ``force`` (:func:`check_submission_folder`).
        metadata: Extra JSON-ready entries stored under ``"extra"`` in ``metadata.json`` (e.g.
            the variant name or the run's validation metrics).
        refine: Sub-pixel refinement instead of the checkpoint codec's (``"dark"``,
            ``"quarter"``, ``"none"``), for codecs that have one.
        check: Load the written folder through the challenge interface and compare it with the
            library predictor on a synthetic 512×512 image and a 400×300 one; raise if any
            landmark differs by more than 0.5 px.
        force: Write into ``out_dir`` whatever it holds; only the files of
            :data:`SUBMISSION_FILES` are replaced, any other file stays (and is not part of the
            submission's ``"files"``).

    Returns:
        The submission folder.

    Raises:
        FileNotFoundError: If the checkpoint does not exist.
        SubmissionFolderError: If ``out_dir`` is not a folder this function may write into
            (nothing is written).
        ValueError: If the checkpoint's landmarks are not PS1, PS2, FH1, if ``refine`` is given
            for a codec without a refinement setting, or if the check fails.

    Examples:
        >>> export_submission("no_such.ckpt", "sub")
        Traceback (most recent call last):
        ...
        FileNotFoundError: checkpoint not found: no_such.ckpt
    """
    src = Path(checkpoint)
    if not src.exists():
        raise FileNotFoundError(f"checkpoint not found: {src}")
    out = Path(out_dir)
    check_submission_folder(out, force=force)
    overrides: dict[str, Any] = {"device": "cpu"}
    if refine is not None:
        overrides["refine"] = refine
    predictor = KeypointPredictor.from_checkpoint(src, **overrides)
    order = output_indices(predictor.keypoint_names, _num_keypoints(predictor))

    out.mkdir(parents=True, exist_ok=True)
    export_torchscript(predictor, out / "model.pt")
    write_text_atomic(out / "model.py", submission_template())
    meta = submission_metadata(predictor, src, order, metadata)
    meta["files"] = {name: file_sha256(out / name) for name in SUBMISSION_FILES if name != "metadata.json"}
    write_text_atomic(out / "metadata.json", json.dumps(meta, indent=2, default=str) + "\n")
    if check:
        worst = _self_check(out, predictor, order)
        if not worst <= CHECK_TOLERANCE_PX:
            raise ValueError(
                f"the exported submission in {out} disagrees with the library predictor by {worst:.4f} px "
                f"(more than {CHECK_TOLERANCE_PX} px)"
            )
    return out


def _self_check(folder: Path, predictor: KeypointPredictor, order: Sequence[int]) -> float:
    """Largest landmark difference (px) between the submission and the predictor.

    The predictor maps back with its codec's ``to_original``, which is what ``map_back`` in the
    metadata tells ``model.py`` to do, so the two agree up to float rounding.
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
        worst = max(worst, float(np.abs(got - ref).max()))
    return worst

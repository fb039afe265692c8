"""Commands ``predict`` and ``export-submission``: landmarks for new images, and the challenge folder.

``python -m iugc_aop predict --checkpoint CKPT --input IMAGE_OR_FOLDER --out DIR`` writes
``DIR/predictions.csv`` — columns ``Filename``, ``PS1``, ``PS2``, ``FH1`` (points as ``"(x, y)"``
strings, as in the IUGC CSVs, in each image's original pixels) and ``AOP`` (degrees) — one
overlay PNG per image in ``DIR/overlays/``, and ``DIR/skipped.csv`` (``Filename``, ``Reason``)
listing the files that could not be read (also printed). Unreadable files do not stop the
others; the exit status is 1 only when no image at all could be read.

``python -m iugc_aop export-submission --checkpoint CKPT --out DIR`` writes a Codabench submission
folder (:func:`iugc_aop.submission.export_submission`).

Both rebuild the model with the codec stored in the checkpoint
(:meth:`KeypointPredictor.from_checkpoint <sslkeypoint.inference.KeypointPredictor.from_checkpoint>`):
a model trained with :class:`~iugc_aop.starter_codec.StarterCodec` decodes and maps back as the
starter does, with no option to set.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iugc_aop.cli import Command, register
from iugc_aop.landmarks import LANDMARK_NAMES, MEASURES
from sslkeypoint.atomic import atomic_open

__all__ = ["PredictResult", "predict_images"]

#: Skipped files listed on screen by ``predict`` (all of them are in ``skipped.csv``).
_SHOWN_SKIPS = 20


def _input_images(source: str | Path, *, recursive: bool = False) -> list[Path]:
    """The image files of ``--input``: itself when a file, else its images in natural order.

    A folder is listed with :func:`sslkeypoint.data.list_images` (file names ending in one of
    :data:`sslkeypoint.data.IMAGE_EXTENSIONS`; images are decoded by content).

    Args:
        source: An image file or a folder.
        recursive: Also list images in sub-folders.

    Returns:
        The image paths.

    Raises:
        FileNotFoundError: If ``source`` does not exist or a folder holds no image.

    Examples:
        >>> _input_images("no_such_folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: --input no_such_folder does not exist
    """
    from sslkeypoint.data import IMAGE_EXTENSIONS, list_images

    p = Path(source)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"--input {p} does not exist")
    files = list_images(p, recursive=recursive)
    if not files:
        raise FileNotFoundError(f"no image ({', '.join(IMAGE_EXTENSIONS)}) found in {p}")
    return files


def _landmark_order(names: Sequence[str] | None) -> list[int]:
    """Positions of PS1, PS2, FH1 among the predictor's landmarks (by name, else the first three)."""
    if names is not None and all(n in names for n in LANDMARK_NAMES):
        return [list(names).index(n) for n in LANDMARK_NAMES]
    return list(range(len(LANDMARK_NAMES)))


def _overlay_name(label: str) -> str:
    return Path(label.replace("/", "__").replace("\\", "__")).stem + ".png"


@dataclass(frozen=True)
class PredictResult:
    """What :func:`predict_images` wrote.

    Attributes:
        csv_path: ``predictions.csv`` (one row per image read).
        skipped_path: ``skipped.csv`` (``Filename``, ``Reason``; only the header when none).
        predicted: Number of images predicted.
        skipped: ``(Filename, reason)`` of every file that could not be read, in input order.

    Examples:
        >>> r = PredictResult(Path("p.csv"), Path("s.csv"), 2, [("b.jpg", "cannot decode: truncated")])
        >>> r.total
        3
    """

    csv_path: Path
    skipped_path: Path
    predicted: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Files given (predicted + skipped)."""
        return self.predicted + len(self.skipped)


def _read_failure(exc: Exception) -> str:
    """Why an image could not be read, without its path (the CSV row names the file)."""
    if isinstance(exc, FileNotFoundError):
        link = exc.filename is not None and Path(exc.filename).is_symlink()
        return "link to a missing file" if link else "file not found"
    cause = exc.__cause__
    return f"cannot decode: {cause}" if cause is not None else str(exc)


def predict_images(
    checkpoint: str | Path,
    images: Sequence[str | Path],
    out_dir: str | Path,
    *,
    root: str | Path | None = None,
    overlays: bool = True,
    refine: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> PredictResult:
    """Predict PS1, PS2, FH1 and the AoP for image files; write the CSV and overlays.

    The checkpoint's own codec decodes the heatmaps and maps the landmarks back to each image's
    pixels; the AoP is the prediction's ``measures["aop"]`` (the checkpoint's measure, else
    :data:`iugc_aop.landmarks.AOP` on the predicted landmarks). A file that is missing or cannot
    be decoded is skipped and listed in ``skipped.csv`` with the reason; the others are predicted.

    Args:
        checkpoint: Fine-tuning checkpoint or saved predictor folder.
        images: Image files (any size; decoded by content).
        out_dir: Output folder (created): ``predictions.csv``, ``skipped.csv`` and
            ``overlays/*.png``.
        root: Folder the ``Filename`` column is relative to (default: each file's name).
        overlays: Also draw one overlay PNG per image (landmarks and the AoP construction).
        refine: Override the checkpoint codec's sub-pixel refinement (codecs that have one).
        batch_size: Images per forward pass.
        progress: Show progress bars.

    Returns:
        A :class:`PredictResult` (what was written, what was skipped and why).

    Raises:
        ValueError: If ``refine`` is given for a codec without a refinement setting, or the
            checkpoint carries no model description.
    """
    import torch

    from sslkeypoint.data import format_point
    from sslkeypoint.inference import KeypointPredictor

    overrides: dict[str, Any] = {"batch_size": batch_size}
    if refine is not None:
        overrides["refine"] = refine
    predictor = KeypointPredictor.from_checkpoint(Path(checkpoint), **overrides)
    order = _landmark_order(predictor.keypoint_names)
    paths = [Path(p) for p in images]
    base = Path(root) if root is not None else None
    labels = [str(p.relative_to(base)) if base is not None else p.name for p in paths]

    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    kp_parts: list[Any] = []
    aop_parts: list[Any] = []
    starts: Any = range(0, len(paths), predictor.batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="predict", unit="batch")
    for start in starts:
        tensors, sizes = [], []
        for i in range(start, min(start + predictor.batch_size, len(paths))):
            try:
                tensor, size = predictor.preprocess(paths[i])
            except (OSError, ValueError) as exc:  # missing, undecodable or unsupported image
                skipped.append((labels[i], _read_failure(exc)))
                continue
            kept.append(i)
            tensors.append(tensor)
            sizes.append(size)
        if not tensors:
            continue
        result = predictor.predict_batch(torch.stack(tensors), torch.tensor(sizes, dtype=torch.long))
        kp = result.keypoints[:, order]  # (B, 3, 2) original px, PS1, PS2, FH1
        kp_parts.append(kp)
        aop_parts.append(result.measures["aop"] if "aop" in result.measures else MEASURES["aop"](kp))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "predictions.csv"
    all_kp = torch.cat(kp_parts) if kp_parts else torch.zeros(0, len(LANDMARK_NAMES), 2)
    all_aop = torch.cat(aop_parts) if aop_parts else torch.zeros(0)
    with atomic_open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Filename", *LANDMARK_NAMES, "AOP"])
        for i, pts, angle in zip(kept, all_kp.tolist(), all_aop.tolist()):
            writer.writerow([labels[i], *(format_point(x, y) for x, y in pts),
                             f"{angle:.4f}" if math.isfinite(angle) else "nan"])
    skipped_path = out / "skipped.csv"
    with atomic_open(skipped_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Filename", "Reason"])
        writer.writerows(skipped)
    if overlays and kept:
        from sslkeypoint.visualize import draw_predictions

        folder = out / "overlays"
        folder.mkdir(exist_ok=True)
        items: Any = zip(kept, all_kp)
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(items, total=len(kept), desc="overlays", unit="image")
        for i, pts in items:
            picture = draw_predictions(paths[i], pts, names=LANDMARK_NAMES, measures=MEASURES)
            picture.save(folder / _overlay_name(labels[i]))
    return PredictResult(csv_path, skipped_path, len(kept), skipped)


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT",
                   help="fine-tuning checkpoint (.ckpt) or a saved predictor folder; its own codec "
                   "decodes the heatmaps (the IUGC starter's for models trained with it)")
    p.add_argument("--refine", choices=("dark", "quarter", "none"), default=None,
                   help="sub-pixel refinement (default: the checkpoint's; only for codecs that "
                   "have one)")


def _configure_predict(p: argparse.ArgumentParser) -> None:
    _add_model_options(p)
    p.add_argument("--input", type=Path, required=True, metavar="PATH",
                   help="an image, or a folder of images (.jpg/.png/...; decoded by content)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output folder: predictions.csv, skipped.csv (unreadable files) and overlays/")
    p.add_argument("--recursive", action="store_true", help="also read images in sub-folders")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _run_predict(args: argparse.Namespace) -> int:
    try:
        images = _input_images(args.input, recursive=args.recursive)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.checkpoint.exists():
        print(f"error: checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 2
    root = args.input if args.input.is_dir() else None
    try:
        result = predict_images(args.checkpoint, images, args.out, root=root, overlays=not args.no_overlays,
                                refine=args.refine, batch_size=args.batch_size,
                                progress=not args.no_progress)
    except ValueError as exc:  # --refine for a codec without refinement, a bad --batch-size
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.skipped:
        print(f"skipped {len(result.skipped)} of {result.total} image(s) that could not be read "
              f"(listed in {result.skipped_path}):", file=sys.stderr)
        for name, reason in result.skipped[:_SHOWN_SKIPS]:
            print(f"  {name}: {reason}", file=sys.stderr)
        if len(result.skipped) > _SHOWN_SKIPS:
            print(f"  … and {len(result.skipped) - _SHOWN_SKIPS} more", file=sys.stderr)
    if result.predicted == 0:
        print(f"error: none of the {result.total} image(s) could be read; nothing was predicted",
              file=sys.stderr)
        return 1
    print(f"predicted {result.predicted} image(s): {result.csv_path}")
    if not args.no_overlays:
        print(f"overlays: {args.out / 'overlays'}")
    return 0


register(Command("predict", "predict PS1, PS2, FH1 and the AoP for an image or a folder "
                 "(CSV in original pixels + overlay PNGs)", _configure_predict, _run_predict))


# --------------------------------------------------------------------------------------------
# export-submission
# --------------------------------------------------------------------------------------------


def _configure_export(p: argparse.ArgumentParser) -> None:
    _add_model_options(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="submission folder to write (model.py, model.pt, metadata.json): new, empty, "
                   "or one exported before (refreshed)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the check against the library predictor")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds other files, or whose model.py changed since "
                   "its export (only the three submission files are replaced)")


def _run_export(args: argparse.Namespace) -> int:
    from iugc_aop.submission import SUBMISSION_FILES, export_submission
    from iugc_aop.submission.export import SubmissionFolderError

    if not args.checkpoint.exists():
        print(f"error: checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 2
    try:
        out = export_submission(args.checkpoint, args.out, refine=args.refine, check=not args.no_check,
                                force=args.force)
    except SubmissionFolderError as exc:
        print(f"error: {str(exc).replace('force=True (--force)', '--force')}", file=sys.stderr)
        return 2
    except ValueError as exc:  # wrong landmarks, --refine without refinement, failed check
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"submission written to {out} ({', '.join(sorted(SUBMISSION_FILES))})")
    return 0


register(Command("export-submission", "write a Codabench submission folder (model.py with "
                 "class model, TorchScript network, metadata.json) from a checkpoint",
                 _configure_export, _run_export))

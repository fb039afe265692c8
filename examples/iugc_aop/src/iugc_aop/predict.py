"""Commands ``predict`` and ``export-submission``: landmarks for new images, and the challenge folder.

``python -m iugc_aop predict --checkpoint CKPT --input IMAGE_OR_FOLDER --out DIR`` writes
``DIR/predictions.csv`` — columns ``Filename``, ``PS1``, ``PS2``, ``FH1`` (points as ``"(x, y)"``
strings, as in the IUGC CSVs, in each image's original pixels) and ``AOP`` (degrees) — and one
overlay PNG per image in ``DIR/overlays/``.

``python -m iugc_aop export-submission --checkpoint CKPT --out DIR`` writes a Codabench submission
folder (:func:`iugc_aop.submission.export_submission`).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iugc_aop.cli import Command, register

__all__ = [
    "IMAGE_SUFFIXES",
    "find_images",
    "format_point",
    "predict_images",
]

#: File name endings taken as images when ``--input`` is a folder (decoded by content).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def format_point(x: float, y: float, digits: int = 4) -> str:
    """A point as the IUGC CSVs write it, ``"(x, y)"``.

    Examples:
        >>> format_point(301.5, 72.25)
        '(301.5000, 72.2500)'
    """
    return f"({x:.{digits}f}, {y:.{digits}f})"


def find_images(source: str | Path, *, recursive: bool = False) -> list[Path]:
    """The image files of ``source``: itself when a file, else its images in natural order.

    Raises:
        FileNotFoundError: If ``source`` does not exist or a folder holds no image.
    """
    from iugc_aop.reader import natural_key

    p = Path(source)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise FileNotFoundError(f"--input {p} does not exist")
    pattern = "**/*" if recursive else "*"
    files = [f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise FileNotFoundError(f"no image ({', '.join(IMAGE_SUFFIXES)}) found in {p}")
    return sorted(files, key=lambda f: natural_key(str(f.relative_to(p))))


def _load_predictor(checkpoint: Path, codec: str, refine: str | None, batch_size: int) -> Any:
    from sslkeypoint.inference import KeypointPredictor

    overrides: dict[str, Any] = {"batch_size": batch_size}
    if refine is not None:
        overrides["refine"] = refine
    predictor = KeypointPredictor.from_checkpoint(checkpoint, **overrides)
    if codec == "starter":
        from iugc_aop.starter import StarterCodec

        starter = StarterCodec(predictor.input_size, predictor.codec.heatmap_size, predictor.codec.sigma)
        predictor = KeypointPredictor(
            predictor.model,
            starter,  # type: ignore[arg-type]
            refine=predictor.refine,
            in_chans=predictor.in_chans,
            batch_size=batch_size,
            keypoint_names=predictor.keypoint_names,
            aop_indices=predictor.aop_indices,
        )
    return predictor


def predict_images(
    checkpoint: str | Path,
    images: Sequence[str | Path],
    out_dir: str | Path,
    *,
    root: str | Path | None = None,
    overlays: bool = True,
    codec: str = "checkpoint",
    refine: str | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> Path:
    """Predict PS1, PS2, FH1 and the AoP for image files; write the CSV and overlays.

    Args:
        checkpoint: Fine-tuning checkpoint or saved predictor folder.
        images: Image files (any size; decoded by content).
        out_dir: Output folder (created): ``predictions.csv`` and ``overlays/*.png``.
        root: Folder the ``Filename`` column is relative to (default: each file's name).
        overlays: Also draw one overlay PNG per image.
        codec: ``"checkpoint"`` (the checkpoint's exact codec) or ``"starter"``
            (:class:`~iugc_aop.starter.StarterCodec`, for models trained with it; landmarks are
            then mapped back with the starter's ``x * W / W_in``, as its exported submission does).
        refine: Override the checkpoint's sub-pixel refinement.
        batch_size: Images per forward pass.
        progress: Show progress bars.

    Returns:
        The path of ``predictions.csv``.
    """
    import torch

    predictor = _load_predictor(Path(checkpoint), codec, refine, batch_size)
    names = predictor.keypoint_names or ("PS1", "PS2", "FH1")
    order = [list(names).index(n) for n in ("PS1", "PS2", "FH1")] if all(
        n in names for n in ("PS1", "PS2", "FH1")
    ) else [0, 1, 2]
    from sslkeypoint.geometry import angle_of_progression

    paths = [Path(p) for p in images]
    result = predictor.predict(paths, progress=progress)
    kp = result.keypoints[:, order]  # (N, 3, 2) original px
    if codec == "starter":
        # The starter maps back with x = x_in * W / W_in; the predictor used the pixel-centre map
        # x = (x_in + 0.5) * r - 0.5, so the starter's answer is x + 0.5 - 0.5 * r.
        h_in, w_in = predictor.input_size
        sizes = result.original_sizes.to(kp.dtype)
        r = torch.stack([sizes[:, 1] / w_in, sizes[:, 0] / h_in], dim=-1)[:, None, :]
        kp = kp + 0.5 - 0.5 * r
    aop = angle_of_progression(kp[:, 0], kp[:, 1], kp[:, 2])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    base = Path(root) if root is not None else None
    labels = [str(p.relative_to(base)) if base is not None else p.name for p in paths]
    csv_path = out / "predictions.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Filename", "PS1", "PS2", "FH1", "AOP"])
        for label, pts, angle in zip(labels, kp.tolist(), aop.tolist()):
            writer.writerow([label, *(format_point(x, y) for x, y in pts),
                             f"{angle:.4f}" if math.isfinite(angle) else "nan"])
    if overlays:
        from sslkeypoint.visualize import draw_predictions

        folder = out / "overlays"
        folder.mkdir(exist_ok=True)
        items: Any = zip(paths, labels, kp)
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(items, total=len(paths), desc="overlays", unit="image")
        for path, label, pts in items:
            picture = draw_predictions(path, pts, names=["PS1", "PS2", "FH1"], aop=True)
            picture.save(folder / (Path(label.replace("/", "__").replace("\\", "__")).stem + ".png"))
    return csv_path


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT",
                   help="fine-tuning checkpoint (.ckpt) or a saved predictor folder")
    p.add_argument("--codec", choices=("checkpoint", "starter"), default="checkpoint",
                   help="heatmap decode: the checkpoint's exact codec, or the IUGC starter's "
                   "(for models trained with it) (default: %(default)s)")
    p.add_argument("--refine", choices=("dark", "quarter", "none"), default=None,
                   help="sub-pixel refinement (default: the checkpoint's)")


def _configure_predict(p: argparse.ArgumentParser) -> None:
    _add_model_options(p)
    p.add_argument("--input", type=Path, required=True, metavar="PATH",
                   help="an image, or a folder of images (.jpg/.png/...; decoded by content)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output folder: predictions.csv and overlays/")
    p.add_argument("--recursive", action="store_true", help="also read images in sub-folders")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _run_predict(args: argparse.Namespace) -> int:
    try:
        images = find_images(args.input, recursive=args.recursive)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.checkpoint.exists():
        print(f"error: checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 2
    root = args.input if args.input.is_dir() else None
    csv_path = predict_images(args.checkpoint, images, args.out, root=root, overlays=not args.no_overlays,
                              codec=args.codec, refine=args.refine, batch_size=args.batch_size,
                              progress=not args.no_progress)
    print(f"predicted {len(images)} image(s): {csv_path}")
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
                   help="submission folder to write (model.py, model.pt, metadata.json)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the check against the library predictor")


def _run_export(args: argparse.Namespace) -> int:
    from iugc_aop.submission import export_submission

    if not args.checkpoint.exists():
        print(f"error: checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 2
    codec = None
    if args.codec == "starter":
        predictor = _load_predictor(args.checkpoint, "starter", args.refine, 1)
        codec = predictor.codec
    out = export_submission(args.checkpoint, args.out, codec=codec, refine=args.refine,
                            check=not args.no_check)
    print(f"submission written to {out} ({', '.join(sorted(f.name for f in out.iterdir()))})")
    return 0


register(Command("export-submission", "write a Codabench submission folder (model.py with "
                 "class model, TorchScript network, metadata.json) from a checkpoint",
                 _configure_export, _run_export))

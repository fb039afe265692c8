"""Checks of the image files of an IUGC 2025 data set: decoding, formats, sizes, duplicates."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from iugc_aop.formats.dataset import DuplicateGroup, IUGCDataset, Problem
from iugc_aop.landmarks import LANDMARK_NAMES
from sslkeypoint.data import KeypointRecord, read_image, read_image_size

__all__ = ["check_image_files", "decode_frames", "find_duplicates"]

_SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP",
                   ".tif": "TIFF", ".tiff": "TIFF"}


def _sniff(path: Path) -> str:
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except FileNotFoundError:  # a link to a missing file, or a frame deleted since it was listed
        return "missing"
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    return "other"


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decode_frames(frames: Sequence[Path], progress: bool, problems: list[Problem]) -> int:
    """Decode every frame as pre-training reads it; one ``unreadable_image`` error per bad file.

    Args:
        frames: The unlabelled frames.
        progress: Show a progress bar.
        problems: Where the errors are appended.

    Returns:
        How many frames could not be decoded.

    Examples:
        >>> problems = []
        >>> decode_frames([Path("no-such-frame.png")], progress=False, problems=problems)
        1
        >>> problems[0].kind
        'unreadable_image'
    """
    bad = 0
    for path in tqdm(frames, desc="decode frames", unit="img", disable=not progress):
        try:
            read_image(path)
        except (OSError, ValueError) as exc:  # missing, truncated, not an image, unsupported values
            bad += 1
            text = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            problems.append(Problem("error", "unreadable_image", f"unlabelled frame: {text}", path))
    return bad


def check_image_files(ds: IUGCDataset, progress: bool, problems: list[Problem]) -> None:
    """Decode every labelled and reference image; record formats, sizes and what is odd.

    Sizes are those of the image as shown (an EXIF orientation applied, as
    :func:`sslkeypoint.data.read_image` reads it), so a label is checked against the pixels it was
    placed in. Unreadable images are ``error`` problems, landmarks outside their image ``warning`` ones, a
    format that differs from the file's extension an ``info``; counts go to ``ds.report``
    (``formats``, ``sizes``, ``format_differs_from_extension``, ``rgb_with_unequal_channels``,
    ``frame_formats`` of the unlabelled frames, sniffed from their first bytes; ``"missing"``
    counts frames that are links to missing files, an ``error`` problem).

    Args:
        ds: The data set read so far.
        progress: Show progress bars.
        problems: Where problems are appended.

    Examples:
        >>> ds = IUGCDataset(root=Path("IUGC2025"))
        >>> check_image_files(ds, progress=False, problems=[])
        >>> ds.report["formats"], ds.report["format_differs_from_extension"]
        ({}, 0)
    """
    formats: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    mismatched = 0
    unequal = 0
    labelled = [r for s in ("train", "validation", "testing") for r in ds.split(s)]
    items: list[tuple[Path, KeypointRecord | None]] = [(Path(r.path), r) for r in labelled]
    items += [(p, None) for p in ds.references]
    for path, rec in tqdm(items, desc="check images", unit="img", disable=not progress):
        try:
            with Image.open(path) as im:
                im.load()
                fmt, mode = im.format or "unknown", im.mode
                arr = np.asarray(im) if mode == "RGB" else None
            height, width = read_image_size(path)  # as shown: an EXIF orientation applied
            size = (width, height)
        except Exception as exc:
            problems.append(Problem("error", "unreadable_image", f"{path}: {exc}", path))
            continue
        formats[fmt] += 1
        sizes[f"{size[0]}x{size[1]}"] += 1
        expected = _SUFFIX_FORMATS.get(path.suffix.lower())
        if expected is not None and fmt != expected:
            mismatched += 1
        if arr is not None and not (np.array_equal(arr[..., 0], arr[..., 1])
                                    and np.array_equal(arr[..., 0], arr[..., 2])):
            unequal += 1
        if rec is not None and rec.keypoints is not None:
            kp = rec.keypoints
            w, h = size
            out = (kp[:, 0] < -0.5) | (kp[:, 0] > w - 0.5) | (kp[:, 1] < -0.5) | (kp[:, 1] > h - 0.5)
            if out.any():
                names = [n for n, o in zip(LANDMARK_NAMES, out) if o]
                problems.append(Problem(
                    "warning", "outside_image",
                    f"{rec.meta['split']}: {rec.meta['filename']!r} landmark(s) {names} outside "
                    f"the {w}x{h} image", path))
    frames = [p for v in ds.sequences.values() for p in v]
    frame_formats = Counter(_sniff(p) for p in tqdm(frames, desc="sniff frames", unit="img",
                                                     disable=not progress))
    ds.report["formats"] = dict(formats)
    ds.report["sizes"] = dict(sizes)
    ds.report["format_differs_from_extension"] = mismatched
    ds.report["rgb_with_unequal_channels"] = unequal
    ds.report["frame_formats"] = dict(frame_formats)
    if frame_formats["missing"]:
        gone = [p for p in frames if not p.exists()]
        problems.append(Problem(
            "error", "missing_image",
            f"unlabelled: {len(gone)} frame(s) are links to missing files (or were deleted), e.g. {gone[0]}; "
            "pre-training skips and counts them", gone[0]))
    if mismatched:
        problems.append(Problem(
            "info", "format_mismatch",
            f"{mismatched} labelled/reference image(s) are not in the format their extension "
            "says (e.g. PNG named .jpg); they are decoded by content"))


def find_duplicates(ds: IUGCDataset, progress: bool, problems: list[Problem]) -> list[DuplicateGroup]:
    """Groups of labelled images with identical bytes, each reported with how its labels differ.

    Args:
        ds: The data set read so far.
        progress: Show a progress bar.
        problems: Where a ``warning`` per group is appended (identical images, disagreeing
            labels, an image in more than one split).

    Returns:
        The groups (images that occur once are in none).

    Examples:
        >>> find_duplicates(IUGCDataset(root=Path("IUGC2025")), progress=False, problems=[])
        []
    """
    by_hash: dict[str, list[KeypointRecord]] = defaultdict(list)
    labelled = [r for s in ("train", "validation", "testing") for r in ds.split(s)]
    for r in tqdm(labelled, desc="hash images", unit="img", disable=not progress):
        by_hash[_hash(Path(r.path))].append(r)
    groups = []
    for digest, recs in by_hash.items():
        if len({Path(r.path) for r in recs}) < 2:
            continue
        kps = np.stack([np.asarray(r.keypoints) for r in recs])
        d = np.linalg.norm(kps[:, None] - kps[None, :], axis=-1)
        aops = [r.meta["aop"] for r in recs if r.meta.get("aop") is not None]
        g = DuplicateGroup(
            digest=digest,
            members=[(r.meta["split"], r.meta["filename"]) for r in recs],
            max_landmark_px=float(d.max()),
            max_aop_deg=float(max(aops) - min(aops)) if len(aops) > 1 else 0.0,
        )
        groups.append(g)
        splits = {s for s, _ in g.members}
        where = ", ".join(f"{s}/{n}" for s, n in g.members)
        msg = f"identical images {where}"
        if g.disagree:
            msg += (f" with disagreeing labels (up to {g.max_landmark_px:.1f} px, "
                    f"{g.max_aop_deg:.2f}° AoP)")
        if len(splits) > 1:
            msg += "; the same image is in more than one split"
        problems.append(Problem("warning", "duplicate", msg, Path(recs[0].path)))
    return groups

"""Reader of the IUGC 2025 data set layout (real or synthetic).

The layout, the file names and the CSV columns are defined once in :mod:`iugc_aop.formats.iugc`;
folder and file names are matched case-insensitively (``Labelled`` = ``Labeled``). Points are
strings such as ``"(301.5, 72.25)"`` in original pixels, ``x`` first; the reader is lenient about
brackets, separators and spaces and strict about the content: exactly two finite numbers, or an
:class:`~iugc_aop.formats.iugc.IUGCFormatError` naming the file, the data row, the CSV line and
the column. Images are decoded by content (about a fifth of the IUGC ``.jpg`` files are PNG
inside). Everything that is odd but not fatal — an AoP label that disagrees with its landmarks,
duplicate images, images without labels, labels without images — is collected in
:attr:`IUGCDataset.problems`.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from iugc_aop.formats.iugc import (
    AOP_COLUMNS,
    AOP_CSV,
    EVAL_SPLIT_DIRS,
    LABELLED_DIR,
    LANDMARKS_COLUMNS,
    LANDMARKS_CSV,
    LAYOUT,
    TRAIN_COLUMNS,
    TRAIN_CSV,
    TRAINING_DIR,
    UNLABELLED_DIR,
    CsvRow,
    IUGCLayoutError,
    is_reference_name,
    normalise_name,
    read_label_csv,
)
from iugc_aop.landmarks import LANDMARK_NAMES, aop_degrees
from sslkeypoint.data import IMAGE_EXTENSIONS, KeypointRecord, natural_sort_key, read_image

__all__ = [
    "AOP_TOLERANCE_DEG",
    "PARTS",
    "DuplicateGroup",
    "IUGCDataset",
    "Problem",
    "read_iugc",
]

#: Parts of the data set :func:`read_iugc` can read.
PARTS = ("train", "unlabeled", "validation", "testing")
#: A labelled AoP further than this from the AoP of its landmarks is reported (degrees).
AOP_TOLERANCE_DEG = 0.01


@dataclass(frozen=True)
class Problem:
    """Something odd found while reading.

    Attributes:
        severity: ``"error"`` (data dropped), ``"warning"`` (kept but suspicious) or ``"info"``.
        kind: Short machine-readable tag, e.g. ``"aop_mismatch"``, ``"duplicate"``.
        message: Human-readable description.
        path: The file concerned, if any.

    Examples:
        >>> str(Problem("warning", "duplicate", "identical images testing/1.jpg, testing/7.jpg"))
        '[warning] duplicate: identical images testing/1.jpg, testing/7.jpg'
    """

    severity: Literal["error", "warning", "info"]
    kind: str
    message: str
    path: Path | None = None

    def __str__(self) -> str:
        return f"[{self.severity}] {self.kind}: {self.message}"


@dataclass(frozen=True)
class DuplicateGroup:
    """Labelled images with identical content (same SHA-256 of the file bytes).

    Attributes:
        digest: Hex SHA-256 of the file content.
        members: ``(split, filename)`` of every copy.
        max_landmark_px: Largest distance between the copies' labels of the same landmark (px).
        max_aop_deg: Largest difference between the copies' AoP labels (degrees).

    Examples:
        >>> DuplicateGroup("ab12", [("testing", "1.jpg"), ("testing", "7.jpg")], 4.5, 1.2).disagree
        True
    """

    digest: str
    members: list[tuple[str, str]]
    max_landmark_px: float
    max_aop_deg: float

    @property
    def disagree(self) -> bool:
        """Whether the copies carry different labels."""
        return self.max_landmark_px > 1e-6 or self.max_aop_deg > AOP_TOLERANCE_DEG


@dataclass
class IUGCDataset:
    """What :func:`read_iugc` found.

    Attributes:
        root: The data set's root folder.
        train: Labelled training images.
        validation: Validation images.
        testing: Testing images.
        sequences: Unlabelled videos: name (path relative to ``Unlabeled cases``, ``/``-separated)
            → frames sorted naturally by file name.
        references: ``ExampleN.jpg`` standard-plane reference images, sorted naturally.
        problems: Everything odd that was found.
        duplicates: Groups of labelled images with identical content.
        report: Counts (images per split, image formats, sizes, ...).

    Each record has ``keypoints`` ``(3, 2)`` float64 in original pixels in the order PS1, PS2, FH1
    and ``meta`` with ``aop`` (the label, degrees, or ``None``), ``aop_landmarks`` (computed from
    the landmarks), ``split``, ``filename`` and ``row`` (1-based data row of the CSV).

    Examples:
        >>> ds = IUGCDataset(root=Path("IUGC2025"))
        >>> ds.num_frames, ds.split("testing")
        (0, [])
    """

    root: Path
    train: list[KeypointRecord] = field(default_factory=list)
    validation: list[KeypointRecord] = field(default_factory=list)
    testing: list[KeypointRecord] = field(default_factory=list)
    sequences: dict[str, list[Path]] = field(default_factory=dict)
    references: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[KeypointRecord]:
        """Records of ``"train"``, ``"validation"`` or ``"testing"``."""
        if name not in ("train", "validation", "testing"):
            raise ValueError(f"unknown split {name!r}; expected 'train', 'validation' or 'testing'")
        return list(getattr(self, name))

    @property
    def num_frames(self) -> int:
        """Number of unlabelled frames over all sequences."""
        return sum(len(v) for v in self.sequences.values())

    def summary(self) -> str:
        """A short human-readable report of what was found and every problem."""
        lines = [f"IUGC data at {self.root}"]
        for split in ("train", "validation", "testing"):
            recs = self.split(split)
            if not recs:
                lines.append(f"  {split:<11} 0 labelled images")
                continue
            aop = np.array([r.meta["aop"] for r in recs if r.meta.get("aop") is not None])
            stats = (f"AoP {aop.mean():.1f}° (range {aop.min():.1f}–{aop.max():.1f}°)"
                     if aop.size else "no AoP labels")
            lines.append(f"  {split:<11} {len(recs)} labelled images, {stats}")
        lens = [len(v) for v in self.sequences.values()]
        lines.append(
            f"  unlabelled  {len(self.sequences)} sequences, {sum(lens)} frames"
            + (f" ({min(lens)}–{max(lens)} per sequence)" if lens else "")
            + f", {len(self.references)} reference images"
        )
        fmt = self.report.get("formats")
        if fmt:
            lines.append("  formats     " + ", ".join(f"{k}: {v}" for k, v in sorted(fmt.items())))
        sizes = self.report.get("sizes")
        if sizes:
            lines.append("  sizes       " + ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())))
        if self.duplicates:
            n_dis = sum(g.disagree for g in self.duplicates)
            lines.append(f"  duplicates  {len(self.duplicates)} groups, {n_dis} with disagreeing labels")
        counts = Counter(p.severity for p in self.problems)
        lines.append(
            f"  problems    {counts.get('error', 0)} errors, {counts.get('warning', 0)} warnings, "
            f"{counts.get('info', 0)} notes"
        )
        lines.extend(f"    {p}" for p in self.problems)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Layout discovery
# --------------------------------------------------------------------------------------------


def _child(parent: Path, *names: str) -> Path | None:
    """The child folder/file of ``parent`` whose normalised name is one of ``names``."""
    if not parent.is_dir():
        return None
    wanted = {normalise_name(n) for n in names}
    for p in sorted(parent.iterdir()):
        if normalise_name(p.name) in wanted:
            return p
    return None


_IMAGE_SUFFIXES = frozenset(IMAGE_EXTENSIONS)


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in _IMAGE_SUFFIXES and not p.name.startswith(".")


class _ImageIndex:
    """Finds the image file of a CSV ``Filename`` in a split folder (or its ``images/``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        self.by_stem: dict[str, list[Path]] = defaultdict(list)
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__MACOSX")))
            for fn in filenames:
                p = Path(dirpath) / fn
                if _is_image(p):
                    self.by_name[fn.lower()].append(p)
                    self.by_stem[p.stem.lower()].append(p)
        self.used: set[Path] = set()

    def all(self) -> list[Path]:
        return sorted({p for ps in self.by_name.values() for p in ps})

    def find(self, filename: str) -> Path | None:
        name = filename.strip().replace("\\", "/")
        for cand in (self.folder / name, self.folder / "images" / name):
            if cand.is_file():
                return cand
        base = name.rsplit("/", 1)[-1].lower()
        for table, key in ((self.by_name, base), (self.by_stem, Path(base).stem)):
            hits = table.get(key, [])
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:  # prefer the shallowest copy
                return min(hits, key=lambda p: (len(p.parts), str(p)))
        return None


def _check_layout(root: Path, parts: Collection[str]) -> dict[str, Path]:
    """Locate every folder/file of the requested parts; one error listing all that is missing."""
    if not root.is_dir():
        raise IUGCLayoutError(
            f"IUGC data folder not found: {root}\nExpected a folder laid out as:\n{LAYOUT}"
        )
    found: dict[str, Path] = {}
    missing: list[str] = []
    training = _child(root, *TRAINING_DIR)
    if {"train", "unlabeled"} & set(parts):
        if training is None:
            missing.append(f"{root / TRAINING_DIR[0]}/ (folder)")
    if "train" in parts and training is not None:
        labelled = _child(training, *LABELLED_DIR)
        if labelled is None:
            missing.append(f"{training / LABELLED_DIR[0]}/ (folder)")
        else:
            found["train_dir"] = labelled
            csv_path = _child(labelled, *TRAIN_CSV)
            if csv_path is None:
                csvs = sorted(labelled.glob("*.csv"))
                csv_path = csvs[0] if len(csvs) == 1 else None
            if csv_path is None:
                missing.append(f"{labelled / TRAIN_CSV[0]} ({', '.join(TRAIN_COLUMNS)})")
            else:
                found["train_csv"] = csv_path
    if "unlabeled" in parts and training is not None:
        unlabelled = _child(training, *UNLABELLED_DIR)
        if unlabelled is None:
            missing.append(f"{training / UNLABELLED_DIR[0]}/ (folder of video folders)")
        else:
            found["unlabeled_dir"] = unlabelled
    for split, names in EVAL_SPLIT_DIRS.items():
        if split not in parts:
            continue
        folder = _child(root, *names)
        if folder is None:
            missing.append(f"{root / names[0]}/ (folder)")
            continue
        found[f"{split}_dir"] = folder
        for key, fname, cols in (
            ("landmarks", LANDMARKS_CSV, ", ".join(LANDMARKS_COLUMNS)),
            ("aop", AOP_CSV, ", ".join(AOP_COLUMNS)),
        ):
            p = _child(folder, fname)
            if p is None:
                missing.append(f"{folder / fname} ({cols})")
            else:
                found[f"{split}_{key}"] = p
    if missing:
        raise IUGCLayoutError(
            f"IUGC data at {root} is incomplete; missing:\n"
            + "\n".join(f"  - {m}" for m in missing)
            + f"\nExpected layout:\n{LAYOUT}"
        )
    return found


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _record(
    split: str, path: Path, filename: str, row: int, kp: np.ndarray, aop: float | None
) -> KeypointRecord:
    return KeypointRecord(
        path=path,
        keypoints=kp,
        meta={"split": split, "filename": filename, "row": row, "aop": aop,
              "aop_landmarks": aop_degrees(kp)},
    )


def _read_labelled(
    split: str,
    folder: Path,
    rows_with_aop: Sequence[tuple[CsvRow, str, np.ndarray, float | None]],
    problems: list[Problem],
) -> list[KeypointRecord]:
    index = _ImageIndex(folder)
    records: list[KeypointRecord] = []
    seen: dict[str, int] = {}
    for row, filename, kp, aop in rows_with_aop:
        if filename in seen:
            problems.append(Problem(
                "warning", "repeated_filename",
                f"{split}: {filename!r} is labelled twice (data rows {seen[filename]} and "
                f"{row.row}); both kept", folder / filename))
        seen.setdefault(filename, row.row)
        img = index.find(filename)
        if img is None:
            problems.append(Problem(
                "error", "missing_image",
                f"{split}: no image for {filename!r} (data row {row.row}) in {folder} "
                "or its subfolders; record dropped", folder / filename))
            continue
        index.used.add(img)
        rec = _record(split, img, filename, row.row, kp, aop)
        if aop is not None and abs(rec.meta["aop_landmarks"] - aop) > AOP_TOLERANCE_DEG:
            problems.append(Problem(
                "warning", "aop_mismatch",
                f"{split}: {filename!r} (data row {row.row}) AoP label {aop:.4f}° but its "
                f"landmarks give {rec.meta['aop_landmarks']:.4f}° "
                f"(difference {abs(rec.meta['aop_landmarks'] - aop):.4f}°)", img))
        if kp[0, 0] <= kp[1, 0]:
            problems.append(Problem(
                "warning", "ps_order",
                f"{split}: {filename!r} (data row {row.row}) has PS1.x <= PS2.x; PS1 is expected "
                "to be the right end of the symphysis", img))
        records.append(rec)
    unlabelled = [p for p in index.all() if p not in index.used]
    if unlabelled:
        problems.append(Problem(
            "info", "unlabelled_image",
            f"{split}: {len(unlabelled)} image(s) in {folder} have no label, e.g. "
            f"{unlabelled[0].name}", unlabelled[0]))
    return records


def _read_train(found: dict[str, Path], problems: list[Problem]) -> list[KeypointRecord]:
    parsed = []
    for row in read_label_csv(found["train_csv"], ("filename", *LANDMARK_NAMES, "AOP")):
        kp = row.landmarks()
        parsed.append((row, row.cells["filename"].strip(), kp, row.number("AOP")))
    return _read_labelled("train", found["train_dir"], parsed, problems)


def _read_eval_split(
    split: str, found: dict[str, Path], problems: list[Problem]
) -> list[KeypointRecord]:
    lpath, apath = found[f"{split}_landmarks"], found[f"{split}_aop"]
    aops: dict[str, float] = {}
    for row in read_label_csv(apath, ("filename", "AOP")):
        aops[row.cells["filename"].strip()] = row.number("AOP")
    parsed = []
    named = set()
    for row in read_label_csv(lpath, ("filename", *LANDMARK_NAMES)):
        name = row.cells["filename"].strip()
        named.add(name)
        kp = row.landmarks()
        aop = aops.get(name)
        if aop is None:
            problems.append(Problem(
                "warning", "missing_aop",
                f"{split}: {name!r} (data row {row.row} of {lpath.name}) has no AoP in "
                f"{apath.name}; its 'aop' is None", lpath))
        parsed.append((row, name, kp, aop))
    extra = sorted(set(aops) - named, key=natural_sort_key)
    if extra:
        problems.append(Problem(
            "warning", "missing_landmarks",
            f"{split}: {len(extra)} file(s) in {apath.name} have no landmarks in {lpath.name}, "
            f"e.g. {extra[0]!r}; ignored", apath))
    return _read_labelled(split, found[f"{split}_dir"], parsed, problems)


def _read_unlabelled(
    folder: Path, problems: list[Problem]
) -> tuple[dict[str, list[Path]], list[Path]]:
    sequences: dict[str, list[Path]] = {}
    references: list[Path] = []
    loose: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "__MACOSX")))
        here = Path(dirpath)
        images = sorted((here / f for f in filenames if _is_image(here / f)),
                        key=lambda p: natural_sort_key(p.name))
        if not images:
            continue
        if here == folder:
            references = [p for p in images if is_reference_name(p.stem)]
            loose = [p for p in images if not is_reference_name(p.stem)]
        else:
            sequences[here.relative_to(folder).as_posix()] = images
    if loose:
        sequences["."] = loose
        problems.append(Problem(
            "info", "loose_frames",
            f"unlabelled: {len(loose)} image(s) at the top level of {folder} that are not "
            "ExampleN references; kept as the sequence '.'", folder))
    single = [k for k, v in sequences.items() if len(v) == 1]
    if single:
        problems.append(Problem(
            "info", "single_frame_sequence",
            f"unlabelled: {len(single)} sequence folder(s) hold a single frame, e.g. {single[0]!r}",
            folder / single[0]))
    if not sequences:
        problems.append(Problem("warning", "no_frames", f"unlabelled: no frames under {folder}",
                                folder))
    ordered = dict(sorted(sequences.items(), key=lambda kv: natural_sort_key(kv[0])))
    return ordered, references


_SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP",
                   ".tif": "TIFF", ".tiff": "TIFF"}


def _sniff(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89PNG"):
        return "PNG"
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    return "other"


def _hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decode_frames(frames: Sequence[Path], progress: bool, problems: list[Problem]) -> int:
    """Decode every frame as pre-training reads it; one ``unreadable_image`` error per bad file."""
    bad = 0
    for path in tqdm(frames, desc="decode frames", unit="img", disable=not progress):
        try:
            read_image(path)
        except (OSError, ValueError) as exc:  # missing, truncated, not an image, unsupported values
            bad += 1
            text = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            problems.append(Problem("error", "unreadable_image", f"unlabelled frame: {text}", path))
    return bad


def _check_images(
    ds: IUGCDataset, progress: bool, problems: list[Problem]
) -> None:
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
                fmt, size, mode = im.format or "unknown", im.size, im.mode
                arr = np.asarray(im) if mode == "RGB" else None
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
    if mismatched:
        problems.append(Problem(
            "info", "format_mismatch",
            f"{mismatched} labelled/reference image(s) are not in the format their extension "
            "says (e.g. PNG named .jpg); they are decoded by content"))


def _find_duplicates(
    ds: IUGCDataset, progress: bool, problems: list[Problem]
) -> list[DuplicateGroup]:
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


def read_iugc(
    root: str | os.PathLike[str],
    *,
    parts: Collection[str] = PARTS,
    check_images: bool = True,
    check_frames: bool = False,
    progress: bool = True,
) -> IUGCDataset:
    """Read an IUGC 2025 data set (or a synthetic one written in the same layout).

    Args:
        root: Folder holding ``Training/``, ``Validation/`` and ``Testing/``.
        parts: Which of ``"train"``, ``"unlabeled"``, ``"validation"``, ``"testing"`` to read;
            only their files are required.
        check_images: Decode every labelled and reference image (format by content, size,
            equal channels, landmarks inside the image) and sniff the format of every frame.
            Without it, only the file bytes are hashed (for duplicates).
        check_frames: Also decode every unlabelled frame completely, as pre-training reads it
            (:func:`sslkeypoint.data.read_image`): a truncated or corrupt frame is an
            ``unreadable_image`` error naming the file and the reason. Takes about one pass of
            pre-training's reading; ``report["unreadable_frames"]`` counts them.
        progress: Show progress bars.

    Returns:
        An :class:`IUGCDataset`.

    Raises:
        IUGCLayoutError: A required folder or file is missing (all missing items listed).
        IUGCFormatError: A CSV file lacks a column or a cell cannot be parsed (file, row, line
            and column named).

    Examples:
        >>> import tempfile
        >>> from iugc_aop.formats.iugc import split_dir, unlabelled_dir, write_split_labels
        >>> root = Path(tempfile.mkdtemp())
        >>> kp = [[300.0, 80.0], [200.0, 80.0], [300.0, 200.0]]
        >>> for k, split in enumerate(("train", "validation", "testing")):
        ...     split_dir(root, split).mkdir(parents=True)
        ...     Image.new("RGB", (512, 512), (k, k, k)).save(split_dir(root, split) / "1.jpg")
        ...     _ = write_split_labels(root, split, [("1.jpg", kp, 90.0)])
        >>> (unlabelled_dir(root) / "video_1").mkdir(parents=True)
        >>> for f in (1, 2):
        ...     Image.new("RGB", (512, 512)).save(unlabelled_dir(root) / "video_1" / f"frame_{f}.jpg")
        >>> ds = read_iugc(root, progress=False)
        >>> ds.train[0].keypoints.tolist()[0], ds.testing[0].meta["aop"], ds.num_frames
        ([300.0, 80.0], 90.0, 2)
        >>> [p.severity for p in ds.problems]
        []
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}; expected some of {list(PARTS)}")
    root = Path(root)
    found = _check_layout(root, parts)
    problems: list[Problem] = []
    ds = IUGCDataset(root=root)
    if "train" in parts:
        ds.train = _read_train(found, problems)
    if "validation" in parts:
        ds.validation = _read_eval_split("validation", found, problems)
    if "testing" in parts:
        ds.testing = _read_eval_split("testing", found, problems)
    if "unlabeled" in parts:
        ds.sequences, ds.references = _read_unlabelled(found["unlabeled_dir"], problems)
    ds.duplicates = _find_duplicates(ds, progress, problems)
    if check_images:
        _check_images(ds, progress, problems)
    if check_frames:
        frames = [p for v in ds.sequences.values() for p in v]
        ds.report["unreadable_frames"] = _decode_frames(frames, progress, problems)
    ds.report.update(
        parts=list(parts),
        labelled={s: len(ds.split(s)) for s in ("train", "validation", "testing")},
        sequences=len(ds.sequences),
        frames=ds.num_frames,
        references=len(ds.references),
        aop_mismatches=sum(p.kind == "aop_mismatch" for p in problems),
    )
    ds.problems = problems
    return ds

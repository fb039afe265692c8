"""Reader of the IUGC 2025 data set layout (real or synthetic).

The layout, the file names and the CSV columns are defined once in :mod:`iugc_aop.formats.iugc`;
folder and file names are matched case-insensitively (``Labelled`` = ``Labeled``). Points are
strings such as ``"(301.5, 72.25)"`` in original pixels, ``x`` first; the reader is lenient about
brackets, separators and spaces and strict about the content: exactly two finite numbers, or an
:class:`~iugc_aop.formats.iugc.IUGCFormatError` naming the file, the data row, the CSV line and
the column. Images are decoded by content (about a fifth of the IUGC ``.jpg`` files are PNG
inside). Everything that is odd but not fatal — an AoP label that disagrees with its landmarks,
duplicate images, one image labelled on two rows (``repeated_filename``, or ``repeated_image``
when the rows spell its name differently, e.g. ``1.jpg`` and ``./1.JPG``), images without labels,
labels without images — is collected in :attr:`IUGCDataset.problems`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from iugc_aop.formats.checks import check_image_files, decode_frames, find_duplicates
from iugc_aop.formats.dataset import AOP_TOLERANCE_DEG, IUGCDataset, Problem
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
from sslkeypoint.data import IMAGE_EXTENSIONS, KeypointRecord, natural_sort_key

__all__ = ["PARTS", "read_iugc"]

#: Parts of the data set :func:`read_iugc` can read.
PARTS = ("train", "unlabeled", "validation", "testing")


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
            f"IUGC data folder {'is a file, not a folder' if root.exists() else 'not found'}: {root}\n"
            f"Expected a folder laid out as:\n{LAYOUT}"
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
    found: dict[Path, tuple[int, str]] = {}
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
        if not img.exists():  # a link to a missing file
            problems.append(Problem(
                "error", "missing_image",
                f"{split}: the image of {filename!r} (data row {row.row}) is a link to a missing file "
                f"({os.readlink(img)}); record dropped", img))
            continue
        first = found.setdefault(img.resolve(), (row.row, filename))
        if first[1] != filename:  # one image under two spellings (case, ./, a sub-folder)
            problems.append(Problem(
                "warning", "repeated_image",
                f"{split}: data rows {first[0]} and {row.row} both label {img.name} (as {first[1]!r} and "
                f"{filename!r}); both kept", img))
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
        >>> from PIL import Image
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
    ds.duplicates = find_duplicates(ds, progress, problems)
    if check_images:
        check_image_files(ds, progress, problems)
    if check_frames:
        frames = [p for v in ds.sequences.values() for p in v]
        ds.report["unreadable_frames"] = decode_frames(frames, progress, problems)
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

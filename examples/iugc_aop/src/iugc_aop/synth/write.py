"""Writing a whole synthetic data set in the IUGC 2025 layout, rendered in parallel processes.

:func:`write_synthetic_iugc` samples the labels (:mod:`iugc_aop.synth.labels`), renders every
frame (:mod:`iugc_aop.synth.render`) and writes the images, the label files in the released
format (:mod:`iugc_aop.formats.iugc`, so the real reader is what runs on them) and
``synthetic_truth.json`` (:mod:`iugc_aop.formats.truth`). It draws nothing else: the contact
sheet is :func:`iugc_aop.plotting.contact_sheet`'s.

It writes only into a folder that is new, empty, or one it wrote itself
(:func:`check_synthetic_folder`): a folder holding anything else — a copy of the real IUGC data,
say — is refused with :class:`SyntheticFolderError` and left untouched. While it writes, the marker
:data:`WRITING_NAME` sits at the root (written first, removed after ``synthetic_truth.json``), so an
interrupted run still leaves a folder recognised as the generator's, which the next run rewrites.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from iugc_aop.formats.iugc import (
    SPLITS,
    reference_filename,
    split_dir,
    unlabelled_dir,
    write_split_labels,
)
from iugc_aop.formats.truth import TRUTH_NAME, load_truth, write_truth
from iugc_aop.landmarks import LANDMARK_NAMES, aop_degrees
from iugc_aop.synth.labels import (
    Scene,
    SynthConfig,
    sample_duplicates,
    sample_labels,
    sample_references,
    sample_sequences,
)
from iugc_aop.synth.render import render_scene
from iugc_aop.synth.scene import Fan
from sslkeypoint.atomic import write_text_atomic

__all__ = [
    "WRITING_NAME",
    "SynthResult",
    "SyntheticFolderError",
    "check_synthetic_folder",
    "holds_synthetic_iugc",
    "write_synthetic_iugc",
]

#: Marker at the root of a synthetic data set while it is being written.
WRITING_NAME = "synthetic_writing.json"


class SyntheticFolderError(ValueError):
    """A folder the synthetic-data generator will not write into: it holds files it did not make."""


def _written_files(node: Any) -> Iterator[str]:
    """Every ``"file"`` entry of a ``synthetic_truth.json`` (the images the generator wrote)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "file" and isinstance(value, str):
                yield value
            else:
                yield from _written_files(value)
    elif isinstance(node, list):
        for value in node:
            yield from _written_files(value)


def _remove_written(root: Path) -> None:
    """Remove the images a previous data set in ``root`` listed in its truth file, then empty folders.

    A data set written again with a smaller configuration must not keep the larger one's extra
    images (a stale video would be pre-trained on); files the generator did not list stay.
    """
    try:
        truth = json.loads((root / TRUTH_NAME).read_text())
    except (OSError, ValueError):
        return
    folders = set()
    for rel in _written_files(truth):
        path = (root / rel).resolve()
        if path.is_file() and path.is_relative_to(root.resolve()):
            path.unlink()
            folders.add(path.parent)
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        while folder != root.resolve() and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _entries(root: Path, limit: int = 6) -> str:
    """``"Testing/, Training/, notes.txt"`` (the first ``limit`` entries of a folder, and how many)."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names)} entries)" if len(names) > limit else "")


def check_synthetic_folder(out: str | os.PathLike[str]) -> Literal["new", "complete", "interrupted"]:
    """Whether :func:`write_synthetic_iugc` may write into ``out``, and what is there.

    Args:
        out: The intended root folder.

    Returns:
        ``"new"`` (absent or empty), ``"complete"`` (a data set of the generator: it holds
        ``synthetic_truth.json``) or ``"interrupted"`` (a run of the generator stopped before the
        end: it holds :data:`WRITING_NAME`).

    Raises:
        SyntheticFolderError: If ``out`` is a file, or a folder holding files but neither marker
            (the message names the folder and what it holds).

    Examples:
        >>> import tempfile, pathlib
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> check_synthetic_folder(root / "new"), check_synthetic_folder(root)
        ('new', 'new')
        >>> _ = (root / "label.csv").write_text("Filename,PS1,PS2,FH1,AOP\\n")
        >>> check_synthetic_folder(root)
        Traceback (most recent call last):
        ...
        iugc_aop.synth.write.SyntheticFolderError: ... holds label.csv but no synthetic_truth.json: ...
    """
    root = Path(out)
    if not root.exists():
        return "new"
    if not root.is_dir():
        raise SyntheticFolderError(f"{root} is a file, not a folder: synthetic data needs a folder; nothing was written")
    if (root / TRUTH_NAME).is_file():
        return "complete"
    if (root / WRITING_NAME).is_file():
        return "interrupted"
    if not any(root.iterdir()):
        return "new"
    raise SyntheticFolderError(
        f"{root} holds {_entries(root)} but no {TRUTH_NAME}: it is not a synthetic data set written "
        "by this generator, so nothing was written into it (writing would replace label.csv, 1.jpg, … "
        "of whatever data is there). Choose a new or empty folder for synthetic data; to read the "
        "folder as IUGC data, give it as the data root (--data on the command line)."
    )


def _encode(gray: np.ndarray, fmt: str, quality: int) -> bytes:
    img = Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2), mode="RGB")
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=3)
    else:
        img.save(buf, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return buf.getvalue()


@dataclass(frozen=True)
class _Job:
    path: str
    scene: Scene
    fmt: str
    quality: int
    fan: Fan


def _run_job(job: _Job) -> int:
    data = _encode(render_scene(job.scene, job.fan), job.fmt, job.quality)
    Path(job.path).write_bytes(data)
    return len(data)


def _iter_jobs(jobs: list[_Job], workers: int) -> Iterator[int]:
    if workers <= 1:
        for job in jobs:
            yield _run_job(job)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(_run_job, jobs, chunksize=4)


def _formats(n: int, fraction: float, rng: np.random.Generator) -> list[str]:
    """A seeded share ``fraction`` of ``n`` files is PNG inside, the rest JPEG."""
    png = set(rng.permutation(n)[: round(fraction * n)].tolist())
    return ["PNG" if i in png else "JPEG" for i in range(n)]


@dataclass(frozen=True)
class SynthResult:
    """What :func:`write_synthetic_iugc` wrote.

    Attributes:
        root: The data set's root folder.
        images: Number of image files written.
        png: How many of them are PNG inside.
        seconds: Wall time of the whole run.
        truth_path: The ``synthetic_truth.json`` file.
    """

    root: Path
    images: int
    png: int
    seconds: float
    truth_path: Path


def holds_synthetic_iugc(out: str | os.PathLike[str], config: SynthConfig, seed: int) -> bool:
    """Whether ``out`` already holds the complete data set of ``config`` and ``seed`` (reuse it).

    Raises:
        SyntheticFolderError: If ``out`` holds files the generator did not write
            (:func:`check_synthetic_folder`).

    Examples:
        >>> import tempfile
        >>> holds_synthetic_iugc(tempfile.mkdtemp(), SynthConfig.preset("smoke"), seed=0)
        False
    """
    if check_synthetic_folder(out) != "complete":
        return False
    truth = load_truth(Path(out))
    wanted = json.loads(json.dumps(config.to_dict()))
    return truth is not None and truth.get("seed") == seed and truth.get("config") == wanted


def write_synthetic_iugc(
    out: str | os.PathLike[str],
    config: SynthConfig | None = None,
    seed: int = 0,
    progress: bool = True,
    *,
    workers: int = 1,
) -> SynthResult:
    """Write a synthetic data set in the IUGC 2025 layout.

    Layout written (``N`` counts from ``config``; every image is named ``.jpg``, a seeded share
    ``config.png_fraction`` is PNG inside)::

        out/Training/Labeled cases/label.csv          Filename, PS1, PS2, FH1, AOP
        out/Training/Labeled cases/1.jpg ...
        out/Training/Unlabeled cases/Example1.jpg ...  standard-plane references
        out/Training/Unlabeled cases/video_1/frame_1.jpg ...
        out/Validation/landmarks_data.csv              Filename, PS1, PS2, AOP Tangency
        out/Validation/aop_results.csv                 Filename, AOP
        out/Validation/1.jpg ...
        out/Testing/...                                as Validation, with duplicates
        out/synthetic_truth.json                       drawn geometry (not in the real layout)

    Points are written as ``"(x, y)"`` with 4 decimals, the AoP with 6 decimals, computed with
    :func:`sslkeypoint.geometry.angle_of_progression` from the written points. The same seed
    gives byte-identical files, whatever the number of workers.

    Args:
        out: Root folder: new, empty, or a data set this function wrote before (the images its
            ``synthetic_truth.json`` lists are removed first, so none of a larger earlier data set
            stays behind); any other folder is refused (:func:`check_synthetic_folder`).
        config: Sizes and distributions; the ``quick`` preset when ``None``.
        seed: Seed of the whole data set.
        progress: Show a progress bar.
        workers: Processes that render in parallel (1 renders in this process).

    Returns:
        A :class:`SynthResult`.

    Raises:
        SyntheticFolderError: If ``out`` holds files this generator did not write (nothing is
            written).

    Examples:
        >>> import tempfile
        >>> from iugc_aop.synth.labels import SynthConfig
        >>> config = SynthConfig(train=2, validation=1, testing=1, sequences=1, frames=2,
        ...                      references=1, test_duplicates=0)
        >>> res = write_synthetic_iugc(tempfile.mkdtemp(), config, progress=False)
        >>> res.images, res.truth_path.name
        (7, 'synthetic_truth.json')
    """
    start = time.perf_counter()
    config = config or SynthConfig()
    root = Path(out)
    if check_synthetic_folder(root) == "complete":
        _remove_written(root)
    root.mkdir(parents=True, exist_ok=True)
    # Marked as the generator's before anything else is touched; the truth file goes next.
    marker = {"generator": "iugc_aop.synth", "seed": seed, "config": config.to_dict()}
    write_text_atomic(root / WRITING_NAME, json.dumps(marker, indent=1) + "\n")
    (root / TRUTH_NAME).unlink(missing_ok=True)
    split_dirs = {split: split_dir(root, split) for split in SPLITS}
    unlabelled = unlabelled_dir(root)
    for d in (split_dirs["train"], unlabelled, split_dirs["validation"], split_dirs["testing"]):
        d.mkdir(parents=True, exist_ok=True)

    labels = sample_labels(config, seed)
    sequences = sample_sequences(config, seed)
    fmt_rng = np.random.default_rng([seed, 99])
    jobs: list[_Job] = []
    truth: dict[str, Any] = {
        "generator": "iugc_aop.synth",
        "format_version": 1,
        "seed": seed,
        "config": config.to_dict(),
        "landmark_order": list(LANDMARK_NAMES),
        "labelled": {},
        "sequences": {},
        "references": [],
    }

    def add(path: Path, scene: Scene, fmt: str) -> dict[str, Any]:
        jobs.append(_Job(str(path), scene, fmt, config.jpeg_quality, config.fan))
        return {"file": path.relative_to(root).as_posix(), "format": fmt, **scene.truth()}

    # Labelled splits.
    for split, scenes in labels.items():
        duplicates = sample_duplicates(config, seed, scenes) if split == "testing" else []
        formats = _formats(len(scenes) + len(duplicates), config.png_fraction, fmt_rng)
        entries, rows = [], []
        for i, scene in enumerate(scenes):
            name = f"{i + 1}.jpg"
            entry = add(split_dirs[split] / name, scene, formats[i])
            entry.update(filename=name, duplicate_of=None)
            entries.append(entry)
            kp = scene.keypoints
            assert kp is not None
            rows.append((name, kp, aop_degrees(kp)))
        for k, (src, kp) in enumerate(duplicates):
            # A second reading of the same image: the same pixels, moved landmarks.
            name = f"{len(scenes) + k + 1}.jpg"
            scene = scenes[src]
            path = split_dirs[split] / name
            jobs.append(_Job(str(path), scene, formats[src], config.jpeg_quality, config.fan))
            entries.append({
                "file": path.relative_to(root).as_posix(),
                "format": formats[src], **scene.truth(),
                "filename": name, "duplicate_of": f"{src + 1}.jpg",
                "ps1": kp[0].tolist(), "ps2": kp[1].tolist(), "fh1": kp[2].tolist(),
                "aop": aop_degrees(kp), "relabelled": True,
            })
            rows.append((name, kp, aop_degrees(kp)))
        truth["labelled"][split] = entries
        write_split_labels(root, split, rows)

    # References and videos.
    ref_formats = _formats(config.references, config.png_fraction, fmt_rng)
    for i, scene in enumerate(sample_references(config, seed)):
        truth["references"].append(
            add(unlabelled / reference_filename(i + 1), scene, ref_formats[i]))
    n_frames = sum(len(s.frames) for s in sequences)
    frame_formats = iter(_formats(n_frames, config.png_fraction, fmt_rng))
    for seq in sequences:
        folder = unlabelled / seq.name
        folder.mkdir(exist_ok=True)
        truth["sequences"][seq.name] = {
            "good": seq.good,
            "kind": seq.kind,
            "frames": [add(folder / f"frame_{f + 1}.jpg", scene, next(frame_formats))
                       for f, scene in enumerate(seq.frames)],
        }

    n_png = 0
    bar = tqdm(total=len(jobs), desc="synth", unit="img", disable=not progress)
    for job, _ in zip(jobs, _iter_jobs(jobs, workers)):
        n_png += job.fmt == "PNG"
        bar.update(1)
    bar.close()
    # Written last: its presence marks a complete data set.
    truth_path = write_truth(root, truth)
    (root / WRITING_NAME).unlink()
    return SynthResult(root, len(jobs), n_png, time.perf_counter() - start, truth_path)

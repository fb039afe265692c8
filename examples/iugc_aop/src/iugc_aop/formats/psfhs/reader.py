"""Reading a PSFHS folder as a data set: splits by similarity group and a training-label budget.

:func:`read_psfhs` reads every case (:func:`~iugc_aop.formats.psfhs.read_psfhs_cases`), splits the
measured cases by similarity group, never by case, so no near-duplicate of an evaluation image is
trained on, keeps the labels of a seeded subset of the training cases when asked, and assembles an
:class:`~iugc_aop.formats.dataset.IUGCDataset`.
"""

from __future__ import annotations

import os
from numbers import Integral
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from iugc_aop.formats.dataset import IUGCDataset, Problem
from iugc_aop.formats.psfhs.cases import read_psfhs_cases
from iugc_aop.formats.psfhs.mha import _cached_png
from sslkeypoint.data import KeypointRecord, split_records
from sslkeypoint.geometry import angle_of_progression

__all__ = ["read_psfhs"]


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be in [0, 1); got {value!r}")


def _split_by_group(
    items: list[int], groups: list[int], fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    if fraction == 0:
        return items, []
    return split_records(items, val_fraction=fraction, seed=seed, group=lambda i: groups[i])


def read_psfhs(
    root: str | os.PathLike[str],
    *,
    labels: int | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> IUGCDataset:
    """Read a PSFHS folder as a data set split by similarity group.

    The measured cases (:func:`~iugc_aop.formats.psfhs.read_psfhs_cases`) are split by group,
    never by case, with :func:`sslkeypoint.data.split_records`: ``round(test_fraction · groups)``
    groups (at least one) go to ``testing``, then ``round(val_fraction · remaining groups)`` to
    ``validation`` and the rest to ``train``; both permutations come from ``seed``. With
    ``labels=N`` only ``N`` training cases keep their labels: the first ``N`` of
    ``numpy.random.default_rng(seed).permutation(len(train))``, kept in id order — so for one
    seed a smaller budget is a subset of a larger one. Validation and testing stay whole.

    ``unlabelled`` holds the images of every case of the training groups (labelled or not, and
    cases skipped for their mask), never an image of a validation or testing group: unordered
    frames for stage 1 (pre-training) only.

    Each record has ``keypoints`` ``(3, 2)`` float64 in image pixels (PS1, PS2, FH1) and
    ``meta`` with ``split``, ``filename`` (the source image's file name), ``row`` (data row of
    ``cases.csv`` or ``None``), ``aop`` and ``aop_landmarks`` (both the AoP of the landmarks,
    degrees: PSFHS has no separate AoP label), ``case`` and ``group``. The landmarks are derived
    from expert masks, not placed by experts as points.

    Args:
        root: PSFHS folder (:data:`~iugc_aop.formats.psfhs.layout.LAYOUT`).
        labels: Number of labelled training cases to keep (``None``: all).
        seed: Seed of the group splits and of the label draw.
        test_fraction: Share of the groups for testing, in ``[0, 1)``; 0 gives no testing split.
        val_fraction: Share of the remaining groups for validation, in ``[0, 1)``.
        cache_dir: Folder for PNG copies of the ``.mha`` frames (the training code reads images
            by path with :func:`sslkeypoint.data.read_image`, which cannot decode MetaImage).
            Required for the ``.mha`` layout, unused for PNG. A copy is written atomically and
            reused while the source's path, size and modification time are unchanged; a file of
            the folder that is not such a copy is never overwritten. Use one folder per data set.
        progress: Show progress bars.

    Returns:
        An :class:`~iugc_aop.formats.dataset.IUGCDataset` with ``train``, ``validation``,
        ``testing``, ``unlabelled``, ``problems`` (every skipped case) and ``report`` (counts:
        ``layout``, ``cases``, ``measured``, ``groups``, ``group_source``, ``skipped`` and
        ``skipped_cases`` (case → reason), ``labelled`` and ``groups_per_split`` per split,
        ``train_cases`` before the label budget, ``labels``, ``unlabelled``, ``seed``,
        ``test_fraction``, ``val_fraction``).

    Raises:
        PSFHSLayoutError: See :func:`~iugc_aop.formats.psfhs.read_psfhs_cases`; also a file in
            ``cache_dir`` that is not a copy written here.
        PSFHSFormatError: See :func:`~iugc_aop.formats.psfhs.read_psfhs_cases`.
        ValueError: A fraction outside ``[0, 1)``, ``labels`` outside ``1..len(train)``, too few
            groups for the splits, or the ``.mha`` layout without ``cache_dir``.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> yy, xx = np.mgrid[:64, :64]
        >>> for k in range(6):
        ...     m = np.zeros((64, 64), np.uint8)
        ...     m[((xx - 32 - k) / 12.0) ** 2 + ((yy - 10) / 3.0) ** 2 <= 1] = 1
        ...     m[((xx - 32) / 14.0) ** 2 + ((yy - 40 - k) / 14.0) ** 2 <= 1] = 2
        ...     img = np.random.default_rng(k).integers(0, 255, (64, 64), dtype=np.uint8)
        ...     Image.fromarray(img).save(root / "images" / f"0000{k}.png")
        ...     Image.fromarray(m).save(root / "masks" / f"0000{k}.png")
        >>> ds = read_psfhs(root, labels=2, seed=0)
        >>> len(ds.train), len(ds.validation), len(ds.testing), len(ds.unlabelled)
        (2, 1, 1, 4)
        >>> sorted(ds.train[0].meta)
        ['aop', 'aop_landmarks', 'case', 'filename', 'group', 'row', 'split']
    """
    _check_fraction("test_fraction", test_fraction)
    _check_fraction("val_fraction", val_fraction)
    if labels is not None and (isinstance(labels, bool) or not isinstance(labels, Integral)
                               or labels < 1):
        raise ValueError(f"labels must be a positive integer or None; got {labels!r}")
    labels = None if labels is None else int(labels)
    cases = read_psfhs_cases(root, progress=progress)
    root = cases.root
    paths = list(cases.images)
    if cases.layout == "psfhs-mha":
        if cache_dir is None:
            raise ValueError(
                f"PSFHS data at {root} is in the .mha layout: pass cache_dir=<folder> for the PNG "
                "copies the training code reads"
            )
        cache = Path(cache_dir)
        cache.mkdir(parents=True, exist_ok=True)
        paths = [_cached_png(p, cache, c) for p, c in zip(
            cases.images, tqdm(cases.cases, desc="PSFHS .mha -> PNG", unit="img",
                               disable=not progress), strict=True)]
    measured = np.flatnonzero(cases.measured).tolist()
    n_groups = len({cases.groups[i] for i in measured})
    needed = 1 + (test_fraction > 0) + (val_fraction > 0)
    if n_groups < needed:
        raise ValueError(
            f"PSFHS data at {root} has {n_groups} group(s) of measured cases; test_fraction="
            f"{test_fraction} and val_fraction={val_fraction} need at least {needed}"
        )
    rest, testing = _split_by_group(measured, cases.groups, test_fraction, seed)
    train, validation = _split_by_group(rest, cases.groups, val_fraction, seed)
    train_cases = len(train)
    train_groups = {cases.groups[i] for i in train}
    if labels is not None:
        if labels > len(train):
            raise ValueError(f"labels={labels} but the training split has only {len(train)} "
                             f"measured case(s) (seed {seed})")
        keep = np.random.default_rng(seed).permutation(len(train))[:labels]
        train = [train[i] for i in sorted(keep.tolist())]
    landmarks = cases.landmarks
    aops = angle_of_progression(landmarks[:, 0], landmarks[:, 1], landmarks[:, 2])

    def records(split: str, idx: list[int]) -> list[KeypointRecord]:
        return [KeypointRecord(
            path=paths[i], keypoints=landmarks[i].copy(),
            meta={"split": split, "filename": cases.images[i].name, "row": cases.rows[i],
                  "aop": float(aops[i]), "aop_landmarks": float(aops[i]),
                  "case": cases.cases[i], "group": cases.groups[i]},
        ) for i in idx]

    ds = IUGCDataset(root=root)
    ds.train = records("train", train)
    ds.validation = records("validation", validation)
    ds.testing = records("testing", testing)
    ds.unlabelled = [paths[i] for i in range(len(cases)) if cases.groups[i] in train_groups]
    ds.problems = list(cases.problems)
    if labels is not None:
        ds.problems.append(Problem(
            "info", "label_budget",
            f"kept the labels of {labels} of {train_cases} training cases (seed {seed}); the "
            "images of all training groups are in 'unlabelled'"))
    split_idx = {"train": train, "validation": validation, "testing": testing}
    ds.report.update(
        layout=cases.layout,
        cases=len(cases),
        measured=len(measured),
        groups=len(set(cases.groups)),
        group_source=cases.group_source,
        skipped=len(cases.skipped),
        skipped_cases=dict(cases.skipped),
        labelled={s: len(v) for s, v in split_idx.items()},
        groups_per_split={"train": len(train_groups),
                          "validation": len({cases.groups[i] for i in validation}),
                          "testing": len({cases.groups[i] for i in testing})},
        train_cases=train_cases,
        labels=labels,
        unlabelled=len(ds.unlabelled),
        seed=seed,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
    )
    return ds

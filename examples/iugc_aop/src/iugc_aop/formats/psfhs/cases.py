"""The cases of a PSFHS folder: each image, its landmarks measured from its mask, its group.

The landmarks PS1, PS2, FH1 of every case come from its mask by the 2023 PS/FH challenge rule
(:func:`sslkeypoint.masks.landmarks_from_masks` with ``method="challenge"``, which needs OpenCV):
they are derived from expert masks, not placed by experts as points. A case whose mask is missing,
unreadable or cannot be measured is skipped, with its reason, never silently. The similarity group
of each case comes from ``cases.csv`` when the folder has one, else from
:func:`~iugc_aop.formats.psfhs.similarity_groups`.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from iugc_aop.formats.dataset import Problem
from iugc_aop.formats.iugc import normalise_name
from iugc_aop.formats.psfhs.groups import similarity_groups
from iugc_aop.formats.psfhs.layout import (
    _MASK_SUFFIXES,
    _MHA_SUFFIXES,
    CASES_CSV,
    Layout,
    PSFHSFormatError,
    _find_layout,
    _list,
)
from iugc_aop.formats.psfhs.mha import _sitk, read_mha
from sslkeypoint.data import IMAGE_EXTENSIONS, read_image, read_image_size, read_text
from sslkeypoint.masks import landmarks_from_masks

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["PLAUSIBLE_SHARE", "PSFHSCases", "implausible_mask", "read_psfhs_cases"]

_PS_LABEL, _FH_LABEL = 1, 2

#: Share of the image each structure may cover, ``(least, most)``: far outside what expert masks of
#: transperineal frames hold (over the 1,058 cases of the project's PSFHS folder: PS 0.9–5 %, FH
#: 5.9–33 %), so only a mistake is caught — another label map, labels swapped, a stray value.
PLAUSIBLE_SHARE = {_PS_LABEL: (0.001, 0.15), _FH_LABEL: (0.01, 0.8)}


def implausible_mask(labels: NDArray[Any], name: str) -> str | None:
    """Why a PSFHS label map cannot be what it claims to be, or ``None`` when it is plausible.

    Caught before any landmark is measured: label values other than 0 (background), 1 (PS) and 2
    (FH) — a map saved as 0/255, or of another data set; a pubic symphysis larger than the fetal
    head (the two labels swapped); a structure covering a share of the image outside
    :data:`PLAUSIBLE_SHARE`.

    Examples:
        >>> m = np.zeros((100, 100), np.uint8); m[:4, :50] = 1; m[40:90, 20:80] = 2
        >>> implausible_mask(m, "a.png") is None
        True
        >>> implausible_mask(np.where(m == 1, 2, np.where(m == 2, 1, 0)), "a.png")
        'a.png: the pubic symphysis (label 1, 30.0 % of the image) is larger than the fetal head (label 2, 2.0 %); labels swapped?'
        >>> implausible_mask(m * 127, "a.png")
        'a.png: holds label values [127, 254]; expected 0 (background), 1 (PS), 2 (FH)'
    """
    values, counts = np.unique(labels, return_counts=True)
    stray = [int(v) for v in values if v not in (0, _PS_LABEL, _FH_LABEL)]
    if stray:
        shown = ", ".join(str(v) for v in stray[:5]) + (", ..." if len(stray) > 5 else "")
        return f"{name}: holds label values [{shown}]; expected 0 (background), 1 (PS), 2 (FH)"
    share = {int(v): c / labels.size for v, c in zip(values, counts)}
    ps, fh = share.get(_PS_LABEL, 0.0), share.get(_FH_LABEL, 0.0)
    if ps and fh and ps > fh:
        return (f"{name}: the pubic symphysis (label {_PS_LABEL}, {100 * ps:.1f} % of the image) is larger than the "
                f"fetal head (label {_FH_LABEL}, {100 * fh:.1f} %); labels swapped?")
    for label, what in ((_PS_LABEL, "pubic symphysis"), (_FH_LABEL, "fetal head")):
        low, high = PLAUSIBLE_SHARE[label]
        if share.get(label, 0.0) and not low <= share[label] <= high:
            return (f"{name}: the {what} (label {label}) covers {100 * share[label]:.2g} % of the image; expected "
                    f"{100 * low:g}–{100 * high:g} %")
    return None


def _read_cases_csv(
    path: Path, images: dict[str, Path], image_dir: Path
) -> dict[str, tuple[int, int]]:
    """``case → (group, data row)``; every row must name an image and every image have a row."""
    expect = "expected 'case,group' with an integer group, e.g. '03744,0'"
    try:
        text = read_text(path)
    except ValueError as err:  # not UTF-8: the message names the file and the likely encoding
        raise PSFHSFormatError(str(err)) from None
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        while header is not None and not any(c.strip() for c in header):
            header = next(reader, None)
        if header is None:
            raise PSFHSFormatError(f"{path}: the file is empty; expected a header row 'case,group'")
        names = [normalise_name(h) for h in header]
        if "case" not in names or "group" not in names:
            raise PSFHSFormatError(f"{path}: header {header} lacks column(s) "
                                   f"{[c for c in ('case', 'group') if c not in names]}; {expect}")
        ci, gi = names.index("case"), names.index("group")
        out: dict[str, tuple[int, int]] = {}
        row = 0
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            row += 1
            where = f"{path}: data row {row} (line {reader.line_num})"
            if len(cells) <= max(ci, gi):
                raise PSFHSFormatError(f"{where}: {len(cells)} cell(s) {cells}, expected "
                                       f"{len(header)}; {expect}")
            case, group = cells[ci].strip(), cells[gi].strip()
            if not case:
                raise PSFHSFormatError(f"{where}: the case is empty; {expect}")
            try:
                number = int(group)
            except ValueError:
                raise PSFHSFormatError(f"{where}: group {group!r} of case {case!r} is not an "
                                       f"integer; {expect}") from None
            if case in out:
                raise PSFHSFormatError(f"{where}: case {case!r} is listed again (first in data "
                                       f"row {out[case][1]}); expected one row per case")
            if case not in images:
                raise PSFHSFormatError(f"{where}: case {case!r} has no image in "
                                       f"{image_dir}/; expected a row "
                                       "per image and an image per row")
            out[case] = (number, row)
    lacking = [c for c in images if c not in out]
    if lacking:
        raise PSFHSFormatError(
            f"{path}: no row for {len(lacking)} image(s), e.g. {lacking[:5]}; expected one row "
            f"per image (delete {path.name} to compute the groups from the images)"
        )
    return out


def _read_gray(path: Path, layout: Layout) -> NDArray[Any]:
    if layout == "psfhs-mha":
        return read_mha(path)
    return read_image(path, channels=1)[0].numpy()


def _image_size(path: Path, layout: Layout) -> tuple[int, int]:
    """``(H, W)`` of an image from its header."""
    if layout == "psfhs-mha":
        reader = _sitk().ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        size = reader.GetSize()
        return int(size[1]), int(size[0])
    return read_image_size(path)  # as read_image shows it: an EXIF orientation applied


def _read_mask(path: Path, layout: Layout) -> NDArray[Any]:
    if layout == "psfhs-mha":
        return read_mha(path)
    with Image.open(path) as img:
        arr = np.asarray(img)  # palette images give their indices: the labels
    if arr.ndim == 3 and (arr == arr[..., :1]).all():
        arr = arr[..., 0]
    return arr


def _measure(
    image: Path, mask: Path | None, layout: Layout
) -> tuple[NDArray[np.float64], str | None]:
    """The case's ``(3, 2)`` landmarks, or NaN and why they cannot be measured."""
    nan = np.full((3, 2), np.nan)
    if mask is None:
        return nan, "no mask"
    try:
        labels = _read_mask(mask, layout)
    except (OSError, ValueError) as exc:
        return nan, f"cannot read mask {mask.name}: {exc}"
    try:
        size = _image_size(image, layout)
    except (OSError, RuntimeError, ValueError) as exc:
        return nan, f"cannot read image {image.name}: {exc}"
    if labels.shape != size:
        return nan, (f"mask {mask.name} has shape {tuple(labels.shape)} but its image is "
                     f"{size[0]}×{size[1]}; expected one label value per image pixel")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == np.bool_):
        return nan, f"mask {mask.name} holds {labels.dtype} values; expected integer labels"
    implausible = implausible_mask(labels, f"mask {mask.name}")
    if implausible is not None:
        return nan, implausible
    kp = np.asarray(landmarks_from_masks(labels, _PS_LABEL, _FH_LABEL, method="challenge"),
                    dtype=np.float64)
    if np.isnan(kp[0]).any():
        return kp, (f"no measurable pubic symphysis in {mask.name} (label {_PS_LABEL} absent or "
                    "too small to fit an ellipse)")
    if np.isnan(kp).any():
        return kp, (f"no measurable fetal head in {mask.name} (label {_FH_LABEL} absent or too "
                    "small to fit an ellipse, or PS1 inside the head ellipse)")
    return kp, None


@dataclass
class PSFHSCases:
    """Every case of a PSFHS folder: image, landmarks from its mask, similarity group.

    Attributes:
        root: The data folder.
        layout: ``"psfhs-png"`` or ``"psfhs-mha"``.
        cases: Case ids (image file stems) of every image, in natural (id) order.
        images: The image file of each case (``.png`` or ``.mha``).
        masks: The mask file of each case, ``None`` where there is none.
        landmarks: ``(N, 3, 2)`` float64 ``(x, y)`` in image pixels, rows PS1, PS2, FH1, by the
            2023 challenge rule; NaN for the skipped cases.
        groups: Similarity group of each case.
        rows: 1-based data row of each case in ``cases.csv`` (``None`` without the file).
        group_source: ``"cases.csv"`` or ``"computed"``
            (:func:`~iugc_aop.formats.psfhs.similarity_groups`).
        skipped: ``(case, reason)`` of every case whose mask is missing, unreadable or cannot be
            measured; such a case has NaN landmarks.
        problems: One error per skipped case and a warning for masks without an image.

    Examples:
        >>> c = PSFHSCases(Path("psfhs"), "psfhs-png", ["1", "2"], [Path("1.png"), Path("2.png")],
        ...                [Path("m1.png"), None], np.zeros((2, 3, 2)), [0, 0], [None, None],
        ...                "computed", [("2", "no mask")])
        >>> len(c), c.measured.tolist()
        (2, [True, False])
    """

    root: Path
    layout: Layout
    cases: list[str]
    images: list[Path]
    masks: list[Path | None]
    landmarks: NDArray[np.float64]
    groups: list[int]
    rows: list[int | None]
    group_source: Literal["cases.csv", "computed"]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cases)

    @property
    def measured(self) -> NDArray[np.bool_]:
        """``(N,)`` bool: the cases with landmarks (not skipped)."""
        skipped = {c for c, _ in self.skipped}
        return np.array([c not in skipped for c in self.cases], dtype=bool)


def read_psfhs_cases(root: str | os.PathLike[str], progress: bool = False) -> PSFHSCases:
    """Read every case of a PSFHS folder: its image, its landmarks from the mask, its group.

    The landmarks PS1, PS2, FH1 come from each mask by the 2023 PS/FH challenge rule
    (:func:`sslkeypoint.masks.landmarks_from_masks`, ``method="challenge"``; needs OpenCV,
    ``pip install "sslkeypoint[masks]"``), in the image's pixels. A case without a mask, with an
    unreadable mask, a mask of another size than its image, an implausible mask
    (:func:`implausible_mask`: stray label values, PS and FH swapped, a structure of an
    implausible size), or a mask in which PS or FH cannot be measured is skipped: NaN landmarks, its ``(case, reason)`` in ``skipped`` and an error in
    ``problems``. A mask without an image is a warning. Groups come from ``cases.csv`` when the
    folder has one, else from :func:`~iugc_aop.formats.psfhs.similarity_groups` over the images
    in id order. Reading the 1,058 masks of the project's PSFHS folder takes about 1.3 s (one CPU
    core), so nothing is cached.

    Args:
        root: Folder laid out as in :data:`~iugc_aop.formats.psfhs.layout.LAYOUT`.
        progress: Show progress bars.

    Returns:
        A :class:`PSFHSCases`.

    Raises:
        PSFHSLayoutError: The folder or one of a pair of folders is missing, a folder holds no
            image files, or two files of one folder belong to one case (names them).
        PSFHSFormatError: ``cases.csv`` is malformed, names a case without an image, lists a case
            twice or lacks an image's case (file, data row and what was expected named).
        ImportError: The ``.mha`` layout without SimpleITK, or no OpenCV.

    Examples:
        >>> import tempfile
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> yy, xx = np.mgrid[:64, :64]
        >>> m = np.zeros((64, 64), np.uint8)
        >>> m[((xx - 32) / 12.0) ** 2 + ((yy - 10) / 3.0) ** 2 <= 1] = 1
        >>> m[((xx - 32) / 14.0) ** 2 + ((yy - 40) / 14.0) ** 2 <= 1] = 2
        >>> for case in ("00001", "00002"):
        ...     Image.fromarray(m * 100).save(root / "images" / f"{case}.png")
        >>> Image.fromarray(m).save(root / "masks" / "00001.png")
        >>> cases = read_psfhs_cases(root)
        >>> cases.cases, cases.groups, cases.group_source, cases.landmarks.shape
        (['00001', '00002'], [0, 0], 'computed', (2, 3, 2))
        >>> cases.skipped
        [('00002', 'no mask (expected masks/00002.png)')]
    """
    root = Path(root)
    layout, image_dir, mask_dir = _find_layout(root)
    if layout == "psfhs-mha":
        _sitk()
        image_files = _list(image_dir, _MHA_SUFFIXES, "MetaImage image")
        mask_files = _list(mask_dir, _MHA_SUFFIXES, "MetaImage label")
        mask_suffix = ".mha"
    else:
        image_files = _list(image_dir, tuple(IMAGE_EXTENSIONS), "image")
        mask_files = _list(mask_dir, _MASK_SUFFIXES, "mask")
        mask_suffix = ".png"
    problems: list[Problem] = []
    orphans = [c for c in mask_files if c not in image_files]
    if orphans:
        problems.append(Problem(
            "warning", "mask_without_image",
            f"{len(orphans)} mask(s) in {mask_dir} have no image in {image_dir}: "
            f"{', '.join(orphans[:10])}{', ...' if len(orphans) > 10 else ''}; ignored",
            mask_files[orphans[0]]))
    cases = list(image_files)
    csv_path = root / CASES_CSV
    if csv_path.is_file():
        table = _read_cases_csv(csv_path, image_files, image_dir)
        groups = [table[c][0] for c in cases]
        rows: list[int | None] = [table[c][1] for c in cases]
        source: Literal["cases.csv", "computed"] = "cases.csv"
    else:
        grays = [_read_gray(image_files[c], layout)
                 for c in tqdm(cases, desc="PSFHS groups", unit="img", disable=not progress)]
        groups = similarity_groups(grays)
        rows = [None] * len(cases)
        source = "computed"
    landmarks = np.full((len(cases), 3, 2), np.nan)
    skipped: list[tuple[str, str]] = []
    for i, case in enumerate(tqdm(cases, desc="PSFHS masks", unit="mask", disable=not progress)):
        mask = mask_files.get(case)
        kp, reason = _measure(image_files[case], mask, layout)
        if reason is None:
            landmarks[i] = kp
            continue
        if mask is None:
            reason = f"no mask (expected {mask_dir.name}/{case}{mask_suffix})"
        skipped.append((case, reason))
        problems.append(Problem("error", "skipped_case", f"case {case}: {reason}; skipped",
                                mask or image_files[case]))
    return PSFHSCases(
        root=root, layout=layout, cases=cases, images=[image_files[c] for c in cases],
        masks=[mask_files.get(c) for c in cases], landmarks=landmarks, groups=groups, rows=rows,
        group_source=source, skipped=skipped, problems=problems,
    )

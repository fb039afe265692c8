"""Image decoding, keypoint datasets, invalid-sample filtering and temporal frame pairs.

Images are decoded by content, never by extension (IUGC names PNG files ``.jpg``), into float
``(C, H, W)`` tensors in ``[0, 1]`` and resized to the network input with
:func:`resize_image` (bilinear, ``align_corners=False``, antialiased) — the resize that
:func:`~sslkeypoint.heatmaps.keypoints_to_input` describes for keypoints.

Invalid samples. A labelled dataset of hundreds of hand-made records always holds a few bad
ones: a missing or truncated file, a label that does not parse, a keypoint outside the image. A
training run should neither crash on them nor lose them silently. The design:

* :class:`KeypointDataset` checks every item in ``__getitem__`` and returns an
  :class:`InvalidSample` marker ``(index, path, reason, detail)`` instead of raising;
* :class:`FilteringCollate` (and the plain function :func:`filtering_collate`) drops the markers,
  counts each drop with its reason in a :class:`DropLog` and returns ``None`` for a batch that is
  empty after filtering (a training step skips it);
* counts made inside DataLoader worker processes stay in those processes (each worker has its
  own copy of the collate and its log), so for an exact report call
  :meth:`KeypointDataset.validate` once up front: it scans every record in the main process and
  returns the full list of invalid samples. With ``num_workers=0`` the collate's log is exact too.

Rules: a single NaN keypoint makes that keypoint invisible, not the sample invalid. A sample is
invalid when its file is missing or cannot be decoded, its keypoints do not parse as ``(K, 2)``
numbers, ``K`` differs from the dataset's ``num_keypoints``, no keypoint is both finite and
visible, or a visible keypoint lies outside the original image frame
``[-0.5, W - 0.5) × [-0.5, H - 0.5)`` (a label outside the image is a corrupted label; keypoints
marked invisible are not checked).
"""

from __future__ import annotations

import errno
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset, default_collate
from tqdm.auto import tqdm

from sslkeypoint._utils import size_pair
from sslkeypoint.heatmaps import keypoints_to_input

__all__ = [
    "IMAGE_EXTENSIONS",
    "DropLog",
    "FilteringCollate",
    "ImageFolderDataset",
    "ImageReadError",
    "InvalidSample",
    "KeypointDataset",
    "KeypointRecord",
    "TemporalPairDataset",
    "default_drop_log",
    "filtering_collate",
    "list_images",
    "natural_sort_key",
    "read_image",
    "resize_image",
    "split_records",
]

ImageSource = str | Path | bytes | bytearray | Image.Image | np.ndarray
"""What :func:`read_image` accepts: a path, encoded bytes, a PIL image or an ``(H, W[, C])`` array."""

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".pgm",
    ".ppm",
)
"""File-name endings :func:`list_images` picks up (case-insensitive). Decoding ignores them."""

_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion and torchvision.

T = TypeVar("T")


@dataclass(frozen=True)
class KeypointRecord:
    """One labelled image: where it is and where its keypoints are.

    Attributes:
        path: Image file. Decoded by content, whatever its extension says.
        keypoints: ``(K, 2)`` float array of ``(x, y)`` in the original image's pixels, or
            ``None`` for an unlabelled image. NaN marks a missing keypoint.
        visible: Optional ``(K,)`` bool array; ``None`` means every finite keypoint is visible.
        meta: Free-form information carried along (split, case id, AoP label, ...).

    Examples:
        >>> import numpy as np
        >>> r = KeypointRecord("a.png", np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> r.num_keypoints
        2
    """

    path: Path | str
    keypoints: np.ndarray | None = None
    visible: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_keypoints(self) -> int:
        """Number of keypoints ``K`` (0 for an unlabelled record)."""
        return 0 if self.keypoints is None else int(np.asarray(self.keypoints).shape[0])


class ImageReadError(OSError):
    """An image that exists but cannot be decoded; the message names the file."""


def _describe(source: object) -> str:
    """A short name of an image source for error messages."""
    if isinstance(source, str | Path):
        return str(source)
    if isinstance(source, bytes | bytearray):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image mode={source.mode} size={source.size}>"
    if isinstance(source, np.ndarray):
        return f"<array shape={source.shape} dtype={source.dtype}>"
    return f"<{type(source).__name__}>"


def _array_to_unit(arr: np.ndarray, name: str) -> np.ndarray:
    """An ``(H, W)`` or ``(H, W, C)`` array as float32 in ``[0, 1]`` with alpha dropped."""
    if arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4):
        c = arr.shape[-1]
        arr = arr[..., :1] if c in (1, 2) else arr[..., :3]
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected an image array of shape (H, W) or (H, W, C) with C in 1..4; got {arr.shape}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif arr.dtype == np.bool_:
        out = arr.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        finite = out[np.isfinite(out)]
        if finite.size != out.size or (finite.size and (finite.min() < 0.0 or finite.max() > 1.0)):
            raise ValueError(f"{name}: a float image must hold finite values in [0, 1]")
    else:
        raise ValueError(f"{name}: unsupported image dtype {arr.dtype} (expected uint8, uint16, bool or float)")
    return out


def _pil_to_unit(img: Image.Image, name: str) -> np.ndarray:
    """A decoded PIL image as an ``(H, W)`` or ``(H, W, 3)`` float32 array in ``[0, 1]``."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.float32) / 65535.0
    if mode == "I":
        # 32-bit integer mode: 16-bit grayscale PNGs in some Pillow versions.
        arr = np.asarray(img, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"{name}: 32-bit integer images outside 0..65535 are not supported")
        return arr.astype(np.float32) / 65535.0
    if mode == "F":
        return _array_to_unit(np.asarray(img, dtype=np.float32), name)
    if mode in ("L", "RGB"):
        return np.asarray(img).astype(np.float32) / 255.0
    if mode in ("1", "LA", "La"):
        return np.asarray(img.convert("L")).astype(np.float32) / 255.0
    # RGBA, RGBa, RGBX, P, PA, CMYK, YCbCr, LAB, HSV: to RGB, dropping alpha.
    return np.asarray(img.convert("RGB")).astype(np.float32) / 255.0


def _convert_channels(image: Tensor, channels: int | None, name: str) -> Tensor:
    """Convert ``(C, H, W)`` to ``channels`` (1: exact copy of equal channels or BT.601 luma; 3: repeat)."""
    c = image.shape[0]
    if channels is None or channels == c:
        return image
    if channels == 1 and c == 3:
        if torch.equal(image[0], image[1]) and torch.equal(image[0], image[2]):
            return image[:1].clone()
        weights = torch.tensor(_LUMA, dtype=image.dtype).view(3, 1, 1)
        return (image * weights).sum(dim=0, keepdim=True).clamp_(0.0, 1.0)
    if channels == 3 and c == 1:
        return image.repeat(3, 1, 1)
    raise ValueError(f"{name}: cannot convert an image with {c} channels to {channels}")


def read_image(source: ImageSource, channels: int | None = None) -> Tensor:
    """Decode an image into a float ``(C, H, W)`` tensor in ``[0, 1]``.

    The format is sniffed from the content (PIL ``Image.open``), never from the file name: a PNG
    named ``.jpg`` decodes as a PNG. 8-bit data is divided by 255 and 16-bit data by 65535; alpha is
    dropped; palette, CMYK and other modes become RGB.

    Args:
        source: A path, the encoded file's bytes, a PIL image, or an ``(H, W)`` / ``(H, W, C)``
            numpy array (``uint8``, ``uint16``, ``bool``, or float already in ``[0, 1]``).
        channels: ``None`` keeps the decoded channels (grayscale → 1, colour → 3, even when the three
            channels are equal); ``1`` converts colour to one channel — an exact copy when the three
            channels are equal, else ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``; ``3`` repeats
            grayscale.

    Returns:
        ``(C, H, W)`` float32 tensor in ``[0, 1]``.

    Raises:
        FileNotFoundError: The path does not exist (the message names it).
        ImageReadError: The file exists but cannot be decoded (the message names it).
        ValueError: Unsupported array shape, dtype or value range, or an invalid ``channels``.
        TypeError: An unsupported source type.

    Examples:
        >>> import numpy as np, torch
        >>> rgb = np.stack([np.full((2, 3), 128, np.uint8)] * 3, axis=-1)
        >>> read_image(rgb).shape, read_image(rgb, channels=1).shape
        (torch.Size([3, 2, 3]), torch.Size([1, 2, 3]))
        >>> torch.equal(read_image(rgb, channels=1)[0], read_image(rgb)[1])  # equal channels: exact
        True
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be None, 1 or 3; got {channels}")
    name = _describe(source)
    if isinstance(source, np.ndarray):
        arr = _array_to_unit(source, name)
    elif isinstance(source, Image.Image):
        arr = _pil_to_unit(source, name)
    elif isinstance(source, bytes | bytearray | str | Path):
        if isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise FileNotFoundError(errno.ENOENT, "image file not found", str(path))
            opener: Any = path
        else:
            opener = BytesIO(bytes(source))
        try:
            with Image.open(opener) as img:
                img.load()
                arr = _pil_to_unit(img, name)
        except Exception as exc:
            raise ImageReadError(f"cannot decode image {name}: {exc}") from exc
    else:
        raise TypeError(f"read_image expects a path, bytes, a PIL image or a numpy array; got {name}")
    tensor = torch.from_numpy(np.ascontiguousarray(arr))
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1).contiguous()
    return _convert_channels(tensor, channels, name)



def resize_image(image: Tensor, size: int | Sequence[int]) -> Tensor:
    """Resize ``(C, H, W)`` or ``(B, C, H, W)`` images to ``size`` as every dataset here does.

    Bilinear, ``align_corners=False``, antialiased (which only matters when shrinking), so keypoints
    follow with :func:`~sslkeypoint.heatmaps.keypoints_to_input`. An image already at ``size`` is
    returned unchanged.

    Args:
        image: Float image tensor ``(C, H, W)`` or ``(B, C, H, W)``.
        size: Target ``(H, W)`` (or an int) in px.

    Returns:
        The resized tensor with the same number of dimensions.

    Examples:
        >>> import torch
        >>> resize_image(torch.ones(1, 10, 20), (5, 5)).shape
        torch.Size([1, 5, 5])
    """
    h, w = size_pair(size)
    if image.ndim not in (3, 4):
        raise ValueError(f"image must have shape (C, H, W) or (B, C, H, W); got {tuple(image.shape)}")
    if tuple(image.shape[-2:]) == (h, w):
        return image
    batched = image if image.ndim == 4 else image[None]
    out = F.interpolate(batched, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return out if image.ndim == 4 else out[0]


def _load_resized(path: str | Path, size: tuple[int, int], in_chans: int) -> Tensor:
    return resize_image(read_image(path, channels=in_chans), size)


@dataclass(frozen=True)
class InvalidSample:
    """Marker returned by a dataset instead of an item that cannot be used.

    :class:`FilteringCollate` drops it and counts it.

    Attributes:
        index: Dataset index of the sample.
        path: Its image file.
        reason: Short category, used for counting (one of the ``REASON_*`` constants of
            :class:`KeypointDataset`).
        detail: Specifics (which keypoint, the decoder's message, ...).

    Examples:
        >>> str(InvalidSample(3, "a.jpg", "missing file"))
        'a.jpg (#3): missing file'
    """

    index: int
    path: str
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.path} (#{self.index}): {self.reason}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass
class DropLog:
    """Counts of dropped samples by reason, and which ones.

    Attributes:
        counts: Number of drops per reason.
        dropped: ``(path, reason)`` of each drop, in order (the reason includes the detail).
        kept: Number of samples that passed.

    Examples:
        >>> log = DropLog()
        >>> log.record(InvalidSample(0, "a.png", "missing file"))
        >>> log.kept = 3
        >>> log.summary()
        'dropped 1 of 4 samples: 1 missing file'
    """

    counts: Counter[str] = field(default_factory=Counter)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    kept: int = 0

    @property
    def num_dropped(self) -> int:
        """Total number of drops."""
        return sum(self.counts.values())

    def record(self, sample: InvalidSample) -> None:
        """Count one dropped sample."""
        self.counts[sample.reason] += 1
        reason = f"{sample.reason}: {sample.detail}" if sample.detail else sample.reason
        self.dropped.append((sample.path, reason))

    def summary(self) -> str:
        """One line for the log, e.g. once per epoch."""
        total = self.num_dropped + self.kept
        if not self.counts:
            return f"dropped 0 of {total} samples"
        parts = ", ".join(f"{n} {reason}" for reason, n in self.counts.most_common())
        return f"dropped {self.num_dropped} of {total} samples: {parts}"

    def reset(self) -> None:
        """Forget every count (e.g. at the start of an epoch)."""
        self.counts.clear()
        self.dropped.clear()
        self.kept = 0


class FilteringCollate:
    """Collate that drops :class:`InvalidSample` markers (and ``None``) and counts the drops.

    Picklable, so it can be handed to a ``DataLoader`` with worker processes; but each worker
    then counts into its own copy of the log, which the main process never sees. For an exact
    report use :meth:`KeypointDataset.validate` (see the module notes).

    Args:
        log: Where drops are counted; a new :class:`DropLog` when ``None``.
        collate_fn: Collates the remaining samples; ``torch.utils.data.default_collate`` (stacks
            tensors, turns ints into a tensor and strings into a list).

    Attributes:
        log: The :class:`DropLog`.

    Examples:
        >>> import torch
        >>> collate = FilteringCollate()
        >>> good = {"image": torch.zeros(1, 2, 2), "index": 0, "path": "a.png"}
        >>> batch = collate([good, InvalidSample(1, "b.png", "missing file")])
        >>> batch["image"].shape, batch["path"]
        (torch.Size([1, 1, 2, 2]), ['a.png'])
        >>> collate([InvalidSample(2, "c.png", "missing file")]) is None
        True
        >>> collate.log.summary()
        'dropped 2 of 3 samples: 2 missing file'
    """

    def __init__(
        self, log: DropLog | None = None, collate_fn: Callable[[list[Any]], Any] | None = None
    ) -> None:
        self.log = log if log is not None else DropLog()
        self.collate_fn = collate_fn if collate_fn is not None else default_collate

    def __call__(self, samples: Sequence[Any]) -> Any:
        """Collate the valid samples; ``None`` when none is left."""
        kept = []
        for sample in samples:
            if isinstance(sample, InvalidSample):
                self.log.record(sample)
            elif sample is None:
                self.log.record(InvalidSample(-1, "", "empty item"))
            else:
                kept.append(sample)
        if not kept:
            return None
        self.log.kept += len(kept)
        return self.collate_fn(kept)


_DEFAULT_LOG = DropLog()
_DEFAULT_COLLATE = FilteringCollate(_DEFAULT_LOG)


def default_drop_log() -> DropLog:
    """The :class:`DropLog` that :func:`filtering_collate` counts into (in this process)."""
    return _DEFAULT_LOG


def filtering_collate(samples: Sequence[Any]) -> Any:
    """Collate a list of dataset items, dropping and counting invalid ones.

    The plain-function form of :class:`FilteringCollate`, counting into the module-level
    :func:`default_drop_log`. Items are dicts (as :class:`KeypointDataset` returns); the batch is a
    dict of the same keys with tensors stacked, ``index`` a long tensor and ``path`` a list.

    Args:
        samples: Dataset items, some possibly :class:`InvalidSample` markers.

    Returns:
        The batch dict, or ``None`` when every sample was invalid.

    Examples:
        >>> filtering_collate([InvalidSample(0, "a.png", "missing file")]) is None
        True
    """
    return _DEFAULT_COLLATE(samples)


class KeypointDataset(Dataset):
    """Labelled images resized to the network input, keypoints mapped along.

    Each item is a dict:

    * ``image``: ``(C, H, W)`` float32 in ``[0, 1]`` at ``input_size`` (:func:`resize_image`);
    * ``keypoints``: ``(K, 2)`` float32 ``(x, y)`` in input px
      (:func:`~sslkeypoint.heatmaps.keypoints_to_input`); NaN for a missing keypoint;
    * ``visible``: ``(K,)`` bool, false for missing keypoints and those the record marks invisible;
    * ``original_size``: ``(2,)`` long ``(H, W)`` of the file, to map predictions back with
      :func:`~sslkeypoint.heatmaps.keypoints_to_original`;
    * ``index``: the dataset index; ``path``: the file as a string.

    An unusable record gives an :class:`InvalidSample` marker instead (see the module notes for the
    rules); collate with :class:`FilteringCollate` / :func:`filtering_collate`.

    Args:
        records: The labelled records.
        input_size: Network input ``(H, W)`` (or an int) in px.
        in_chans: Channels of the images (1: colour files are converted, exactly when their channels
            are equal; 3: grayscale files are repeated).
        transform: Optional callable applied to each valid item dict, returning the item dict.
            Batched augmentation (:mod:`sslkeypoint.augment`) is better run on the collated batch.
        num_keypoints: ``K`` every record must have; ``None`` takes the most common ``K`` among the
            records whose keypoints parse.

    Attributes:
        records: The records.
        input_size: ``(H, W)``.
        in_chans: Channels.
        num_keypoints: ``K``.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> Image.fromarray(np.zeros((8, 8), np.uint8)).save(os.path.join(folder, "a.jpg"), "PNG")
        >>> recs = [KeypointRecord(os.path.join(folder, "a.jpg"), np.array([[3.5, 0.0], [np.nan, 1.0]])),
        ...         KeypointRecord(os.path.join(folder, "gone.jpg"), np.array([[1.0, 1.0], [2.0, 2.0]]))]
        >>> ds = KeypointDataset(recs, input_size=(4, 4))
        >>> item = ds[0]
        >>> item["image"].shape, item["keypoints"][0].tolist(), item["visible"].tolist()
        (torch.Size([1, 4, 4]), [1.5, -0.25], [True, False])
        >>> ds[1].reason
        'missing file'
        >>> batch = filtering_collate([ds[0], ds[1]])
        >>> batch["keypoints"].shape, batch["original_size"].tolist()
        (torch.Size([1, 2, 2]), [[8, 8]])
    """

    REASON_MISSING = "missing file"
    REASON_UNREADABLE = "unreadable image"
    REASON_NO_LABELS = "no keypoints"
    REASON_UNPARSEABLE = "unparseable keypoints"
    REASON_WRONG_COUNT = "wrong number of keypoints"
    REASON_NONE_VISIBLE = "no visible keypoint"
    REASON_OUT_OF_FRAME = "keypoint outside the image"

    def __init__(
        self,
        records: Sequence[KeypointRecord],
        input_size: int | Sequence[int],
        in_chans: int = 1,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        num_keypoints: int | None = None,
    ) -> None:
        self.records = list(records)
        self.input_size = size_pair(input_size, "input_size")
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3; got {in_chans}")
        self.in_chans = in_chans
        self.transform = transform
        if num_keypoints is None:
            num_keypoints = self._infer_num_keypoints()
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1; got {num_keypoints}")
        self.num_keypoints = int(num_keypoints)

    def _infer_num_keypoints(self) -> int:
        counts: Counter[int] = Counter()
        for record in self.records:
            try:
                kp = np.asarray(record.keypoints, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if record.keypoints is not None and kp.ndim == 2 and kp.shape[1] == 2 and kp.shape[0] > 0:
                counts[kp.shape[0]] += 1
        if not counts:
            raise ValueError(
                f"cannot infer num_keypoints: none of the {len(self.records)} records has (K, 2) "
                "keypoints; pass num_keypoints"
            )
        return counts.most_common(1)[0][0]

    def __len__(self) -> int:
        return len(self.records)

    def _invalid(self, index: int, reason: str, detail: str = "") -> InvalidSample:
        return InvalidSample(index, str(self.records[index].path), reason, detail)

    def _labels(self, index: int) -> tuple[np.ndarray, np.ndarray] | InvalidSample:
        """Parsed ``(K, 2)`` keypoints and ``(K,)`` visibility, or why they are unusable."""
        record = self.records[index]
        k = self.num_keypoints
        if record.keypoints is None:
            return self._invalid(index, self.REASON_NO_LABELS)
        try:
            kp = np.array(record.keypoints, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            return self._invalid(index, self.REASON_UNPARSEABLE, str(exc))
        if kp.ndim != 2 or kp.shape[1] != 2:
            return self._invalid(index, self.REASON_UNPARSEABLE, f"expected shape (K, 2), got {kp.shape}")
        if kp.shape[0] != k:
            return self._invalid(index, self.REASON_WRONG_COUNT, f"expected {k}, got {kp.shape[0]}")
        finite = np.asarray(np.isfinite(kp).all(axis=1), dtype=bool)
        kp[~finite] = np.nan
        visible = finite.copy()
        if record.visible is not None:
            try:
                vis = np.asarray(record.visible).astype(bool)
            except (TypeError, ValueError) as exc:
                return self._invalid(index, self.REASON_UNPARSEABLE, f"visible: {exc}")
            if vis.shape != (k,):
                return self._invalid(
                    index, self.REASON_UNPARSEABLE, f"visible must have shape ({k},), got {vis.shape}"
                )
            visible = visible & vis
        if not visible.any():
            return self._invalid(index, self.REASON_NONE_VISIBLE)
        return kp, visible

    def _load(self, index: int) -> tuple[Tensor, np.ndarray, np.ndarray] | InvalidSample:
        """Decoded original-size image with its checked labels, or an invalid marker."""
        if not 0 <= index < len(self.records):
            raise IndexError(f"index {index} out of range for a dataset of {len(self.records)}")
        labels = self._labels(index)
        if isinstance(labels, InvalidSample):
            return labels
        kp, visible = labels
        try:
            image = read_image(self.records[index].path, channels=self.in_chans)
        except FileNotFoundError:
            return self._invalid(index, self.REASON_MISSING)
        except (OSError, ValueError, TypeError) as exc:
            return self._invalid(index, self.REASON_UNREADABLE, str(exc))
        h, w = image.shape[-2:]
        x, y = kp[:, 0], kp[:, 1]
        with np.errstate(invalid="ignore"):
            inside = (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
        outside = np.flatnonzero(visible & ~inside)
        if outside.size:
            j = int(outside[0])
            return self._invalid(
                index,
                self.REASON_OUT_OF_FRAME,
                f"keypoint {j} at ({x[j]:g}, {y[j]:g}) outside the {h}x{w} image",
            )
        return image, kp, visible

    def check(self, index: int) -> InvalidSample | None:
        """Why item ``index`` is invalid, or ``None`` when it is valid (decodes, does not resize)."""
        loaded = self._load(index)
        return loaded if isinstance(loaded, InvalidSample) else None

    def validate(self, progress: bool = True) -> list[InvalidSample]:
        """Scan every record once, in this process, and list the invalid ones.

        Exact even when training uses DataLoader workers (whose drop counts do not reach the main
        process). Decodes every image, so it takes about one epoch of reading.

        Args:
            progress: Show a tqdm progress bar.

        Returns:
            The :class:`InvalidSample` markers, in index order.
        """
        invalid = []
        for index in tqdm(range(len(self)), desc="validating", disable=not progress):
            marker = self.check(index)
            if marker is not None:
                invalid.append(marker)
        return invalid

    def __getitem__(self, index: int) -> dict[str, Any] | InvalidSample:
        loaded = self._load(index)
        if isinstance(loaded, InvalidSample):
            return loaded
        image, kp, visible = loaded
        h, w = image.shape[-2:]
        keypoints = keypoints_to_input(torch.from_numpy(kp), (h, w), self.input_size).float()
        item: dict[str, Any] = {
            "image": resize_image(image, self.input_size),
            "keypoints": keypoints,
            "visible": torch.from_numpy(visible),
            "original_size": torch.tensor([h, w], dtype=torch.long),
            "index": index,
            "path": str(self.records[index].path),
        }
        if self.transform is not None:
            item = self.transform(item)
        return item


def split_records(
    records: Sequence[T],
    val_fraction: float = 0.2,
    seed: int = 0,
    group: Callable[[T], Hashable] | None = None,
) -> tuple[list[T], list[T]]:
    """Split records into disjoint train and validation lists, reproducibly.

    ``round(n · val_fraction)`` records (at least 1, at most ``n - 1``) go to validation, chosen by
    a permutation from ``numpy.random.default_rng(seed)``; both lists keep the input order. With
    ``group``, whole groups (e.g. all frames of one case) go to the same side and the fraction
    counts groups.

    Args:
        records: Anything to split (typically :class:`KeypointRecord`).
        val_fraction: Validation share in ``(0, 1)``; 0.2 gives the usual 8:2 split.
        seed: Seed of the permutation.
        group: Optional key function; records with equal keys stay together.

    Returns:
        ``(train, val)``.

    Raises:
        ValueError: If ``val_fraction`` is not in ``(0, 1)`` or there are fewer than 2 records
            (groups).

    Examples:
        >>> train, val = split_records(list(range(10)), val_fraction=0.2, seed=0)
        >>> len(train), len(val), sorted(train + val) == list(range(10))
        (8, 2, True)
    """
    if not (isinstance(val_fraction, int | float) and 0.0 < val_fraction < 1.0):
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction!r}")
    items = list(records)
    keys: list[Hashable] = [group(r) for r in items] if group is not None else list(range(len(items)))
    unique = list(dict.fromkeys(keys))
    n = len(unique)
    if n < 2:
        what = "groups" if group is not None else "records"
        raise ValueError(f"need at least 2 {what} to split; got {n}")
    n_val = min(max(math.floor(n * val_fraction + 0.5), 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    val_keys = {unique[i] for i in perm[:n_val].tolist()}
    train = [r for r, k in zip(items, keys) if k not in val_keys]
    val = [r for r, k in zip(items, keys) if k in val_keys]
    return train, val


def natural_sort_key(path: str | Path) -> list[Any]:
    """Sort key that orders embedded numbers numerically: ``frame2 < frame10``.

    Examples:
        >>> sorted(["f10.png", "f2.png", "F1.png"], key=natural_sort_key)
        ['F1.png', 'f2.png', 'f10.png']
    """
    parts = re.split(r"(\d+)", str(path))
    return [int(p) if p.isdigit() else p.lower() for p in parts]


def list_images(
    folder: str | Path, recursive: bool = True, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> list[Path]:
    """Image files in a folder, in natural order (``frame2`` before ``frame10``).

    Files are picked by name ending (case-insensitive, :data:`IMAGE_EXTENSIONS` by default); they
    are still decoded by content.

    Args:
        folder: The folder.
        recursive: Include sub-folders.
        extensions: Accepted endings, with the dot.

    Returns:
        The file paths.

    Raises:
        NotADirectoryError: If ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    wanted = {e.lower() for e in extensions}
    pattern = "**/*" if recursive else "*"
    files = [p for p in root.glob(pattern) if p.is_file() and p.suffix.lower() in wanted]
    return sorted(files, key=natural_sort_key)


class ImageFolderDataset(Dataset):
    """Unlabelled images resized to ``size``, e.g. for MoCo pre-training.

    Items are ``(C, H, W)`` float32 tensors in ``[0, 1]``, resized (aspect ratio not kept) with
    :func:`resize_image`.

    Bad files: with ``on_error="raise"`` (default) reading one raises
    :class:`ImageReadError`/``FileNotFoundError`` naming it. With ``on_error="skip"`` a bad file
    gives a warning (once per file) and the next readable file in the list is returned in its
    place, so the length and batch sizes stay fixed; the bad files are listed in ``bad_files``
    (per process).

    Args:
        paths: Image files, or a folder (listed with :func:`list_images`).
        size: Output ``(H, W)`` (or an int) in px.
        in_chans: Output channels (1 or 3).
        on_error: ``"raise"`` or ``"skip"``.

    Attributes:
        paths: The files.
        bad_files: Files found unreadable so far (``on_error="skip"``).

    Examples:
        >>> import numpy as np, tempfile, os
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> Image.fromarray(np.zeros((6, 9, 3), np.uint8)).save(os.path.join(folder, "a.png"))
        >>> ds = ImageFolderDataset(folder, size=4)
        >>> len(ds), ds[0].shape
        (1, torch.Size([1, 4, 4]))
    """

    def __init__(
        self,
        paths: Sequence[str | Path] | str | Path,
        size: int | Sequence[int],
        in_chans: int = 1,
        on_error: str = "raise",
    ) -> None:
        if isinstance(paths, str | Path):
            self.paths: list[Path] = list_images(paths)
        else:
            self.paths = [Path(p) for p in paths]
        self.size = size_pair(size)
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3; got {in_chans}")
        self.in_chans = in_chans
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}")
        self.on_error = on_error
        self.bad_files: list[Path] = []

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor:
        if not 0 <= index < len(self.paths):
            raise IndexError(f"index {index} out of range for a dataset of {len(self.paths)}")
        if self.on_error == "raise":
            return _load_resized(self.paths[index], self.size, self.in_chans)
        for step in range(len(self.paths)):
            path = self.paths[(index + step) % len(self.paths)]
            try:
                return _load_resized(path, self.size, self.in_chans)
            except (OSError, ValueError) as exc:
                if path not in self.bad_files:
                    self.bad_files.append(path)
                    warnings.warn(f"skipping unreadable image {path}: {exc}", stacklevel=2)
        raise ImageReadError(f"none of the {len(self.paths)} images could be read")


class TemporalPairDataset(Dataset):
    """Positive pairs of nearby frames from the same sequence (temporal self-supervision).

    There is one item per frame that has a later partner: frame ``t`` of a sequence of ``n`` frames
    (``t < n - 1``) is paired with frame ``min(t + Δ, n - 1)``, with ``Δ`` drawn uniformly from the
    inclusive range ``delta`` — clipped at the end of the sequence. The draw depends only on
    ``(seed, epoch, index)``, so it is reproducible, independent of DataLoader workers, and changes
    with :meth:`set_epoch`. Sequences with fewer than 2 frames are skipped and counted in
    ``skipped_sequences``.

    Items are ``(frame_t, frame_t_plus_delta, sequence_index)``: two ``(C, H, W)`` float32 tensors
    resized to ``size`` and the index of the sequence in ``sequences``.

    Args:
        sequences: Per sequence, its frame files in temporal order.
        size: Output ``(H, W)`` (or an int) in px.
        delta: Inclusive ``(min, max)`` frame offset (or an int for a fixed offset), ``min >= 1``.
        in_chans: Output channels (1 or 3).
        seed: Seed of the offset draws.

    Attributes:
        sequences: The sequences (lists of paths).
        skipped_sequences: Indices of the sequences too short to pair.
        epoch: The current epoch.

    Examples:
        >>> ds = TemporalPairDataset([["a0", "a1", "a2"], ["b0"], ["c0", "c1"]], size=8, delta=(1, 3))
        >>> len(ds), ds.skipped_sequences
        (3, [1])
        >>> [ds.pair_indices(i)[:2] for i in range(len(ds))]
        [(0, 0), (0, 1), (2, 0)]
        >>> ds.pair_indices(1)[2]
        2
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[str | Path]],
        size: int | Sequence[int],
        delta: int | tuple[int, int] = (1, 3),
        in_chans: int = 1,
        seed: int = 0,
    ) -> None:
        lo, hi = (delta, delta) if isinstance(delta, int) else (int(delta[0]), int(delta[1]))
        if not 1 <= lo <= hi:
            raise ValueError(f"delta must satisfy 1 <= min <= max; got {delta}")
        self.delta = (lo, hi)
        self.size = size_pair(size)
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3; got {in_chans}")
        self.in_chans = in_chans
        self.seed = int(seed)
        self.epoch = 0
        self.sequences = [list(s) for s in sequences]
        self.skipped_sequences = [i for i, s in enumerate(self.sequences) if len(s) < 2]
        self._index: list[tuple[int, int]] = [
            (i, t) for i, s in enumerate(self.sequences) for t in range(len(s) - 1)
        ]

    def set_epoch(self, epoch: int) -> None:
        """Select the offsets of ``epoch`` (call at the start of each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._index)

    def pair_indices(self, index: int) -> tuple[int, int, int]:
        """``(sequence_index, t, t_partner)`` of item ``index`` in the current epoch."""
        if not 0 <= index < len(self._index):
            raise IndexError(f"index {index} out of range for a dataset of {len(self._index)}")
        seq, t = self._index[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        offset = int(rng.integers(self.delta[0], self.delta[1] + 1))
        return seq, t, min(t + offset, len(self.sequences[seq]) - 1)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        seq, t, t2 = self.pair_indices(index)
        frames = self.sequences[seq]
        return (
            _load_resized(frames[t], self.size, self.in_chans),
            _load_resized(frames[t2], self.size, self.in_chans),
            seq,
        )

"""Datasets: labelled images with keypoints, unlabelled images, and pairs of nearby video frames.

Rules of :class:`KeypointDataset` (see :mod:`sslkeypoint.data.invalid` for what happens to an
invalid sample): a single NaN keypoint makes that keypoint invisible, not the sample invalid. A
sample is invalid when its file is missing (a link to a missing file included: the detail says so)
or cannot be decoded, its keypoints do not parse as ``(K, 2)`` numbers, its ``visible`` values are
not one boolean-like value per keypoint (:func:`~sslkeypoint.data.records.parse_visible`: ``"no"``
is false, ``"maybe"`` unparseable), ``K`` differs from the dataset's ``num_keypoints``, no keypoint
is both finite and visible, or a visible keypoint lies outside the original image frame
``[-0.5, W - 0.5) × [-0.5, H - 0.5)`` (a label outside the image is a corrupted label; keypoints
marked invisible are not checked).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from sslkeypoint._utils import size_pair
from sslkeypoint.data.image_files import (
    ImageReadError,
    _missing_detail,
    list_images,
    natural_sort_key,
)
from sslkeypoint.data.images import read_image, resize_image
from sslkeypoint.data.invalid import InvalidSample
from sslkeypoint.data.records import PARTIAL_LABELS, KeypointRecord, parse_visible
from sslkeypoint.heatmaps import keypoints_to_input

__all__ = [
    "ImageFolderDataset",
    "IndexedDataset",
    "KeypointDataset",
    "TemporalPairDataset",
    "list_sequences",
]


def _load_resized(path: str | Path, size: tuple[int, int], in_chans: int) -> Tensor:
    return resize_image(read_image(path, channels=in_chans), size)


def _load_or_mark(index: int, path: str | Path, size: tuple[int, int], in_chans: int) -> Tensor | InvalidSample:
    """The resized image, or an :class:`InvalidSample` saying why it cannot be read (the reasons of
    :class:`KeypointDataset`)."""
    try:
        return _load_resized(path, size, in_chans)
    except FileNotFoundError:
        return InvalidSample(index, str(path), KeypointDataset.REASON_MISSING, _missing_detail(path))
    except (OSError, ValueError) as exc:  # undecodable file, unsupported mode or value range
        return InvalidSample(index, str(path), KeypointDataset.REASON_UNREADABLE, str(exc))


def _pixel_size(size: float | tuple[float, float] | None) -> Tensor:
    """A record's pixel size as a ``(2,)`` float tensor ``(sx, sy)`` in mm, NaN when unknown."""
    if size is None:
        return torch.full((2,), math.nan)
    return torch.tensor([size, size] if isinstance(size, int | float) else list(size), dtype=torch.float32)


class KeypointDataset(Dataset):
    """Labelled images resized to the network input, keypoints mapped along.

    Each item is a dict:

    * ``image``: ``(C, H, W)`` float32 in ``[0, 1]`` at ``input_size`` (:func:`resize_image`);
    * ``keypoints``: ``(K, 2)`` float32 ``(x, y)`` in input px
      (:func:`~sslkeypoint.heatmaps.keypoints_to_input`); NaN for a missing keypoint;
    * ``visible``: ``(K,)`` bool, false for missing keypoints and those the record marks invisible;
    * ``original_size``: ``(2,)`` long ``(H, W)`` of the file, to map predictions back with
      :func:`~sslkeypoint.heatmaps.keypoints_to_original`;
    * ``pixel_size``: ``(2,)`` float32 ``(sx, sy)``, the record's pixel size in mm (NaN when it has
      none);
    * ``annotated``: ``(K,)`` bool, the landmarks the record says anything about: all of them,
      except for a record with partial labels (``meta[PARTIAL_LABELS]`` true, e.g. a
      pseudo-label), whose missing keypoints are unknown rather than absent — fine-tuning then
      adds no loss for them (:class:`~sslkeypoint.lightning.HeatmapFinetuneModule`);
    * ``index``: the dataset index; ``path``: the file as a string.

    An unusable record gives an :class:`InvalidSample` marker instead (see the module notes for the
    rules); collate with :class:`~sslkeypoint.data.FilteringCollate`.

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
        >>> from sslkeypoint.data import filtering_collate
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
        if np.iscomplexobj(record.keypoints):
            return self._invalid(index, self.REASON_UNPARSEABLE, "complex coordinates; expected real (x, y)")
        try:
            kp = np.array(record.keypoints, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            return self._invalid(index, self.REASON_UNPARSEABLE, str(exc))
        if np.isinf(kp).any():
            return self._invalid(index, self.REASON_UNPARSEABLE, "infinite coordinate (NaN marks a missing keypoint)")
        if kp.ndim != 2 or kp.shape[1] != 2:
            return self._invalid(index, self.REASON_UNPARSEABLE, f"expected shape (K, 2), got {kp.shape}")
        if kp.shape[0] != k:
            return self._invalid(index, self.REASON_WRONG_COUNT, f"expected {k}, got {kp.shape[0]}")
        finite = np.asarray(np.isfinite(kp).all(axis=1), dtype=bool)
        kp[~finite] = np.nan
        visible = finite.copy()
        if record.visible is not None:
            try:
                vis = parse_visible(record.visible, k)
            except ValueError as exc:
                return self._invalid(index, self.REASON_UNPARSEABLE, str(exc))
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
            return self._invalid(index, self.REASON_MISSING, _missing_detail(self.records[index].path))
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
            "pixel_size": _pixel_size(self.records[index].pixel_size),
            "annotated": torch.from_numpy(visible.copy()) if self.records[index].meta.get(PARTIAL_LABELS)
            else torch.ones(len(visible), dtype=torch.bool),
            "index": index,
            "path": str(self.records[index].path),
        }
        if self.transform is not None:
            item = self.transform(item)
        return item


class ImageFolderDataset(Dataset):
    """Unlabelled images resized to ``size``, e.g. for MoCo pre-training.

    Items are ``(C, H, W)`` float32 tensors in ``[0, 1]``, resized (aspect ratio not kept) with
    :func:`resize_image`.

    Bad files: with ``on_error="raise"`` (default) reading one raises
    :class:`ImageReadError`/``FileNotFoundError`` naming it. With ``on_error="invalid"`` the item
    is an :class:`~sslkeypoint.data.InvalidSample` marker (reason ``"missing file"`` or
    ``"unreadable image"`` with the decoder's message) for
    :class:`~sslkeypoint.data.FilteringCollate` to drop and count, as
    :class:`~sslkeypoint.data.PretrainDataModule` does. With ``on_error="skip"`` a bad file gives a
    warning (once per file) and the next readable file in the list is returned in its place, so a
    plain ``DataLoader`` keeps full batches; the bad files are listed in ``bad_files`` (per
    process).

    Args:
        paths: Image files, or a folder (listed with :func:`list_images`).
        size: Output ``(H, W)`` (or an int) in px.
        in_chans: Output channels (1 or 3).
        on_error: ``"raise"``, ``"invalid"`` or ``"skip"``.

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
        >>> ImageFolderDataset([os.path.join(folder, "gone.png")], size=4, on_error="invalid")[0].reason
        'missing file'
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
        if on_error not in ("raise", "invalid", "skip"):
            raise ValueError(f"on_error must be 'raise', 'invalid' or 'skip'; got {on_error!r}")
        self.on_error = on_error
        self.bad_files: list[Path] = []

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Tensor | InvalidSample:
        if not 0 <= index < len(self.paths):
            raise IndexError(f"index {index} out of range for a dataset of {len(self.paths)}")
        if self.on_error == "raise":
            return _load_resized(self.paths[index], self.size, self.in_chans)
        if self.on_error == "invalid":
            return _load_or_mark(index, self.paths[index], self.size, self.in_chans)
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
    resized to ``size`` and the index of the sequence in ``sequences``. A frame that cannot be read
    raises (``on_error="raise"``) or makes the item an :class:`~sslkeypoint.data.InvalidSample`
    naming that frame (``on_error="invalid"``, for :class:`~sslkeypoint.data.FilteringCollate`).

    Args:
        sequences: Per sequence, its frame files in temporal order.
        size: Output ``(H, W)`` (or an int) in px.
        delta: Inclusive ``(min, max)`` frame offset (or an int for a fixed offset), ``min >= 1``.
        in_chans: Output channels (1 or 3).
        seed: Seed of the offset draws.
        on_error: ``"raise"`` or ``"invalid"``.

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
        on_error: str = "raise",
    ) -> None:
        if on_error not in ("raise", "invalid"):
            raise ValueError(f"on_error must be 'raise' or 'invalid'; got {on_error!r}")
        self.on_error = on_error
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

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int] | InvalidSample:
        seq, t, t2 = self.pair_indices(index)
        frames = self.sequences[seq]
        if self.on_error == "raise":
            return (
                _load_resized(frames[t], self.size, self.in_chans),
                _load_resized(frames[t2], self.size, self.in_chans),
                seq,
            )
        first = _load_or_mark(index, frames[t], self.size, self.in_chans)
        if isinstance(first, InvalidSample):
            return first
        second = _load_or_mark(index, frames[t2], self.size, self.in_chans)
        if isinstance(second, InvalidSample):
            return second
        return first, second, seq


class IndexedDataset(Dataset):
    """Items ``(item, index)`` of another dataset, so a consumer knows where each item came from.

    MoCo pre-training uses the image index as the group of each key: queue entries of the query's
    own image are then left out of its negatives. An :class:`~sslkeypoint.data.InvalidSample`
    marker of the wrapped dataset is passed on as it is (it carries its index).

    Args:
        dataset: Any map-style dataset.

    Examples:
        >>> ds = IndexedDataset(["a", "b"])
        >>> len(ds), ds[1]
        (2, ('b', 1))
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int] | InvalidSample:
        item = self.dataset[index]
        return item if isinstance(item, InvalidSample) else (item, index)


def list_sequences(root: str | PathLike[str], min_frames: int = 2) -> list[list[Path]]:
    """One sequence per sub-folder of ``root`` (natural order), its frames in natural order.

    Sub-folders with fewer than ``min_frames`` images are skipped.

    Raises:
        ValueError: If no sub-folder holds ``min_frames`` images.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"sequence folder {root} does not exist or is not a folder")
    sequences = []
    for sub in sorted((p for p in root.iterdir() if p.is_dir()), key=natural_sort_key):
        frames = list_images(sub)
        if len(frames) >= min_frames:
            sequences.append(frames)
    if not sequences:
        raise ValueError(f"no sub-folder of {root} holds {min_frames} or more images")
    return sequences

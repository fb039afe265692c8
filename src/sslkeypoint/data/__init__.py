"""Data: image decoding, labelled records, datasets, invalid samples, splits, samplers, fingerprints.

* :mod:`~sslkeypoint.data.images` — decoding by content into float tensors, the resize;
* :mod:`~sslkeypoint.data.image_files` — image files upright as viewers show them, their sizes,
  listing folders;
* :mod:`~sslkeypoint.data.image_values` — pixel values as float ``[0, 1]``, checked like files;
* :mod:`~sslkeypoint.data.text` — the text files users give, read as UTF-8 or refused by name;
* :mod:`~sslkeypoint.data.records` — :class:`KeypointRecord` (with group and pixel size);
* :mod:`~sslkeypoint.data.formats` — records files: own CSV / JSON, COCO, DeepLabCut, LabelMe, sleap-io;
* :mod:`~sslkeypoint.data.datasets` — labelled, unlabelled and temporal-pair datasets;
* :mod:`~sslkeypoint.data.invalid` — the one mechanism for invalid samples;
* :mod:`~sslkeypoint.data.splits` — reproducible (group-aware) splits;
* :mod:`~sslkeypoint.data.samplers` — resume-exact shuffling and unrepeated evaluation shards;
* :mod:`~sslkeypoint.data.fingerprint` — fingerprints of the training files and labels, by content.

This floor knows nothing of training: the LightningDataModules built on it are in
:mod:`sslkeypoint.lightning.datamodules`.
"""

from __future__ import annotations

from sslkeypoint.data.datasets import (
    ImageFolderDataset,
    IndexedDataset,
    KeypointDataset,
    TemporalPairDataset,
    list_sequences,
)
from sslkeypoint.data.fingerprint import data_fingerprint, file_digest, records_fingerprint
from sslkeypoint.data.formats import FORMATS, read_records, write_coco
from sslkeypoint.data.image_files import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    list_images,
    natural_sort_key,
    open_image,
    read_image_size,
)
from sslkeypoint.data.images import ImageSource, read_image, resize_image
from sslkeypoint.data.invalid import (
    DROP_KEYS,
    DropCounts,
    FilteringCollate,
    InvalidSample,
    filtering_collate,
    without_drops,
)
from sslkeypoint.data.records import (
    PARTIAL_LABELS,
    KeypointRecord,
    PixelSize,
    format_point,
    parse_point,
    parse_visible,
)
from sslkeypoint.data.samplers import EpochShuffleSampler, ShardSampler
from sslkeypoint.data.splits import split_records
from sslkeypoint.data.text import read_json, read_text

__all__ = [
    "DROP_KEYS",
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "PARTIAL_LABELS",
    "DropCounts",
    "EpochShuffleSampler",
    "FilteringCollate",
    "ImageFolderDataset",
    "ImageReadError",
    "ImageSource",
    "IndexedDataset",
    "InvalidSample",
    "KeypointDataset",
    "KeypointRecord",
    "PixelSize",
    "ShardSampler",
    "TemporalPairDataset",
    "data_fingerprint",
    "file_digest",
    "filtering_collate",
    "format_point",
    "list_images",
    "list_sequences",
    "natural_sort_key",
    "open_image",
    "parse_point",
    "parse_visible",
    "read_image",
    "read_image_size",
    "read_json",
    "read_records",
    "read_text",
    "records_fingerprint",
    "resize_image",
    "split_records",
    "without_drops",
    "write_coco",
]

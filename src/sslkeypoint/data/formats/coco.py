"""COCO keypoints: what CVAT, Label Studio, MMPose and most labelling tools export.

A COCO keypoints file has ``images`` (``id``, ``file_name``, ``width``, ``height``),
``annotations`` (``image_id``, ``category_id``, ``keypoints`` as ``[x1, y1, v1, x2, y2, v2, ...]``)
and ``categories`` (``id``, ``name``, ``keypoints``: the landmark names). Coordinates are read as
written: integer coordinates are pixel centres, the convention of this library, of the COCO
keypoint annotations (detectron2 treats them as pixel indices) and of OpenCV. The visibility flag
``v`` is 0 for a landmark that was not labelled (it becomes NaN: missing), 1 for labelled but
occluded and 2 for labelled and visible (both are known positions and are trained on); any other
value is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sslkeypoint.data.image_files import read_image_size
from sslkeypoint.data.records import KeypointRecord, _resolve, check_pixel_size

__all__ = ["is_coco", "records_from_coco", "write_coco"]


def is_coco(data: Any) -> bool:
    """Whether parsed JSON is a COCO keypoints file."""
    return isinstance(data, Mapping) and "annotations" in data and "images" in data


def _category(p: Path, data: Mapping[str, Any], category: str | int | None) -> Mapping[str, Any]:
    cats = [c for c in data.get("categories") or [] if isinstance(c, Mapping) and c.get("keypoints")]
    if category is not None:
        chosen = [c for c in cats if category in (c.get("id"), c.get("name"))]
        if not chosen:
            raise ValueError(
                f"{p}: no keypoint category {category!r}; the file has {[c.get('name') for c in cats]}"
            )
        return chosen[0]
    if not cats:
        raise ValueError(f"{p}: COCO file without a category that names keypoints ('categories[].keypoints')")
    if len(cats) > 1:
        raise ValueError(
            f"{p}: {len(cats)} keypoint categories ({[c.get('name') for c in cats]}); choose one with category=..."
        )
    return cats[0]


def records_from_coco(
    p: Path, data: Mapping[str, Any], *, category: str | int | None = None
) -> tuple[list[KeypointRecord], tuple[str, ...]]:
    """Records from a parsed COCO keypoints file: one per annotated image of the category.

    Images without an annotation of the category are left out (they are unlabelled images). An
    image may carry a ``group`` (or ``video_id``) and a ``pixel_size_mm`` field: they become the
    record's group and pixel size.

    Raises:
        ValueError: Naming the file and annotation: several annotations of the category on one
            image (one instance per image is supported), a keypoint list of the wrong length, an
            unknown ``image_id``, a non-numeric value, a visibility flag other than 0, 1 or 2.
    """
    cat = _category(p, data, category)
    names = tuple(str(n) for n in cat["keypoints"])
    k = len(names)
    images: dict[Any, Mapping[str, Any]] = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, Mapping) or "id" not in image or "file_name" not in image:
            raise ValueError(f"{p}, images[{i}]: expected an object with 'id' and 'file_name'; got {image!r}"[:300])
        images[image["id"]] = image
    seen: dict[Any, int] = {}
    records: list[KeypointRecord] = []
    for i, ann in enumerate(data["annotations"]):
        where = f"{p}, annotations[{i}]"
        if not isinstance(ann, Mapping) or ann.get("category_id", cat.get("id")) != cat.get("id"):
            continue
        if "keypoints" not in ann:
            continue
        image_id = ann.get("image_id")
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id!r} is not in 'images'")
        if image_id in seen:
            raise ValueError(
                f"{where}: a second annotation of category {cat.get('name')!r} on image "
                f"{images[image_id]['file_name']!r} (first: annotations[{seen[image_id]}]); one instance per image "
                "is supported"
            )
        seen[image_id] = i
        values = ann["keypoints"]
        try:
            flat = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{where}, field 'keypoints': expected numbers; got {values!r}"[:300]) from None
        if flat.shape != (3 * k,):
            raise ValueError(
                f"{where}, field 'keypoints': expected {3 * k} numbers (x, y, v for {k} keypoints {list(names)}); "
                f"got {flat.size}"
            )
        triples = flat.reshape(k, 3)
        if not np.isfinite(triples).all():
            raise ValueError(f"{where}, field 'keypoints': expected finite numbers; got {values!r}"[:300])
        flags = triples[:, 2]
        odd = np.flatnonzero((flags != 0) & (flags != 1) & (flags != 2))
        if odd.size:
            j = int(odd[0])
            raise ValueError(
                f"{where}, field 'keypoints': keypoint {j} ({names[j]!r}) has visibility flag {flags[j]:g}; expected 0 "
                "(not labelled), 1 (labelled, occluded) or 2 (labelled, visible)"
            )
        kp = triples[:, :2].copy()
        kp[triples[:, 2] <= 0] = np.nan
        image = images[image_id]
        group = image.get("group", image.get("video_id"))
        size = check_pixel_size(image.get("pixel_size_mm"), f"{p}, image {image['file_name']!r}, field 'pixel_size_mm'")
        records.append(KeypointRecord(
            _resolve(p.parent, str(image["file_name"])), kp, None,
            {"image_id": image_id, "annotation": i}, None if group is None else str(group), size,
        ))
    return records, names


def write_coco(
    records: Sequence[KeypointRecord],
    path: str | os.PathLike[str],
    keypoint_names: Sequence[str],
    *,
    category: str = "object",
    skeleton: Sequence[tuple[int, int]] = (),
) -> Path:
    """Write records as a COCO keypoints file that :func:`sslkeypoint.data.read_records` reads back.

    Image paths are written relative to the file's folder where they lie below it. Width and height
    are read from the image files' headers, as the image is shown (an EXIF orientation applied:
    :func:`~sslkeypoint.data.read_image_size`), which is the image the keypoints are in. A
    missing (NaN) keypoint is written as ``0, 0, 0``, a labelled but invisible one with ``v = 1``,
    a visible one with ``v = 2``. Each annotation's
    ``bbox`` is the box of its labelled keypoints. Groups and pixel sizes go into the image entries
    (``group``, ``pixel_size_mm``).

    Args:
        records: Labelled records with ``K = len(keypoint_names)`` keypoints each.
        path: The ``.json`` file to write (replaced atomically).
        keypoint_names: Names of the ``K`` landmarks.
        category: Name of the one category.
        skeleton: Optional edges between landmarks, 0-based (written 1-based, as COCO does).

    Returns:
        The file written.

    Raises:
        ValueError: If a record is unlabelled or has another number of keypoints.
    """
    out = Path(path)
    names = [str(n) for n in keypoint_names]
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, r in enumerate(records):
        if r.keypoints is None or r.num_keypoints != len(names):
            raise ValueError(
                f"record {i} ({r.path}): expected {len(names)} keypoints {names}; got {r.num_keypoints}"
            )
        kp = np.asarray(r.keypoints, dtype=np.float64)
        visible = np.ones(len(names), bool) if r.visible is None else np.asarray(r.visible, bool)
        known = np.asarray(np.isfinite(kp).all(axis=1), dtype=bool)
        flags: list[bool] = [bool(v) for v in np.asarray(visible, bool).reshape(-1)]
        flat: list[float] = []
        for (x, y), ok, vis in zip(kp.tolist(), [bool(v) for v in known.reshape(-1)], flags):
            flat += [x, y, 2 if vis else 1] if ok else [0, 0, 0]
        height, width = read_image_size(r.path)
        try:
            name = os.path.relpath(Path(r.path).resolve(), out.parent.resolve())
        except ValueError:  # another drive
            name = str(Path(r.path).resolve())
        if name.startswith(".."):
            name = str(Path(r.path).resolve())
        image: dict[str, Any] = {"id": i + 1, "file_name": name.replace(os.sep, "/"), "width": width, "height": height}
        if r.group is not None:
            image["group"] = r.group
        if r.pixel_size is not None:
            image["pixel_size_mm"] = r.pixel_size
        images.append(image)
        pts = kp[known]
        x0, y0 = (pts.min(axis=0).tolist() if len(pts) else [0.0, 0.0])
        x1, y1 = (pts.max(axis=0).tolist() if len(pts) else [0.0, 0.0])
        annotations.append({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "keypoints": flat, "num_keypoints": int(known.sum()),
            "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0,
        })
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": category, "supercategory": category, "keypoints": names,
                        "skeleton": [[a + 1, b + 1] for a, b in skeleton]}],
    }
    from sslkeypoint.atomic import write_text_atomic

    write_text_atomic(out, json.dumps(data, indent=1))
    return out

"""Pose-data formats read by `sleap-io <https://io.sleap.ai>`_ (optional extra ``formats``).

sleap-io reads SLEAP (``.slp``), NWB, Label Studio, DeepLabCut, COCO, JABS, Ultralytics and more
into one ``Labels`` object; :func:`records_from_sleap` turns its labelled frames into records. A
labelled frame must come from an image (an image list or a folder of images, as labelling tools
keep them): frames inside a video file have no file of their own to train on — extract them first.
Each video (image sequence) is a group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sslkeypoint.data.records import KeypointRecord

__all__ = ["load_sleap", "records_from_sleap"]


def load_sleap(p: Path, format: str | None = None) -> Any:
    """Load ``p`` with sleap-io, or say how to install it."""
    try:
        import sleap_io
    except ImportError:
        raise ValueError(
            f"{p}: reading this format needs sleap-io: pip install 'sslkeypoint[formats]'"
        ) from None
    try:
        return sleap_io.load_file(str(p), format=format)
    except Exception as err:  # sleap-io raises many kinds; the file is what the user must check
        raise ValueError(f"{p}: sleap-io could not read it ({type(err).__name__}: {err})") from None


def records_from_sleap(labels: Any, *, where: str = "labels") -> tuple[list[KeypointRecord], tuple[str, ...]]:
    """Records from a ``sleap_io.Labels``: one per labelled frame with one instance.

    Args:
        labels: A ``sleap_io.Labels`` with one skeleton.
        where: Name for error messages (the file).

    Returns:
        ``(records, landmark names)``; points without a position are missing (NaN).

    Raises:
        ValueError: With several skeletons, several instances in one frame, or frames of a video
            file rather than of images.
    """
    if len(labels.skeletons) != 1:
        raise ValueError(f"{where}: expected one skeleton; got {len(labels.skeletons)}")
    names = tuple(str(n) for n in labels.skeletons[0].node_names)
    videos = list(labels.videos)
    records: list[KeypointRecord] = []
    for i, frame in enumerate(labels.labeled_frames):
        instances = list(frame.user_instances) or list(frame.instances)
        if not instances:
            continue
        if len(instances) > 1:
            raise ValueError(f"{where}, labelled frame {i}: {len(instances)} instances; one per image is supported")
        files = frame.video.filename
        if not isinstance(files, list | tuple):
            raise ValueError(
                f"{where}, labelled frame {i}: frame {frame.frame_idx} of the video file {files}; extract the "
                "labelled frames as images first"
            )
        path = Path(files[frame.frame_idx])
        kp = np.asarray(instances[0].numpy(), dtype=np.float64)[:, :2]
        kp[~np.isfinite(kp).all(axis=1)] = np.nan
        group = f"video{videos.index(frame.video)}" if len(videos) > 1 else None
        records.append(KeypointRecord(path, kp, None, {"frame": i}, group))
    return records, names

"""``python -m hc18_biometry predict``: HC, BPD and OFD in mm for a folder of images.

``--model`` is a predictor folder (``OUT/model`` of the demo) or a fine-tuning checkpoint;
``--pixel-size`` a CSV ``filename,pixel_size_mm`` (HC18's ``unlabelled/pixel_size.csv`` or the
challenge's ``test_set_pixel_size.csv``, whose header is ``filename,pixel size(mm)``); ``--out``
gets one row per image, ``filename,hc_mm,bpd_mm,ofd_mm``, in the order of the file names (the
challenge's ``*_Annotation.png`` label images are not images to measure and are passed over). An image
without a pixel size in the table is refused before anything is predicted; a head through whose
predicted points no ellipse goes gets an empty ``hc_mm`` cell.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.cli.lists import pixel_size_table
from sslkeypoint.data import list_images
from sslkeypoint.inference import KeypointPredictor

__all__ = ["COLUMNS", "predict_folder"]

#: The columns of the prediction table, in order (a contract: other tools read them by name).
COLUMNS = ("filename", "hc_mm", "bpd_mm", "ofd_mm")


def predict_folder(model: str | Path, images: str | Path, pixel_size: str | Path, out: str | Path,
                   progress: bool = False) -> Path:
    """Predict every image of ``images`` (not its sub-folders) and write ``out``; returns ``out``.

    Raises:
        FileNotFoundError: A missing model, image folder or pixel-size table.
        ValueError: No images, an image without a pixel size, a model without the ``hc``,
            ``bpd`` and ``ofd`` measures.
    """
    images = Path(images)
    if not images.is_dir():
        raise FileNotFoundError(f"--images {images}: no such folder" if not images.exists() else f"--images {images}: not a folder")
    files = sorted((p for p in list_images(images, recursive=False) if not p.stem.endswith("_Annotation")),
                   key=lambda p: p.name)
    if not files:
        raise ValueError(f"--images {images}: no images in this folder")
    sizes = pixel_size_table(Path(pixel_size))
    missing = [p.name for p in files if p.name not in sizes]
    if missing:
        raise ValueError(f"--pixel-size {pixel_size}: no pixel size for {len(missing)} of the {len(files)} images, "
                         f"e.g. {missing[0]}; every image needs one (filename,pixel_size_mm)")
    predictor = KeypointPredictor.from_checkpoint(model)
    absent = [m for m in ("hc", "bpd", "ofd") if m not in predictor.measures]
    if absent:
        raise ValueError(f"--model {model}: it computes no {', '.join(absent)} (measures: {sorted(predictor.measures)}); "
                         "give a model of this example (the demo's OUT/model)")
    result = predictor.predict(files, pixel_size=[sizes[p.name] for p in files], progress=progress)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i, p in enumerate(files):
        values = [float(result.measures[m][i]) for m in ("hc", "bpd", "ofd")]
        writer.writerow([p.name, *("" if not math.isfinite(v) else f"{v:.2f}" for v in values)])
    out = Path(out)
    if out.parent != Path():
        out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, buffer.getvalue())
    return out

"""Small HC18-like folders for the tests: heads as bright elliptical rings on speckle, in either layout."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image

from sslkeypoint.geometry import Ellipse


def _grid(ellipse: Ellipse, height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return ellipse.implicit(np.stack([xs, ys], -1).astype(np.float64))


def head_image(ellipse: Ellipse, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A uint8 image: speckle, a bright skull ring on the ellipse, a darker inside."""
    f = np.sqrt(_grid(ellipse, height, width))
    image = 40 + 30 * rng.random((height, width))
    image[f < 1] -= 15
    image += 180 * np.exp(-(((f - 1) * ellipse.axes[1] / 1.5) ** 2))
    return np.clip(image, 0, 255).astype(np.uint8)


def random_ellipse(rng: np.random.Generator, height: int, width: int) -> Ellipse:
    a = rng.uniform(0.22, 0.3) * width
    return Ellipse((rng.uniform(0.45, 0.55) * width, rng.uniform(0.45, 0.55) * height),
                   (a, a * rng.uniform(0.72, 0.88)), rng.uniform(-0.35, 0.35))


def write_hc18(root: Path, subjects: int = 12, per_subject: int = 2, unlabelled: int = 6, *,
               layout: str = "shared", height: int = 108, width: int = 160, seed: int = 0) -> list[tuple[str, Ellipse, float]]:
    """Write an HC18 folder; returns ``(filename, ellipse, pixel size)`` of every labelled image."""
    rng = np.random.default_rng(seed)
    images = root / ("images" if layout == "shared" else "training_set")
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(subjects):
        for k in range(per_subject):
            name = f"{s:03d}_HC.png" if k == 0 else f"{s:03d}_{k + 1}HC.png"
            e = random_ellipse(rng, height, width)
            px = float(rng.uniform(0.1, 0.3))
            Image.fromarray(head_image(e, height, width, rng)).save(images / name)
            if layout == "shared":
                (root / "masks").mkdir(exist_ok=True)
                Image.fromarray((_grid(e, height, width) <= 1).astype(np.uint8)).save(root / "masks" / name)
            else:
                ring = np.abs(np.sqrt(_grid(e, height, width)) - 1) * e.axes[1] < 0.8
                Image.fromarray(ring.astype(np.uint8) * 255).save(images / name.replace(".png", "_Annotation.png"))
            rows.append((name, e, px))
    hc = {name: e.perimeter() * px for name, e, px in rows}
    if layout == "shared":
        with open(root / "labels.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "subject", "pixel_size_mm", "hc_mm"])
            w.writerows([name, name.split("_")[0], f"{px:.6f}", f"{hc[name]:.2f}"] for name, _, px in rows)
        folder, table, header = root / "unlabelled", root / "unlabelled" / "pixel_size.csv", "pixel_size_mm"
    else:
        with open(root / "training_set_pixel_size_and_HC.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "pixel size(mm)", "head circumference (mm)"])
            w.writerows([name, f"{px:.6f}", f"{hc[name]:.2f}"] for name, _, px in rows)
        folder, table, header = root / "test_set", root / "test_set_pixel_size.csv", "pixel size(mm)"
    folder.mkdir(exist_ok=True)
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", header])
        for i in range(unlabelled):
            name = f"{i:03d}_HC.png"
            Image.fromarray(head_image(random_ellipse(rng, height, width), height, width, rng)).save(folder / name)
            w.writerow([name, f"{rng.uniform(0.1, 0.3):.6f}"])
    assert math.isfinite(sum(hc.values()))
    return rows

"""The demo's report: ``report.md`` with a table per method and two figures.

* ``figures/ellipses.png`` — testing images with the head ellipse given by the data set (green)
  and the one through the predicted direction points (red, points as dots; the predicted ends of
  the axes as crosses): the three best, two middle and three worst images of the model by the
  challenge's score.
* ``figures/hc_error.png`` — every testing image's absolute HC difference against its HC, one
  colour per method: whether small or large heads err more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sslkeypoint.atomic import save_figure, write_text_atomic
from sslkeypoint.data import read_image
from sslkeypoint.geometry import ellipse_through_points

if TYPE_CHECKING:
    from hc18_biometry.pipeline import Score

__all__ = ["draw_ellipses", "draw_hc_errors", "write_report"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _examples(errors: np.ndarray) -> list[int]:
    """Indices of the 3 best, 2 middle and 3 worst finite errors (fewer when there are fewer)."""
    order = [int(i) for i in np.argsort(np.where(np.isfinite(errors), errors, np.inf)) if np.isfinite(errors[i])]
    if len(order) <= 8:
        return order
    mid = len(order) // 2
    return order[:3] + order[mid - 1 : mid + 1] + order[-3:]


def draw_ellipses(sc: Score, path: Path, directions: int) -> Path:
    """The ``figures/ellipses.png`` of the module notes."""
    plt = _pyplot()
    ev = sc.evaluation
    picks = _examples(sc.hc_error)
    cols = 4
    rows = max(1, math.ceil(len(picks) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), picks, strict=False):
        image = read_image(ev.files[i], channels=1)[0].numpy()
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        for kp, colour in ((ev.target[i], "#2ca02c"), (ev.predicted[i], "#d62728")):
            pts = kp[4 : 4 + directions].numpy()
            try:
                outline = ellipse_through_points(pts).points(200)
                ax.plot(*np.vstack([outline, outline[:1]]).T, color=colour, lw=1.2)
            except ValueError:
                pass
        ax.scatter(*ev.predicted[i][4 : 4 + directions].numpy().T, s=8, color="#d62728")
        ax.scatter(*ev.predicted[i][:4].numpy().T, s=18, marker="x", color="#ff7f0e", linewidths=1)
        ax.set_title(f"{Path(ev.files[i]).name}: HC {sc.hc_truth[i]:.0f} mm, error {sc.hc_error[i]:.1f} mm", fontsize=8)
    fig.suptitle("testing images: the given head ellipse (green), the ellipse through the predicted direction points "
                 "(red dots), the predicted ends of the axes (crosses)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def draw_hc_errors(scores: Mapping[str, Score], path: Path) -> Path:
    """The ``figures/hc_error.png`` of the module notes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for name, sc in scores.items():
        ok = np.isfinite(sc.hc_error)
        ax.scatter(sc.hc_truth[ok], sc.hc_error[ok], s=10, alpha=0.6,
                   label=f"{name} (mean {sc.hc_error[ok].mean():.2f} mm)")
    ax.set_xlabel("head circumference given (mm)")
    ax.set_ylabel("|HC predicted − HC given| (mm)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def write_report(out: Path, metrics: Mapping[str, Any], scores: Mapping[str, Score], model: str, directions: int) -> Path:
    """Write ``out/report.md`` and its figures; returns the report's path."""
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    draw_ellipses(scores[model], figures / "ellipses.png", directions)
    draw_hc_errors(scores, figures / "hc_error.png")
    lines = [
        "# Fetal head biometry on HC18",
        "",
        f"Data: `{metrics['data']}`: {metrics['training_images']} training images, {metrics['testing_images']} "
        f"testing images of {metrics['testing_subjects']} other subjects, {metrics['unlabelled_images']} unlabelled "
        f"images. Labelled for fine-tuning: **{metrics['labels']}** training images, chosen by coverage of the "
        f"MoCo v2 encoder's features (`labelled.csv`). Profile `{metrics['profile']}`, seed {metrics['seed']}, "
        f"{metrics['seconds'] / 60:.1f} min.",
        "",
        "Errors on the testing images, in mm with each image's pixel size. *HC error* is the challenge's score: "
        "the absolute difference between the perimeter of the ellipse through the predicted direction points and "
        "the data set's head circumference. BPD and OFD are that ellipse's short and long axes, compared with "
        "the given ellipse's; the landmark error is the mean distance of all predicted landmarks to theirs.",
        "",
        "| method | HC error mean ± sd | median | 95th pct. | worst | BPD error | OFD error | landmark error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in metrics["methods"].items():
        mark = " (model)" if name == model else ""
        lines.append(
            f"| `{name}`{mark} | {s['hc_mae_mm']:.2f} ± {s['hc_sd_mm']:.2f} | {s['hc_median_mm']:.2f} | "
            f"{s['hc_p95_mm']:.2f} | {s['hc_max_mm']:.2f} | {s['bpd_mae_mm']:.2f} | {s['ofd_mae_mm']:.2f} | "
            f"{s['mre_mm']:.2f} |")
    lines += [
        "",
        "`unet` is trained from scratch on the labelled images only; `pseudo_unet` is pseudo-label "
        "self-training: a teacher trained like `unet` labels the unlabelled pool, and a student learns from "
        "the labels and the pseudo-labels it kept. The model in `model/` is "
        f"`{model}`'s; `python -m hc18_biometry predict --model {out / 'model'} --images DIR --pixel-size "
        "FILE.csv --out PRED.csv` measures new images with it.",
        "",
        "![predicted ellipses](figures/ellipses.png)",
        "",
        "![HC error against HC](figures/hc_error.png)",
        "",
        "Per-image errors: `evaluation/<method>/per_image.csv`.",
        "",
    ]
    write_text_atomic(out / "report.md", "\n".join(lines))
    return out / "report.md"

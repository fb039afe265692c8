"""The figures of the report: prediction grids, training curves, error histograms."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iugc_aop.landmarks import AOP, LANDMARK_NAMES
from sslkeypoint.atomic import atomic_path, save_figure
from sslkeypoint.visualize import draw_predictions

__all__ = ["csv_log", "error_histograms", "image_grid", "landmark_points", "loss_rebound", "pyplot", "read_rows",
           "series", "training_curves"]


def pyplot() -> Any:
    """matplotlib's ``pyplot`` on the non-interactive ``Agg`` backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a predictions CSV, numbers as floats (``[]`` when the file is missing)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k, v in list(r.items()):
            if k not in ("filename", "path"):
                try:
                    r[k] = float(v)
                except (TypeError, ValueError):
                    pass
    return rows


def landmark_points(row: Mapping[str, Any], true: bool) -> list[list[float]]:
    """The predicted (or true) PS1, PS2, FH1 of a predictions row."""
    tag = "_true" if true else ""
    return [[float(row[f"{n}{tag}_x"]), float(row[f"{n}{tag}_y"])] for n in LANDMARK_NAMES]


def image_grid(rows: Sequence[Mapping[str, Any]], path: Path, title: str, cols: int = 3, size: int = 256) -> Path | None:
    """Predictions drawn on their images (prediction, ground truth, AoP), a grid with a title."""
    from PIL import Image, ImageDraw

    if not rows:
        return None
    tiles = []
    for r in rows:
        img = draw_predictions(r["path"], landmark_points(r, False), gt=landmark_points(r, True), names=list(LANDMARK_NAMES), measures={"AoP": AOP})
        img = img.resize((size, size))
        ImageDraw.Draw(img).text((4, size - 14), f"{r['filename']}: MRE {float(r['mre_px']):.1f} px, "
                                                 f"AoP error {float(r['aop_err_deg']):.1f} deg", fill=(255, 255, 0))
        tiles.append(img)
    cols = min(cols, len(tiles))
    nrows = math.ceil(len(tiles) / cols)
    sheet = Image.new("RGB", (cols * size, nrows * size + 18), (0, 0, 0))
    ImageDraw.Draw(sheet).text((4, 3), title, fill=(255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * size, 18 + (i // cols) * size))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp)
    return path


def csv_log(folder: Path) -> list[dict[str, str]]:
    """The rows of every CSV log of a run folder (``logs/version_*/metrics.csv``), oldest first."""
    logs = sorted(folder.glob("logs/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    rows: list[dict[str, str]] = []
    for p in logs:
        with p.open(newline="") as f:
            rows.extend(csv.DictReader(f))
    return rows


def series(rows: Sequence[Mapping[str, str]], key: str, x: str = "epoch") -> tuple[list[float], list[float]]:
    """``(xs, ys)`` of one logged value, the last value per ``x``."""
    seen: dict[float, float] = {}
    for r in rows:
        v, e = r.get(key, ""), r.get(x, "")
        if v not in ("", None) and e not in ("", None):
            seen[float(e)] = float(v)
    xs = sorted(seen)
    return xs, [seen[k] for k in xs]


def loss_rebound(xs: Sequence[float], ys: Sequence[float], chance: float) -> str | None:
    """A sentence when a contrastive loss rose back towards chance after its lowest epoch, else ``None``.

    Flagged when the last epoch's loss has given back more than a quarter of what the lowest epoch
    had gained below chance (and at least 0.05): the encoder saved at the end is then likely worse
    than the one of the lowest epoch.

    Examples:
        >>> loss_rebound([0, 1, 2, 3], [6.0, 4.0, 4.5, 5.2], chance=6.2)
        'the loss rose back towards chance: lowest 4.00 at epoch 1, last 5.20 (chance 6.20)'
        >>> loss_rebound([0, 1, 2], [6.0, 4.0, 3.9], chance=6.2) is None
        True
    """
    if len(ys) < 2 or not all(math.isfinite(v) for v in ys):
        return None
    low = min(range(len(ys)), key=lambda i: ys[i])
    gained, given_back = chance - ys[low], ys[-1] - ys[low]
    if gained <= 0 or given_back < 0.05 or given_back <= 0.25 * gained:
        return None
    return (f"the loss rose back towards chance: lowest {ys[low]:.2f} at epoch {int(xs[low])}, last {ys[-1]:.2f} "
            f"(chance {chance:.2f})")


def _finetune_folder(run: Path, name: str) -> Path:
    """A variant's fine-tuning folder, or for pseudo-label self-training its last round's."""
    folder = run / "finetune" / name
    rounds = sorted((p for p in folder.glob("round*") if p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
    return rounds[-1] if rounds else folder


def training_curves(run: Path, variants: Sequence[str], path: Path, pretrain: Sequence[Any] = ()) -> Path | None:
    """Fine-tuning hold-out MRE and training loss per variant (pseudo-label self-training: its last
    student), the contrastive pre-trainings' InfoNCE against chance and the reconstruction losses."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    fig, grid = plt.subplots(2, 2, figsize=(12, 8.5))
    axes = grid.ravel()
    drawn = False
    for name in variants:
        rows = csv_log(_finetune_folder(run, name))
        xs, ys = series(rows, "val/mre_px")
        if xs:
            axes[0].plot(xs, ys, marker=".", label=name)
            drawn = True
        xs, ys = series(rows, "train/loss_epoch")
        if xs:
            axes[1].plot(xs, ys, marker=".", label=name)
    for stage in pretrain:
        xs, ys = series(csv_log(Path(stage.out_dir)), "train_loss_epoch")
        if not xs:
            continue
        queue = int(stage.queue_size or 0)
        ax = axes[2] if queue else axes[3]
        line = ax.plot(xs, ys, marker=".", label=stage.stage)[0]
        drawn = True
        if queue:
            ax.axhline(math.log(queue + 1), color=line.get_color(), linestyle="--",
                       label=f"{stage.stage} chance: ln({queue}+1)")
    axes[0].set(title="fine-tuning: hold-out mean radial error", xlabel="epoch",
                ylabel="MRE (px of the original images, log scale)", yscale="log")
    axes[1].set(title="fine-tuning: training loss (heatmap MSE)", xlabel="epoch", ylabel="loss (log scale)",
                yscale="log")
    axes[2].set(title="contrastive pre-training: InfoNCE loss (dashed: chance)", xlabel="epoch", ylabel="loss")
    axes[3].set(title="reconstruction pre-training: masked-pixel MSE", xlabel="epoch", ylabel="loss (log scale)",
                yscale="log")
    for ax in axes:
        curves = [line for line in ax.get_lines() if line.get_linestyle() != "--"]  # not the chance lines
        if not curves:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "nothing of this kind in this run", ha="center", va="center",
                    transform=ax.transAxes, color="grey")
            continue
        epochs = sorted({float(x) for line in curves for x in line.get_xdata()})
        if 0 < len(epochs) <= 12:
            ax.set_xticks(epochs, [str(int(e)) for e in epochs])  # whole epochs, each one
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_yscale() == "log":  # plain numbers, not powers of ten
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(ScalarFormatter())
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=100)
    return path if drawn else None


def error_histograms(rows_by_variant: Mapping[str, Sequence[Mapping[str, Any]]], path: Path) -> Path | None:
    """Per-image MRE and AoP error histograms of every variant on Testing."""
    if not any(rows_by_variant.values()):
        return None
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for name, rows in rows_by_variant.items():
        if not rows:
            continue
        a.hist([float(r["mre_px"]) for r in rows], bins=25, histtype="step", linewidth=1.5, label=name)
        b.hist([float(r["aop_err_deg"]) for r in rows if math.isfinite(float(r["aop_err_deg"]))], bins=25,
               histtype="step", linewidth=1.5, label=name)
    a.set(title="Testing: per-image MRE", xlabel="mean radial error (px, 512-px originals)", ylabel="images")
    b.set(title="Testing: per-image AoP error", xlabel="|ΔAoP| (degrees)", ylabel="images")
    a.legend(fontsize=7)
    b.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=100)

"""Draw the figures of the Concepts page into ``docs/_static/``.

Run from the repository root: ``python docs/make_figures.py``. Needs matplotlib (Agg backend).
The figures are computed with the library itself (resize map, heatmap codec, AoP).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Arc, Ellipse, Rectangle

from sslkeypoint.geometry import angle_of_progression
from sslkeypoint.heatmaps import HeatmapCodec, rescale_keypoints

STATIC = Path(__file__).parent / "_static"
DPI = 110


def coordinates_figure(path: Path) -> None:
    """Pixel centres, the resize map, and a stride-4 heatmap with its decodings."""
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(10.5, 4.4), gridspec_kw={"width_ratios": [1.15, 1.0]}
    )

    # (a) 1-D resize 8 px -> 4 px: pixel cells, centres at integers, x' = (x + 0.5) W'/W - 0.5.
    w_src, w_dst = 8, 4
    x_kp = 5.0
    x_dst = rescale_keypoints(torch.tensor([[x_kp, 0.0]]), (1, w_src), (1, w_dst))[0, 0].item()
    scale = w_src / w_dst
    for j in range(w_src):
        ax1.add_patch(Rectangle((j - 0.5, 1.0), 1, 0.8, fill=False, lw=1.2, ec="0.3"))
        ax1.plot(j, 1.4, "o", color="0.3", ms=4)
        ax1.text(j, 1.9, f"{j}", ha="center", va="bottom", fontsize=9)
    for j in range(w_dst):
        left = (j + 0.5) * scale - 0.5 - scale / 2
        ax1.add_patch(Rectangle((left, -0.4), scale, 0.8, fill=False, lw=1.2, ec="tab:blue"))
        cx = (j + 0.5) * scale - 0.5
        ax1.plot(cx, 0.0, "o", color="tab:blue", ms=4)
        ax1.text(cx, -0.55, f"{j}", ha="center", va="top", fontsize=9, color="tab:blue")
    ax1.plot(x_kp, 1.4, "*", color="tab:red", ms=15, zorder=5)
    ax1.plot(x_kp, 0.0, "*", color="tab:red", ms=15, zorder=5)
    ax1.annotate(
        "",
        xy=(x_kp, 0.45),
        xytext=(x_kp, 0.95),
        arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1.5},
    )
    ax1.text(8.0, 1.4, "W = 8", va="center", fontsize=10)
    ax1.text(8.0, 0.0, "W' = 4", va="center", fontsize=10, color="tab:blue")
    ax1.text(
        3.5,
        -1.25,
        f"x = {x_kp:g}  →  x' = (x + 0.5)·W'/W − 0.5 = {x_dst:g}",
        ha="center",
        fontsize=10,
        color="tab:red",
    )
    ax1.text(
        3.5,
        2.45,
        "integer coordinates are pixel centres; the image spans [−0.5, W − 0.5]",
        ha="center",
        fontsize=9,
    )
    ax1.set_xlim(-1.0, 9.2)
    ax1.set_ylim(-1.6, 2.8)
    ax1.set_aspect("equal")
    ax1.axis("off")
    ax1.set_title("(a) pixel centres and the resize map", fontsize=11)

    # (b) stride-4 heatmap over a 32x32 input crop: encode a keypoint, decode it three ways.
    codec = HeatmapCodec(input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0, refine="dark")
    s = codec.stride[1]
    kp = torch.tensor([[[14.2, 9.7]]], dtype=torch.float64)
    hm = codec.encode(kp)[0, 0].numpy()
    ax2.imshow(hm, cmap="magma", extent=(-0.5, 31.5, 31.5, -0.5), interpolation="nearest")
    for t in np.arange(-0.5, 32, 1.0):
        lw, alpha = (1.0, 0.9) if (t + 0.5) % s == 0 else (0.4, 0.25)
        ax2.axvline(t, color="white", lw=lw, alpha=alpha)
        ax2.axhline(t, color="white", lw=lw, alpha=alpha)
    centres = (np.arange(8) + 0.5) * s - 0.5
    cx, cy = np.meshgrid(centres, centres)
    ax2.plot(cx.ravel(), cy.ravel(), ".", color="0.75", ms=3)
    # Decoding settings are constructor arguments: one codec per decoding.
    argmax_codec = HeatmapCodec(input_size=(32, 32), heatmap_size=(8, 8), sigma=1.0, refine="none")
    dark, _ = codec.decode(codec.encode(kp))
    argmax, _ = argmax_codec.decode(codec.encode(kp))
    # The truncating codec: centre int(x / s) on the heatmap, decoded back as x_hm * s.
    trunc = torch.trunc(kp / s) * s
    ax2.plot(*trunc[0, 0].tolist(), "s", mfc="none", mec="tab:cyan", ms=11, mew=2,
             label="int() centre, x_hm·s")
    ax2.plot(*argmax[0, 0].tolist(), "x", color="tab:green", ms=11, mew=2.5, label="argmax")
    ax2.plot(*kp[0, 0].tolist(), "*", color="white", mec="black", ms=17, mew=1.0,
             label="keypoint (14.2, 9.7)")
    ax2.plot(*dark[0, 0].tolist(), "o", mfc="none", mec="tab:red", ms=12, mew=2,
             label="DARK decode")
    ax2.set_xlim(-0.5, 31.5)
    ax2.set_ylim(31.5, -0.5)
    ax2.set_xlabel("x (input px)")
    ax2.set_ylabel("y (input px)")
    ax2.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax2.set_title("(b) stride-4 heatmap: u = (x + 0.5)/s − 0.5", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _ellipse_points(centre: np.ndarray, axes: tuple[float, float], angle_deg: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 4000, endpoint=False)
    a, b = axes
    pts = np.stack([a * np.cos(t), b * np.sin(t)], axis=1)
    r = math.radians(angle_deg)
    rot = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    return pts @ rot.T + centre


def aop_figure(path: Path) -> None:
    """PS1, PS2, FH1 on a 512x512 image, the AoP at PS1 and the head tangent."""
    ps1 = np.array([300.0, 92.0])
    ps2 = np.array([190.0, 70.0])
    head_c, head_axes, head_angle = np.array([290.0, 315.0]), (120.0, 95.0), 20.0
    head = _ellipse_points(head_c, head_axes, head_angle)
    # FH1: the head point maximising the angle PS2-PS1-q (the far-side tangent point).
    angles = angle_of_progression(np.broadcast_to(ps1, head.shape), ps2, head)
    fh1 = head[int(np.argmax(angles))]
    aop = float(angle_of_progression(ps1, ps2, fh1))

    fig, ax = plt.subplots(figsize=(6.0, 5.4))
    ax.add_patch(Rectangle((-0.5, -0.5), 512, 512, fc="0.08", ec="none"))
    ax.add_patch(
        Ellipse(tuple(head_c), 2 * head_axes[0], 2 * head_axes[1], angle=head_angle,
                fc="0.35", ec="0.85", lw=1.5)
    )
    sym_c = (ps1 + ps2) / 2
    sym_vec = ps1 - ps2
    sym_len = float(np.linalg.norm(sym_vec))
    ax.add_patch(
        Ellipse(tuple(sym_c), sym_len + 16, 22, angle=math.degrees(math.atan2(sym_vec[1], sym_vec[0])),
                fc="0.55", ec="0.9", lw=1.2)
    )
    u1 = (ps2 - ps1) / np.linalg.norm(ps2 - ps1)
    u2 = (fh1 - ps1) / np.linalg.norm(fh1 - ps1)
    # Symphysis axis extended beyond PS2, and the tangent line through FH1 extended.
    ax.plot(*np.stack([ps1, ps1 + 190 * u1]).T, color="tab:orange", lw=2)
    far = ps1 + 1.45 * np.linalg.norm(fh1 - ps1) * u2
    ax.plot(*np.stack([ps1, far]).T, color="tab:cyan", lw=2)
    # The angle arc at PS1 (image y grows downwards, so angles are negated in the y-up Arc).
    a1 = math.degrees(math.atan2(u1[1], u1[0]))
    a2 = math.degrees(math.atan2(u2[1], u2[0]))
    lo, hi = sorted([a1, a2])
    if hi - lo > 180:
        lo, hi = hi, lo + 360
    ax.add_patch(Arc(tuple(ps1), 90, 90, theta1=lo, theta2=hi, color="white", lw=1.8))
    mid = math.radians((lo + hi) / 2)
    ax.text(ps1[0] + 80 * math.cos(mid), ps1[1] + 80 * math.sin(mid), f"AoP\n{aop:.1f}°",
            color="white", ha="center", va="center", fontsize=10)
    for name, p, dx, dy in (("PS1", ps1, 12, -14), ("PS2", ps2, -46, -14), ("FH1", fh1, 14, 6)):
        ax.plot(*p, "o", color="tab:red", ms=8, mec="white", zorder=5)
        ax.text(p[0] + dx, p[1] + dy, name, color="white", fontsize=11, weight="bold")
    ax.text(head_c[0] - 30, head_c[1] + 40, "fetal head", color="0.9", fontsize=9)
    ax.text(150, 30, "pubic symphysis", color="0.9", fontsize=9)
    ax.set_xlim(-0.5, 511.5)
    ax.set_ylim(511.5, -0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title("AoP: angle at PS1 between PS1→PS2 and PS1→FH1", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STATIC)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    coordinates_figure(args.out / "coordinates.png")
    aop_figure(args.out / "aop_geometry.png")
    for name in ("coordinates.png", "aop_geometry.png"):
        p = args.out / name
        print(f"wrote {p} ({p.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()

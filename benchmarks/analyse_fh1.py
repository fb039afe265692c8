"""Why FH1 errs most with few labels: where its predictions land, on which images, and what helps.

For fine-tuned checkpoints of the label-efficiency benchmark (``--checkpoints``), on the PSFHS
testing split:

* every landmark's error split into its component along the line PS1→FH1 and across it. FH1 is the
  point where a line from PS1 touches the head: the head's outline at FH1 runs along PS1→FH1, so a
  prediction that slides along the outline moves along that line — which leaves the AoP (the
  direction of PS1→FH1) unchanged — while one across it turns the AoP;
* the error's distribution (median, 90th percentile, images more than 20 px off) and its rank
  correlation with the AoP and with the head's distance from PS1;
* test-time augmentation: the landmarks averaged over ``--views`` keypoint-aware views (no
  mirroring), each mapped back to the image (:func:`sslkeypoint.ssl.predict_pseudo_labels`).

Usage::

    python benchmarks/analyse_fh1.py --checkpoints runs/label_efficiency/finetune/unet_n50_s*/checkpoints/best-*.ckpt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def predict(checkpoint: Path, records: list[Any], views: int, seed: int = 0) -> np.ndarray:
    """``(N, K, 2)`` landmarks in original px, averaged over ``views`` views (1: the image alone)."""
    from sslkeypoint.augment import KeypointAugmentation
    from sslkeypoint.data import read_image, resize_image
    from sslkeypoint.heatmaps import keypoints_to_original
    from sslkeypoint.inference import KeypointPredictor
    from sslkeypoint.methods import VIEW_AUGMENT
    from sslkeypoint.ssl import predict_pseudo_labels

    predictor = KeypointPredictor.from_checkpoint(checkpoint)
    aug = KeypointAugmentation(**VIEW_AUGMENT) if views > 1 else None
    out = []
    torch.manual_seed(seed)
    for start in range(0, len(records), 16):
        originals = [read_image(r.path, channels=predictor.in_chans) for r in records[start:start + 16]]
        batch = torch.stack([resize_image(o, predictor.input_size) for o in originals])
        labels = predict_pseudo_labels(predictor.model, predictor.codec, batch, aug, views)
        hw = torch.tensor([list(o.shape[-2:]) for o in originals], dtype=torch.float64)
        out.append(keypoints_to_original(labels.keypoints.double(), hw, predictor.input_size).numpy())
    return np.concatenate(out)


def decompose(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Per landmark: MRE, the mean absolute error along PS1→FH1 and across it, the tail, correlations."""
    ps1, fh1 = truth[:, 0], truth[:, 2]
    along = (fh1 - ps1) / np.linalg.norm(fh1 - ps1, axis=1, keepdims=True)
    across = np.stack([-along[:, 1], along[:, 0]], axis=1)
    aop = np.degrees(np.arccos(np.clip(np.sum((truth[:, 1] - ps1) * (fh1 - ps1), 1)
                                       / (np.linalg.norm(truth[:, 1] - ps1, axis=1) * np.linalg.norm(fh1 - ps1, axis=1)),
                                       -1, 1)))
    reach = np.linalg.norm(fh1 - ps1, axis=1)
    out: dict[str, Any] = {}
    for k, name in enumerate(("PS1", "PS2", "FH1")):
        err = pred[:, k] - truth[:, k]
        dist = np.linalg.norm(err, axis=1)
        out[name] = {
            "mre_px": float(dist.mean()), "median_px": float(np.median(dist)),
            "p90_px": float(np.percentile(dist, 90)), "over_20px": int((dist > 20).sum()),
            "along_px": float(np.abs(np.sum(err * along, 1)).mean()),
            "across_px": float(np.abs(np.sum(err * across, 1)).mean()),
            "spearman_error_aop": _spearman(dist, aop), "spearman_error_ps1_fh1_distance": _spearman(dist, reach),
        }
    pa = np.degrees(np.arccos(np.clip(np.sum((pred[:, 1] - pred[:, 0]) * (pred[:, 2] - pred[:, 0]), 1)
                                      / (np.linalg.norm(pred[:, 1] - pred[:, 0], axis=1)
                                         * np.linalg.norm(pred[:, 2] - pred[:, 0], axis=1)), -1, 1)))
    out["aop_mae_deg"] = float(np.abs(pa - aop).mean())
    out["mre_px"] = float(np.mean([out[n]["mre_px"] for n in ("PS1", "PS2", "FH1")]))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "psfhs")
    p.add_argument("--checkpoints", nargs="+", type=Path, required=True)
    p.add_argument("--views", type=int, default=8)
    p.add_argument("--json", type=Path, default=RESULTS / "fh1_analysis.json")
    args = p.parse_args()
    from iugc_aop.stages import load_dataset

    testing = load_dataset(args.data).testing
    truth = np.stack([np.asarray(r.keypoints, dtype=np.float64) for r in testing])
    results = []
    for ckpt in args.checkpoints:
        entry: dict[str, Any] = {"checkpoint": str(ckpt)}
        for views in sorted({1, args.views}):
            entry[f"views_{views}"] = decompose(predict(ckpt, testing, views), truth)
        results.append(entry)
        one, many = entry["views_1"], entry[f"views_{args.views}"]
        print(f"{ckpt.parent.parent.name}: MRE {one['mre_px']:.2f} px, AoP {one['aop_mae_deg']:.2f}°; FH1 "
              f"{one['FH1']['mre_px']:.2f} px (along PS1→FH1 {one['FH1']['along_px']:.2f}, across "
              f"{one['FH1']['across_px']:.2f}; median {one['FH1']['median_px']:.1f}, >20 px: {one['FH1']['over_20px']}); "
              f"with {args.views} views: MRE {many['mre_px']:.2f} px, AoP {many['aop_mae_deg']:.2f}°, "
              f"FH1 {many['FH1']['mre_px']:.2f} px", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"views": args.views, "testing_cases": len(testing), "runs": results}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

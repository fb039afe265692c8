"""Evaluation of a fine-tuned variant on Validation and Testing, in the original images' pixels."""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iugc_aop.landmarks import LANDMARK_NAMES, MEASURES
from iugc_aop.profiles import Profile, get_profile
from iugc_aop.stages.cache import STAGE_FILE, StageCache
from iugc_aop.stages.common import PathLike, data_is_real, load_dataset, say
from iugc_aop.variants import Variant, get_variant
from sslkeypoint.atomic import atomic_open, write_text_atomic
from sslkeypoint.data import KeypointRecord, file_digest, read_image, records_fingerprint
from sslkeypoint.heatmaps import keypoints_to_input
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.metrics import KeypointMetrics
from sslkeypoint.runs import RunFolderError

__all__ = ["SPLITS", "EvaluationResult", "evaluate_records", "stage_evaluate", "time_predictor"]

#: The splits a variant is evaluated on.
SPLITS = ("validation", "testing")


@dataclass
class EvaluationResult:
    """What :func:`stage_evaluate` produced.

    Attributes:
        variant: Variant name.
        checkpoint: The evaluated checkpoint.
        metrics: Split name → :meth:`sslkeypoint.metrics.KeypointMetrics.compute` output (plain
            numbers) plus ``dropped`` (unreadable images).
        predictions: Split name → per-image CSV (predicted and true landmarks, errors, AoP).
        ms_per_image: Median wall time of one image through the predictor (load, resize,
            network, decode), batch size 1, milliseconds.
        out_dir: ``eval/<variant>``.
        skipped: Whether the results were already there.
    """

    variant: str
    checkpoint: Path
    metrics: dict[str, dict[str, Any]]
    predictions: dict[str, Path]
    ms_per_image: float
    out_dir: Path
    skipped: bool = False


def _rows(records: Sequence[KeypointRecord], pred: Any, gt: torch.Tensor) -> list[dict[str, Any]]:
    err = (pred.keypoints.double() - gt).norm(dim=-1)
    aop_p = pred.measures["aop"]
    aop_g = MEASURES["aop"](gt)
    rows = []
    for i, rec in enumerate(records):
        row: dict[str, Any] = {"filename": rec.meta.get("filename", Path(rec.path).name), "path": str(rec.path)}
        for k, n in enumerate(LANDMARK_NAMES):
            row[f"{n}_x"], row[f"{n}_y"] = float(pred.keypoints[i, k, 0]), float(pred.keypoints[i, k, 1])
            row[f"{n}_true_x"], row[f"{n}_true_y"] = float(gt[i, k, 0]), float(gt[i, k, 1])
            row[f"{n}_err_px"] = float(err[i, k])
            row[f"{n}_score"] = float(pred.scores[i, k])
        row["mre_px"] = float(err[i].mean())
        row["aop_deg"], row["aop_true_deg"] = float(aop_p[i]), float(aop_g[i])
        row["aop_err_deg"] = abs(float(aop_p[i]) - float(aop_g[i]))
        rows.append(row)
    return rows


@torch.inference_mode()
def evaluate_records(
    predictor: KeypointPredictor, records: Sequence[KeypointRecord], *, progress: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and per-image rows of a predictor on labelled records (original pixels).

    Images go through :meth:`KeypointPredictor.predict <sslkeypoint.inference.KeypointPredictor.predict>`
    (the codec's decode and map back, as at deployment); heatmap errors compare the network's
    heatmaps with the targets its codec makes from the labels. An image that cannot be read is
    skipped and counted (``dropped``).

    Args:
        predictor: The predictor of a checkpoint.
        records: Labelled records (PS1, PS2, FH1 in original pixels).
        progress: Progress bar.

    Returns:
        ``(metrics, rows)``: the :class:`~sslkeypoint.metrics.KeypointMetrics` output plus
        ``dropped``, and one dict per image.
    """
    from tqdm.auto import tqdm

    metrics = KeypointMetrics(list(LANDMARK_NAMES), measures=MEASURES)
    rows: list[dict[str, Any]] = []
    dropped = 0
    bs = predictor.batch_size
    chunks = [records[i : i + bs] for i in range(0, len(records), bs)]
    for chunk in tqdm(chunks, desc="evaluate", unit="batch", disable=not progress):
        images, kept = [], []
        for rec in chunk:
            try:
                images.append(read_image(rec.path, channels=predictor.in_chans))
            except (OSError, ValueError) as exc:
                dropped += 1
                say(f"  skipped {rec.path}: {exc}")
                continue
            kept.append(rec)
        if not images:
            continue
        pred = predictor.predict(images, return_heatmaps=True)
        gt = torch.as_tensor(np.stack([np.asarray(r.keypoints, dtype=np.float64) for r in kept]))
        visible = torch.isfinite(gt).all(-1)
        sizes = pred.original_sizes.float()
        target = predictor.codec.encode(keypoints_to_input(gt.float(), sizes, predictor.input_size), visible)
        metrics.update(pred.keypoints.double(), gt, visible, pred_heatmaps=pred.heatmaps, target_heatmaps=target.float())
        rows += _rows(kept, pred, gt)
    result = metrics.compute()
    result["dropped"] = dropped
    return result, rows


def time_predictor(predictor: KeypointPredictor, paths: Sequence[PathLike], warmup: int = 2) -> float:
    """Median milliseconds per image of ``predictor.predict(path)`` one image at a time."""
    if not paths:
        return math.nan
    for p in list(paths)[:warmup]:
        predictor.predict(p)
    times = []
    for p in paths:
        t = time.perf_counter()
        predictor.predict(p)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000.0)


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "w", newline="") as f:
        if not rows:
            return
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def stage_evaluate(
    variant: str | Variant,
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    checkpoint: PathLike | None = None,
    splits: Sequence[str] = SPLITS,
    name: str | None = None,
    device: str = "cpu",
    force: bool = False,
    progress: bool = True,
) -> EvaluationResult:
    """Evaluate a fine-tuned variant on the Validation and Testing splits (original pixels).

    The checkpoint is read with :meth:`KeypointPredictor.from_checkpoint
    <sslkeypoint.inference.KeypointPredictor.from_checkpoint>`, which rebuilds the codec the
    variant was trained with. Writes ``run_dir/eval/<name>/metrics.json`` (split → metrics,
    ``ms_per_image``) and one ``<split>_predictions.csv`` per split.

    Args:
        variant: A :data:`~iugc_aop.variants.VARIANTS` name.
        data_root: IUGC folder.
        run_dir: Run folder.
        profile: Profile or its name.
        checkpoint: Checkpoint to evaluate (default: the variant's best, from its ``stage.json``).
        splits: Splits to evaluate.
        name: Sub-folder name (default: the variant's name).
        device: Inference device.
        force: Re-evaluate even if done.
        progress: Progress bars.

    Returns:
        An :class:`EvaluationResult`.

    Raises:
        FileNotFoundError: If the variant has not been fine-tuned.
    """
    v = get_variant(variant)
    profile = get_profile(profile, real=data_is_real(data_root))
    run = Path(run_dir)
    label = name or v.name
    if checkpoint is None:
        marker = run / "finetune" / label / STAGE_FILE
        try:
            saved_ft = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else {}
        except (OSError, ValueError) as exc:
            raise RunFolderError(f"{marker} is unreadable ({exc}): redo the fine-tuning ('finetune --variant "
                                 f"{label} --force')") from exc
        if not isinstance(saved_ft, dict) or saved_ft.get("status") != "done":
            raise FileNotFoundError(f"{marker} not found or not done: fine-tune {label!r} first "
                                    f"('finetune --variant {label}')")
        checkpoint = marker.parent / saved_ft["result"]["checkpoint"]
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} not found")
    ds = load_dataset(data_root, tuple(splits))
    out = run / "eval" / label
    key = {"ckpt": file_digest(ckpt), "splits": list(splits),
           "data": [records_fingerprint(ds.split(s)) for s in splits], "timing": profile.timing_images}
    cache = StageCache(out, key, profile.name)
    with cache.lock():
        saved = cache.load(force)
        if saved is not None:
            return EvaluationResult(v.name, ckpt, saved["metrics"], {s: out / f"{s}_predictions.csv" for s in splits},
                                    float(saved["ms_per_image"]), out, skipped=True)
        cache.start()
        predictor = KeypointPredictor.from_checkpoint(ckpt, device=device, batch_size=profile.eval_batch_size)
        metrics: dict[str, dict[str, Any]] = {}
        predictions: dict[str, Path] = {}
        for split in splits:
            m, rows = evaluate_records(predictor, ds.split(split), progress=progress)
            metrics[split] = m
            predictions[split] = out / f"{split}_predictions.csv"
            _write_rows(predictions[split], rows)
        timing = [Path(r.path) for r in ds.split(splits[-1])[: profile.timing_images]]
        ms = time_predictor(predictor, timing)
        cache.finish({"metrics": metrics, "ms_per_image": ms, "checkpoint": str(ckpt)})
        write_text_atomic(out / "metrics.json", json.dumps({"variant": v.name, "checkpoint": str(ckpt), "metrics": metrics,
                                                      "ms_per_image": ms}, indent=2))
        return EvaluationResult(v.name, ckpt, metrics, predictions, ms, out)

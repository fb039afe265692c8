"""``python -m hc18_biometry demo``: the whole example on an HC18 folder, into one output folder.

Writes ``OUT/report.md`` (figures in ``OUT/figures/``), ``OUT/metrics.json``, ``OUT/model/`` (the
recommended method's predictor: ``model.safetensors`` + ``predictor.json``, read by
``predict --model``), ``OUT/labelled.csv`` (the chosen images and why), ``OUT/evaluation/<method>/``
(the library's per-image tables) and the run folders ``OUT/pretrain/`` and ``OUT/finetune/<method>/``,
which a second run with the same settings resumes or reuses.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hc18_biometry import __version__
from hc18_biometry.data import read_cases, read_unlabelled
from hc18_biometry.landmarks import head_records
from hc18_biometry.pipeline import (
    PROFILES,
    RECOMMENDED,
    Score,
    choose_labelled,
    finetune,
    pretrain,
    score,
    testing_split,
)
from hc18_biometry.report import write_report
from sslkeypoint import __version__ as library_version
from sslkeypoint.atomic import write_text_atomic
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.locks import folder_lock

__all__ = ["run_demo"]


def run_demo(data: str | Path, out: str | Path, *, labels: int | None = 50, profile: str = "quick",
             methods: Sequence[str] = ("unet", RECOMMENDED), seed: int = 0, progress: bool = False,
             say: Any = print) -> dict[str, Any]:
    """Run the demo (see the module notes) and return what ``metrics.json`` holds.

    Args:
        data: An HC18 folder (either layout, :func:`hc18_biometry.data.read_cases`).
        out: The output folder (created; one demo at a time holds it).
        labels: Labelled training images (``None``: every training image).
        profile: A key of :data:`hc18_biometry.pipeline.PROFILES`.
        methods: Fine-tuning methods (keys of :data:`hc18_biometry.pipeline.METHODS`); the
            model is the recommended one's when it is among them, else the first's.
        seed: Seed of the choice of labels and of fine-tuning.
        progress: Show progress bars.
        say: Where progress lines go.
    """
    if profile not in PROFILES:
        raise ValueError(f"--profile: one of {sorted(PROFILES)}; got {profile!r}")
    prof, out = PROFILES[profile], Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out, "hc18_biometry demo"):
        start = time.monotonic()
        cases = read_cases(data)
        unlabelled = read_unlabelled(data)
        train, test = testing_split(head_records(cases, prof.directions))
        say(f"{len(cases)} labelled images of {len({c.subject for c in cases})} subjects: {len(train)} for training, "
            f"{len(test)} for testing (whole subjects); {len(unlabelled.images)} unlabelled images")
        pool = [Path(r.path) for r in train] + unlabelled.images
        say(f"pre-training (MoCo v2) on {len(pool)} images, labels unused -> {out / 'pretrain'}")
        encoder = pretrain(pool, out / "pretrain", prof, progress)
        labelled = choose_labelled(train, labels, encoder=encoder, seed=seed, out=out / "labelled.csv",
                                   progress=progress)
        say(f"{len(labelled)} labelled images chosen by coverage of the pre-trained features -> {out / 'labelled.csv'}")
        scores: dict[str, Score] = {}
        checkpoints: dict[str, Path] = {}
        for method in methods:
            say(f"fine-tuning {method} -> {out / 'finetune' / method}")
            result = finetune(labelled, pool, out / "finetune" / method, prof, method, seed, progress)
            ckpt = result.best_checkpoint or result.last_checkpoint
            if ckpt is None:
                raise RuntimeError(f"{result.out_dir}: the fine-tuning wrote no checkpoint")
            checkpoints[method] = ckpt
            scores[method] = score(ckpt, test, progress)
            scores[method].evaluation.save(out / "evaluation" / method)
            s = scores[method].summary()
            say(f"  {method}: HC error {s['hc_mae_mm']:.2f} mm (mean; median {s['hc_median_mm']:.2f}), "
                f"BPD {s['bpd_mae_mm']:.2f} mm, OFD {s['ofd_mae_mm']:.2f} mm on {s['images']} testing images")
        chosen = RECOMMENDED if RECOMMENDED in methods else methods[0]
        KeypointPredictor.from_checkpoint(checkpoints[chosen]).save(out / "model")
        metrics: dict[str, Any] = {
            "data": str(data), "profile": profile, "labels": len(labelled), "seed": seed,
            "training_images": len(train), "testing_images": len(test), "unlabelled_images": len(unlabelled.images),
            "testing_subjects": len({r.group for r in test}), "model": chosen,
            "methods": {m: s.summary() for m, s in scores.items()},
            "seconds": round(time.monotonic() - start, 1),
            "versions": {"sslkeypoint": library_version, "hc18_biometry": __version__},
        }
        write_text_atomic(out / "metrics.json", json.dumps(_json_ready(metrics), indent=2))
        write_report(out, metrics, scores, chosen, prof.directions)
        say(f"done in {metrics['seconds'] / 60:.1f} min: {out / 'report.md'}, {out / 'metrics.json'}, model in {out / 'model'}")
        return metrics


def _json_ready(value: Any) -> Any:
    """``value`` with NaN as ``null`` (strict JSON)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

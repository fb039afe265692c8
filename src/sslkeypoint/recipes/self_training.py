"""Pseudo-label self-training (noisy student): rounds of fine-tuning, each a run folder of its own.

:func:`~sslkeypoint.recipes.run_finetuning` runs a :class:`~sslkeypoint.methods.PseudoLabelMethod`
here, in ``out_dir``:

* ``round0/`` — the teacher, fine-tuned on the labelled images with the method's ``teacher``
  method (supervised, or a mean teacher on the unlabelled pool);
* ``round<r>/pseudo_labels.json`` — the previous round's best checkpoint predicts every pool image
  but the labelled training images (which keep their labels) in the method's views (:func:`~sslkeypoint.ssl.predict_pseudo_labels`, seeded by the run's seed
  and the round); each landmark is kept or dropped with a reason
  (:func:`~sslkeypoint.ssl.filter_pseudo_labels`; the shape model and the measure ranges are
  fitted on the labelled training records); the file holds every pseudo-label, its confidence,
  spread and reason, and the counts (:class:`~sslkeypoint.ssl.PseudoLabelStats`);
* ``round<r>/`` — the student, fine-tuned (supervised, strong augmentation) on the labelled
  training records, repeated to the method's ``labelled_share``, and the images with at least one
  kept landmark, as records with partial labels (:data:`~sslkeypoint.data.PARTIAL_LABELS`: a
  dropped landmark adds no loss); validated on the labelled hold-out, like the teacher.

Every round is an ordinary fine-tuning run folder (resumable, refused when its settings or data
change); a finished round leaves ``round.json`` and is not run again. ``summary.json`` in
``out_dir`` is the last round's result with the pseudo-label counts of every round. Under DDP,
process 0 labels the pool and writes ``pseudo_labels.json``; every process reads it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from sslkeypoint._utils import plain
from sslkeypoint.augment import KeypointAugmentation
from sslkeypoint.configs import FinetuneConfig
from sslkeypoint.data import (
    PARTIAL_LABELS,
    KeypointRecord,
    file_digest,
    read_image,
    records_fingerprint,
    resize_image,
)
from sslkeypoint.heatmaps import keypoints_to_original
from sslkeypoint.locks import folder_lock
from sslkeypoint.methods import PseudoLabelMethod, SupervisedMethod
from sslkeypoint.recipes._run import _write_json
from sslkeypoint.recipes.fit import FinetuneResult, FitOptions, fit_finetuning
from sslkeypoint.ssl import ShapeModel, filter_pseudo_labels, measure_ranges, predict_pseudo_labels
from sslkeypoint.ssl.pseudo_labels import PseudoLabelStats

__all__ = ["ROUND_FILE", "label_pool", "run_self_training", "student_records"]

#: The file a finished round leaves in its folder.
ROUND_FILE = "round.json"
#: Pool images labelled per forward pass.
_BATCH = 16


def _distributed() -> tuple[int, int]:
    """``(rank, world size)`` of an initialised process group, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _barrier() -> None:
    if _distributed()[1] > 1:
        torch.distributed.barrier()


def _sizes(records: Sequence[KeypointRecord], in_chans: int) -> torch.Tensor:
    """``(N, 2)`` original ``(H, W)`` of the records' images."""
    return torch.tensor([list(read_image(r.path, channels=in_chans).shape[-2:]) for r in records], dtype=torch.long)


def label_pool(
    checkpoint: Path,
    pool: Sequence[Path],
    labelled: Sequence[KeypointRecord],
    method: PseudoLabelMethod,
    *,
    seed: int,
    progress: bool = True,
) -> dict[str, Any]:
    """Pseudo-labels of ``pool`` by the network of ``checkpoint``, filtered (see the module notes).

    Args:
        checkpoint: A fine-tuning checkpoint (the teacher).
        pool: Unlabelled image files; unreadable ones are skipped and listed.
        labelled: The labelled training records: the shape model and the measure ranges.
        method: The method (views, thresholds).
        seed: Seed of the views.
        progress: Show a progress bar.

    Returns:
        A JSON-ready dict: ``landmarks``, ``labels`` (per image: ``path``, ``keypoints`` in
        original px, ``confidence``, ``spread`` in original px, ``reasons``), ``stats``
        (:meth:`~sslkeypoint.ssl.PseudoLabelStats.to_dict`), ``unreadable`` files.
    """
    from sslkeypoint.inference import KeypointPredictor

    predictor = KeypointPredictor.from_checkpoint(checkpoint, device="cuda" if torch.cuda.is_available() else "cpu")
    network, codec = predictor.model, predictor.codec
    size, chans = predictor.input_size, predictor.in_chans
    device = next(network.parameters()).device
    augmentation = KeypointAugmentation(**method.view_augment) if method.views > 1 else None
    truth = torch.tensor(np.stack([np.asarray(r.keypoints, dtype=np.float64) for r in labelled]))
    names = list(predictor.keypoint_names or [str(i) for i in range(truth.shape[1])])
    keypoints, confidence, spread, sizes, paths, unreadable = [], [], [], [], [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in tqdm(range(0, len(pool), _BATCH), desc="pseudo-labels", disable=not progress):
            images, batch_sizes, batch_paths = [], [], []
            for path in pool[start:start + _BATCH]:
                try:
                    image = read_image(path, channels=chans)
                except (OSError, ValueError) as exc:
                    unreadable.append({"path": str(path), "reason": str(exc)})
                    continue
                images.append(resize_image(image, size))
                batch_sizes.append(list(image.shape[-2:]))
                batch_paths.append(str(path))
            if not images:
                continue
            labels = predict_pseudo_labels(network, codec, torch.stack(images).to(device), augmentation, method.views)
            hw = torch.tensor(batch_sizes, dtype=torch.float64)
            keypoints.append(keypoints_to_original(labels.keypoints.double().cpu(), hw, size))
            # The spread in original px: input px scaled by the image's larger scale factor.
            scale = (hw / torch.tensor(size, dtype=torch.float64)).amax(dim=1, keepdim=True)
            spread.append(labels.spread.double().cpu() * scale)
            confidence.append(labels.confidence.double().cpu())
            sizes.append(hw)
            paths += batch_paths
    if not paths:
        raise ValueError(f"none of the {len(pool)} unlabelled images could be read: no pseudo-labels")
    kp, conf, spr, hw = (torch.cat(t) for t in (keypoints, confidence, spread, sizes))
    complete = torch.isfinite(truth).all(dim=(1, 2))
    labelled_sizes = _sizes(labelled, chans)
    shape = None
    if method.shape_quantile is not None and int(complete.sum()) >= 3:
        shape = ShapeModel.fit(truth[complete], labelled_sizes[complete], shrinkage=method.shape_shrinkage)
    measures = predictor.measures if method.measure_margin is not None else {}
    ranges = measure_ranges(measures, truth[complete]) if measures else {}
    reasons = filter_pseudo_labels(
        kp, conf, spr, hw, min_confidence=method.min_confidence, max_spread=method.max_spread, shape=shape,
        shape_quantile=method.shape_quantile or 0.99, measures=measures, ranges=ranges,
        measure_margin=method.measure_margin or 0.0,
    )
    stats = PseudoLabelStats.count(reasons, names)
    labels_out = [
        {"path": p, "keypoints": kp[i].tolist(), "confidence": conf[i].tolist(), "spread": spr[i].tolist(),
         "reasons": reasons[i]}
        for i, p in enumerate(paths)
    ]
    return {"landmarks": names, "labels": labels_out, "stats": stats.to_dict(), "unreadable": unreadable,
            "shape_model": None if shape is None else {"num_samples": shape.num_samples},
            "measure_ranges": {k: list(v) for k, v in ranges.items()}}


def student_records(train: Sequence[KeypointRecord], labels: dict[str, Any],
                    labelled_share: float) -> list[KeypointRecord]:
    """The student's training records: ``train`` repeated to ``labelled_share`` of the set, and one
    record with partial labels per pool image with a kept landmark.

    Examples:
        >>> import numpy as np
        >>> train = [KeypointRecord("a.png", np.zeros((2, 2)))]
        >>> labels = {"labels": [{"path": "u.png", "keypoints": [[1.0, 2.0], [3.0, 4.0]], "reasons": ["", "shape"]},
        ...                      {"path": "v.png", "keypoints": [[1.0, 2.0], [3.0, 4.0]], "reasons": ["shape", "shape"]}]}
        >>> out = student_records(train, labels, labelled_share=0.5)
        >>> [str(r.path) for r in out], out[-1].keypoints.tolist()
        (['a.png', 'u.png'], [[1.0, 2.0], [nan, nan]])
    """
    pseudo = []
    for item in labels["labels"]:
        keep = [r == "" for r in item["reasons"]]
        if not any(keep):
            continue
        kp = np.asarray(item["keypoints"], dtype=np.float64)
        kp[~np.asarray(keep)] = np.nan
        pseudo.append(KeypointRecord(item["path"], kp, meta={PARTIAL_LABELS: True, "pseudo_label": True}))
    labelled = list(train)
    if pseudo and labelled_share > 0:
        # Repeat the labelled records until they are at least labelled_share of the whole set.
        needed = math.ceil(labelled_share * len(pseudo) / (1.0 - labelled_share))
        labelled = [labelled[i % len(train)] for i in range(max(len(train), needed))]
    return labelled + pseudo


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(plain(parts), sort_keys=True, default=str).encode()).hexdigest()


def _finished(folder: Path, key: str) -> FinetuneResult | None:
    """The result of a round finished with this key, else ``None``."""
    marker = folder / ROUND_FILE
    if not marker.is_file():
        return None
    try:
        saved = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if saved.get("key") != key:
        return None
    data = dict(saved["result"])
    for name in ("out_dir", "best_checkpoint", "last_checkpoint"):
        if data.get(name) is not None:
            data[name] = folder / Path(data[name]).relative_to(Path(saved["folder"])) \
                if Path(data[name]).is_relative_to(Path(saved["folder"])) else Path(data[name])
    fields = {f.name for f in dataclasses.fields(FinetuneResult)}
    result = FinetuneResult(**{k: v for k, v in data.items() if k in fields})
    if result.best_checkpoint is not None and not Path(result.best_checkpoint).is_file():
        return None
    return result


def _round(folder: Path, key: str, run: Callable[[], FinetuneResult]) -> FinetuneResult:
    """Run a round unless it finished with the same key; mark it finished."""
    done = _finished(folder, key)
    if done is not None:
        return done
    result = run()
    if _distributed()[0] == 0:
        _write_json(folder / ROUND_FILE, {"key": key, "folder": str(folder), "result": result.to_dict()})
    return result


def run_self_training(
    config: FinetuneConfig,
    train: Sequence[KeypointRecord],
    val: Sequence[KeypointRecord],
    pool: Sequence[Path],
    out: Path,
    options: FitOptions,
    *,
    left_out: int = 0,
    split: str = "",
) -> FinetuneResult:
    """Pseudo-label self-training of ``config`` (its method a :class:`~sslkeypoint.methods.PseudoLabelMethod`).

    Called by :func:`~sslkeypoint.recipes.run_finetuning`, which has split the records and left
    the validation images out of the pool; see the module notes.

    Returns:
        The last round's :class:`~sslkeypoint.recipes.FinetuneResult`, its ``out_dir`` the whole
        run's folder and its ``pseudo_labels`` the counts of every round.
    """
    method = config.method
    assert isinstance(method, PseudoLabelMethod)
    # The whole run's folder is held by the launching process (the round folders by their runs too).
    with folder_lock(out, "pseudo-label self-training"):
        rank, _ = _distributed()
        say = (lambda text: print(text, file=sys.stderr, flush=True)) if options.progress and rank == 0 else (lambda _: None)
        # The labelled training images keep their labels: the pool to label is every other image.
        labelled_files = {os.path.realpath(os.fspath(r.path)) for r in train}
        to_label = [p for p in pool if os.path.realpath(os.fspath(p)) not in labelled_files]
        if not to_label:
            raise ValueError("every unlabelled image is a labelled training image: no image is left to pseudo-label")
        data_key = [records_fingerprint(train), records_fingerprint(val), sorted(os.fspath(p) for p in pool)]
        teacher_config = dataclasses.replace(config, method=method.teacher)
        teacher_pool = pool if method.teacher.uses_unlabelled else None
        say(f"pseudo-label self-training: round 0, the teacher ({method.teacher.describe()}) -> {out / 'round0'}")
        result = _round(out / "round0", _key(teacher_config.run_settings(), data_key, "teacher"),
                        lambda: fit_finetuning(teacher_config, train, val, out / "round0", options, pool=teacher_pool,
                                               left_out=left_out, split=split))
        history: list[dict[str, Any]] = []
        student_config = dataclasses.replace(
            config, method=SupervisedMethod(), augment=True,
            augment_kwargs=dict(method.student_augment) if method.student_augment is not None else config.augment_kwargs,
            max_epochs=method.student_epochs or config.max_epochs)
        for r in range(1, method.rounds + 1):
            teacher = result.best_checkpoint or result.last_checkpoint
            if teacher is None:
                raise RuntimeError(f"round {r - 1} of {out} wrote no checkpoint to label the pool with")
            folder = out / f"round{r}"
            folder.mkdir(parents=True, exist_ok=True)
            labels_file = folder / "pseudo_labels.json"
            label_key = _key(file_digest(teacher), method.to_dict(), data_key, config.seed, r)
            try:
                saved = json.loads(labels_file.read_text(encoding="utf-8")) if labels_file.is_file() else None
            except (OSError, ValueError):  # unreadable (cut short by an older version): labelled again
                saved = None
            if not isinstance(saved, dict) or saved.get("key") != label_key:
                if rank == 0:
                    say(f"round {r}: labelling {len(to_label)} unlabelled images with {teacher}")
                    labels = label_pool(teacher, to_label, train, method, seed=config.seed * 1_000_003 + r,
                                        progress=options.progress)
                    _write_json(labels_file, {"key": label_key, "teacher": str(teacher), **labels})  # atomic
                _barrier()
                saved = json.loads(labels_file.read_text())
            stats = {"round": r, **saved["stats"], "unreadable": len(saved.get("unreadable", []))}
            history.append(stats)
            say(f"round {r}: pseudo-labels {PseudoLabelStats.count([i['reasons'] for i in saved['labels']], saved['landmarks']).describe()}")
            records = student_records(train, saved, method.labelled_share)
            init = teacher if method.student_init == "teacher" else None
            key = _key(student_config.run_settings(), records_fingerprint(records), records_fingerprint(val),
                       None if init is None else file_digest(init))
            pseudo = sum(1 for rec in records if rec.meta.get(PARTIAL_LABELS))
            say(f"round {r}: the student on {len(records)} records ({pseudo} pseudo-labelled images, the "
                f"{len(train)} labelled ones repeated to {len(records) - pseudo}) -> {folder}")
            result = _round(folder, key, functools.partial(fit_finetuning, student_config, records, val, folder, options,
                                                           left_out=left_out, init_model=init, split=split))
        final = dataclasses.replace(result, out_dir=out, pseudo_labels=history, unlabelled_left_out=left_out)
        if rank == 0:
            _write_json(out / "summary.json", final.to_dict())
        return final

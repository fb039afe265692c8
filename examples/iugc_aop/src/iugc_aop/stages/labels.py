"""Which training cases get labels: chosen by the library's selection, then their labels revealed.

A user labels what the selection asks for; here the training cases already have labels, so the
stage plays the user: it hides the labels, lets :func:`sslkeypoint.selection.select_images` choose
``budget`` cases, and reveals the labels of those. Strategies (:data:`SELECTIONS`):

* ``random`` — :func:`~iugc_aop.stages.labelled_subset`, the random draw the benchmarks measure
  every other choice against;
* ``coverage`` / ``kcenter`` — the library's strategies on the stage-1 encoder's features (or
  thumbnails when there is no stage 1), one case per similarity group while others remain;
* ``coverage_uncertainty`` — two rounds, as a user would label: half the budget by coverage, a
  network trained from scratch on those, then the rest where its predictions disagree most across
  augmented views (one per cluster of the remaining cases).

The choice is kept in ``RUN/labels/<strategy>_<features>_n<budget>_s<seed>/`` (``<features>``:
the folder of the encoder's weights, e.g. ``stage1``, or ``thumbnails``; ``selection.csv``, a
contact sheet ``selection.png``, ``stage.json``), so every variant of a run trains on the same
cases.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from iugc_aop.profiles import Profile, get_profile
from iugc_aop.stages.cache import StageCache
from iugc_aop.stages.common import PathLike, data_is_real, load_dataset, say, similarity_group
from iugc_aop.stages.finetune import labelled_subset, stage_finetune
from sslkeypoint.data import KeypointRecord, file_digest, records_fingerprint
from sslkeypoint.selection import Selection, contact_sheet, select_images

__all__ = ["SELECTIONS", "LabelChoice", "choose_labelled"]

#: The ways of choosing the labelled cases.
SELECTIONS = ("random", "coverage", "kcenter", "coverage_uncertainty")


@dataclass
class LabelChoice:
    """What :func:`choose_labelled` chose.

    Attributes:
        records: The chosen training cases, with their labels.
        strategy: How they were chosen.
        out_dir: The stage folder (``None`` for ``random``, which keeps nothing).
        groups: Similarity groups the chosen cases cover.
        seconds: Wall time of this call.
        skipped: Whether the choice was read back from an earlier run.
    """

    records: list[KeypointRecord]
    strategy: str
    out_dir: Path | None
    groups: int
    seconds: float = 0.0
    skipped: bool = False


def _by_path(records: Sequence[KeypointRecord]) -> dict[str, KeypointRecord]:
    return {str(Path(r.path).resolve()): r for r in records}


def choose_labelled(
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str,
    budget: int | None,
    *,
    strategy: str = "random",
    seed: int = 0,
    encoder: PathLike | None = None,
    force: bool = False,
    progress: bool = True,
) -> LabelChoice:
    """Choose the labelled training cases of a run (see the module notes).

    Args:
        data_root: The data folder.
        run_dir: The run folder (``labels/`` is written there).
        profile: Profile or its name (the ``coverage_uncertainty`` round trains with it).
        budget: Cases to label (``None``: all).
        strategy: One of :data:`SELECTIONS`.
        seed: Seed of the choice.
        encoder: Weights whose encoder describes the cases, or ``"thumbnails"`` (default:
            ``run_dir/stage1/encoder.safetensors`` when it exists, else thumbnails).
        force: Choose again even if a choice is kept.
        progress: Progress bars.

    Raises:
        ValueError: For an unknown strategy.
    """
    start = time.perf_counter()
    if strategy not in SELECTIONS:
        raise ValueError(f"unknown selection {strategy!r}; expected one of {SELECTIONS}")
    profile = get_profile(profile, real=data_is_real(data_root))
    ds = load_dataset(data_root, ("train",))
    train = list(ds.train)
    if strategy == "random" or budget is None or budget >= len(train):
        chosen = labelled_subset(train, budget, seed)
        return LabelChoice(chosen, "random" if budget is not None and budget < len(train) else "all", None,
                           len({similarity_group(r) for r in chosen}), time.perf_counter() - start)
    run = Path(run_dir)
    default = run / "stage1" / "encoder.safetensors"
    if encoder == "thumbnails":
        weights = None
    else:
        weights = Path(encoder) if encoder is not None else default if default.is_file() else None
    features_tag = "thumbnails" if weights is None else weights.parent.name
    out = run / "labels" / f"{strategy}_{features_tag}_n{budget}_s{seed}"
    key = {"strategy": strategy, "budget": budget, "seed": seed, "data": records_fingerprint(train),
           "encoder": file_digest(weights) if weights is not None else None}
    cache = StageCache(out, key, profile.name)
    with cache.lock():
        saved = cache.load(force)
        table = _by_path(train)
        if saved is not None:
            chosen = [table[str(Path(p).resolve())] for p in saved["paths"]]
            return LabelChoice(chosen, strategy, out, len({similarity_group(r) for r in chosen}),
                               time.perf_counter() - start, skipped=True)
        cache.start()
        files = [Path(r.path) for r in train]
        groups = [str(similarity_group(r)) for r in train]
        features = "the stage-1 encoder" if weights is not None else "thumbnails"
        say(f"labels: choosing {budget} of {len(train)} training cases by {strategy} ({features}) -> {out}")
        if strategy == "coverage_uncertainty":
            first = select_images(files, budget // 2, strategy="coverage", groups=groups, encoder=weights, seed=seed,
                                  progress=progress)
            records = [table[str(p.resolve())] for p in first.paths]
            model = stage_finetune("unet", data_root, run, profile, labelled_cases=records, seed=seed,
                                   name=f"labels_{strategy}_{features_tag}_n{budget}_s{seed}_round1", progress=progress)
            second = select_images(files, budget - len(first), strategy="uncertainty", groups=groups, encoder=weights,
                                   labelled=first.paths, model=model.checkpoint, seed=seed, progress=progress)
            later = [dataclasses.replace(c, rank=c.rank + len(first)) for c in second.choices]
            selection = Selection(first.choices + later, strategy, first.features, len(files))
        else:
            selection = select_images(files, budget, strategy=strategy, groups=groups, encoder=weights, seed=seed,
                                      progress=progress)
        out.mkdir(parents=True, exist_ok=True)
        selection.write_csv(out / "selection.csv")
        contact_sheet(selection, out / "selection.png")
        chosen = [table[str(p.resolve())] for p in selection.paths]
        cache.finish({"paths": [str(p) for p in selection.paths], "features": features})
        return LabelChoice(chosen, strategy, out, len({similarity_group(r) for r in chosen}), time.perf_counter() - start)

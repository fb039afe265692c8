"""Screening: keep the unlabelled sequences whose frames look like the ``ExampleN.jpg`` references."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from iugc_aop.profiles import Profile, get_profile
from iugc_aop.stages.cache import StageCache
from iugc_aop.stages.common import PathLike, data_is_real, load_dataset, say
from sslkeypoint.atomic import save_figure, write_text_atomic
from sslkeypoint.data import data_fingerprint, file_digest
from sslkeypoint.encoders import create_encoder
from sslkeypoint.ssl.screening import ScreeningResult, plot_scores, screen_sequences
from sslkeypoint.weights import load_state_dict_file

__all__ = ["SelectionResult", "stage_select"]


@dataclass
class SelectionResult:
    """What :func:`stage_select` produced.

    Attributes:
        out_dir: ``RUN/select``.
        json_path: ``selection.json``: the cut, every frame score and the kept sequences.
        plot_path: ``screening_scores.png``.
        names: Names of all screened sequences.
        kept: Names of the kept sequences.
        sequences: Frame paths of the kept sequences (what stage 2 trains on).
        threshold: The frame cut applied (cosine similarity).
        seconds: Wall time of this call.
        skipped: Whether the stage was already done.
    """

    out_dir: Path
    json_path: Path
    plot_path: Path
    names: list[str]
    kept: list[str]
    sequences: list[list[Path]]
    threshold: float
    seconds: float
    skipped: bool = False


def _load_unet_encoder(profile: Profile, weights: Path) -> torch.nn.Module:
    encoder = create_encoder("unet", in_chans=profile.finetune.in_chans, **profile.unet_kwargs())
    encoder.load_state_dict(load_state_dict_file(weights), strict=True)
    return encoder.eval()


def _plot_scores_simple(result: ScreeningResult, path: Path) -> Path:
    """Frame scores per sequence without the histogram (for nearly constant scores)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(min(4 + 0.4 * len(result.frame_scores), 16), 4))
    for i, s in enumerate(result.frame_scores):
        colour = "tab:blue" if bool(result.sequence_mask[i]) else "tab:gray"
        ax.scatter([i] * s.numel(), s.numpy(), s=10, color=colour)
    ax.axhline(result.threshold, color="tab:red", linestyle="--", label=f"cut {result.threshold:.6f}")
    ax.set_xticks(range(len(result.names)), result.names, rotation=90, fontsize=7)
    ax.set_ylabel("max cosine similarity to a reference")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def stage_select(
    data_root: PathLike,
    run_dir: PathLike,
    profile: Profile | str = "quick",
    *,
    encoder_path: PathLike | None = None,
    force: bool = False,
    progress: bool = True,
) -> SelectionResult:
    """Screen the unlabelled sequences against the ``ExampleN.jpg`` reference images.

    Every frame and reference is embedded with the stage-1 encoder (pooled deepest features); a
    frame's score is its highest cosine similarity to a reference; the profile's
    :class:`~iugc_aop.profiles.Screening` decides the frame cut and which sequences are kept
    (at least ``min_sequences``, the best by median score, so stage 2 always has data).

    Args:
        data_root: IUGC folder.
        run_dir: Run folder; writes ``run_dir/select/selection.json`` and
            ``screening_scores.png``.
        profile: Profile or its name.
        encoder_path: Extractor weights (default ``run_dir/stage1/encoder.safetensors``).
        force: Re-run even if done.
        progress: Progress bars.

    Returns:
        A :class:`SelectionResult`.

    Raises:
        FileNotFoundError: If the stage-1 encoder does not exist (run ``pretrain`` first).
        ValueError: If the data has no reference images or no sequences.
    """
    start = time.perf_counter()
    profile = get_profile(profile, real=data_is_real(data_root))
    run = Path(run_dir)
    out = run / "select"
    weights = Path(encoder_path) if encoder_path is not None else run / "stage1" / "encoder.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"stage-1 encoder {weights} not found: run the 'pretrain' stage first")
    ds = load_dataset(data_root, ("unlabeled",))
    if not ds.references:
        raise ValueError(f"{data_root}: no ExampleN.jpg reference images in 'Training/Unlabeled cases'")
    names = [n for n, frames in ds.sequences.items() if len(frames) >= 2]
    if not names:
        raise ValueError(f"{data_root}: no unlabelled sequence with 2 or more frames")
    sc = profile.screening
    key = {"screening": sc.__dict__, "net": profile.unet_kwargs(), "input": list(profile.input_size),
           "weights": file_digest(weights),
           "data": data_fingerprint([ds.sequences[n] for n in names] + [ds.references])}
    cache = StageCache(out, key, profile.name)
    with cache.lock():
        json_path, plot_path = out / "selection.json", out / "screening_scores.png"
        saved = cache.load(force)
        if saved is not None:
            kept = list(saved["kept"])
            return SelectionResult(out, json_path, plot_path, names, kept, [ds.sequences[k] for k in kept],
                                   float(saved["threshold"]), time.perf_counter() - start, skipped=True)
        cache.start()
        say(f"screening {len(names)} sequences ({sum(len(ds.sequences[n]) for n in names)} frames) "
            f"against {len(ds.references)} reference images, {sc.criterion()}")
        extractor = _load_unet_encoder(profile, weights)
        result = screen_sequences(
            extractor, ds.references, [ds.sequences[n] for n in names], rule=sc.rule,  # type: ignore[arg-type]
            min_fraction=sc.min_fraction, names=names, size=profile.input_size, in_chans=profile.finetune.in_chans,
            batch_size=profile.eval_batch_size, progress=progress, **sc.criterion(),
        )
        keep = result.sequence_mask.clone()
        if int(keep.sum()) < sc.min_sequences:
            medians = torch.stack([s.float().quantile(0.5) for s in result.frame_scores])
            for i in medians.argsort(descending=True)[: sc.min_sequences].tolist():
                keep[i] = True
            result.sequence_mask = keep
        kept = [names[i] for i in result.selected]
        try:
            plot_scores(result, plot_path)
        except ValueError:  # scores too close together for a histogram (an untrained extractor)
            _plot_scores_simple(result, plot_path)
        summary = result.to_dict()
        summary["kept"] = kept
        write_text_atomic(json_path, json.dumps(summary, indent=2))
        seconds = time.perf_counter() - start
        cache.finish({"kept": kept, "threshold": result.threshold, "seconds": seconds})
        return SelectionResult(out, json_path, plot_path, names, kept, [ds.sequences[k] for k in kept],
                               result.threshold, seconds)

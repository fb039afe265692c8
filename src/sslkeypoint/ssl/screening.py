"""Reference-similarity screening: keep frames and sequences that look like reference images.

SSL-FetalBioNet's stage 2 trains on "gold standard" sequences: sequences whose frames are
near-identical to a library of reference standard-plane images, measured by the cosine similarity
of ResNet50 features (kept when ≥ 0.99). The steps here are plain and batched:

1. :func:`embed_images` — features ``(N, D)`` from any extractor (an sslkeypoint encoder, whose
   deepest feature map is average pooled; a timm ResNet50 built as
   ``TimmEncoder("resnet50", pretrained_file=...)`` from a local weight file; or any callable
   returning ``(B, D)`` or ``(B, C, h, w)``);
2. :func:`reference_similarity` — each frame's highest cosine similarity to any reference (and
   which reference), one matrix product;
3. :func:`select_frames` — a frame passes when its score reaches a cut: an absolute ``threshold``,
   the best ``top_fraction`` of all frames, or ``zscore`` standard deviations above the mean;
4. :func:`select_sequences` — a sequence is kept when at least ``min_fraction`` of its frames pass
   (``rule="fraction"``), or when its median score reaches the cut (``rule="median"``).

:func:`screen_sequences` runs the four steps and returns a :class:`ScreeningResult` with every
score, so the choice can be inspected and plotted (:func:`plot_scores`).

The paper's 0.99 belongs with the paper's ImageNet ResNet50 features, whose pooled activations are
non-negative and highly similar across ultrasound images. Other extractors (a randomly initialised
or a stage-1 encoder) give other score ranges in which 0.99 is rarely reached; use
``top_fraction`` or ``zscore`` there, and look at the plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from sslkeypoint.atomic import save_figure

__all__ = [
    "ScreeningResult",
    "embed_images",
    "frame_cut",
    "plot_scores",
    "reference_similarity",
    "screen_sequences",
    "select_frames",
    "select_sequences",
]

ImageSource = str | PathLike[str] | Tensor
Extractor = nn.Module | Callable[[Tensor], Any]


def _features(extractor: Extractor, x: Tensor) -> Tensor:
    """Run ``extractor`` and reduce its output to ``(B, D)`` (deepest map average pooled)."""
    out = extractor(x)
    if isinstance(out, list | tuple):
        out = out[-1]
    if not isinstance(out, Tensor):
        raise ValueError(f"extractor must return a tensor or a list of tensors; got {type(out).__name__}")
    if out.ndim == 4:
        out = out.mean(dim=(-2, -1))
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(
            f"extractor output must be (B, D) or (B, C, h, w) with B = {x.shape[0]}; got {tuple(out.shape)}"
        )
    return out


def _load(source: ImageSource, size: tuple[int, int], in_chans: int) -> Tensor:
    """One image as ``(in_chans, *size)`` float in [0, 1]."""
    if isinstance(source, Tensor):
        img = source
    else:
        from sslkeypoint.data import read_image

        img = read_image(Path(source), channels=in_chans)
    if img.ndim != 3 or img.shape[0] != in_chans:
        raise ValueError(f"expected an image of shape ({in_chans}, H, W); got {tuple(img.shape)}")
    img = img.float()
    if tuple(img.shape[-2:]) != size:
        img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return img


@torch.no_grad()
def embed_images(
    extractor: Extractor,
    images: Tensor | Sequence[ImageSource],
    batch_size: int = 32,
    size: int | tuple[int, int] = 224,
    in_chans: int = 3,
    device: str | torch.device | None = None,
    progress: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Tensor:
    """Features ``(N, D)`` of images with any extractor, in batches, in eval mode, without grad.

    Args:
        extractor: An sslkeypoint encoder (list of maps → the deepest, average pooled), a module or
            callable returning ``(B, D)`` or ``(B, C, h, w)``.
        images: ``(N, C, H, W)`` tensor in [0, 1], or a sequence of image files / ``(C, H, W)``
            tensors (files are decoded by content with ``sslkeypoint.data.read_image``).
        batch_size: Images per forward pass.
        size: ``(H, W)`` (or int) every image is resized to (bilinear, antialiased), in px.
        in_chans: Channels the extractor expects (3 for a timm ResNet50, 1 for a grayscale
            encoder).
        device: Where to run; ``None`` uses the extractor's parameters' device (or CPU).
        progress: Show a tqdm progress bar.
        mean: Optional per-channel mean subtracted after resizing (e.g. ImageNet
            ``(0.485, 0.456, 0.406)`` for a timm ResNet50).
        std: Optional per-channel standard deviation divided by, with ``mean``.

    Returns:
        ``(N, D)`` float32 features on the CPU.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> extractor = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
        >>> embed_images(extractor, torch.rand(5, 1, 20, 20), batch_size=2, size=16,
        ...              in_chans=1, progress=False).shape
        torch.Size([5, 4])
    """
    hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if isinstance(images, Tensor) and images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W); got {tuple(images.shape)}")
    if device is None:
        params = list(extractor.parameters()) if isinstance(extractor, nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    norm: tuple[Tensor, Tensor] | None = None
    if mean is not None or std is not None:
        if mean is None or std is None or len(mean) != in_chans or len(std) != in_chans:
            raise ValueError(f"mean and std must both be given with {in_chans} values each")
        norm = (torch.tensor(mean, device=device)[:, None, None], torch.tensor(std, device=device)[:, None, None])
    was_training = extractor.training if isinstance(extractor, nn.Module) else False
    if isinstance(extractor, nn.Module):
        extractor.eval()
    out: list[Tensor] = []
    try:
        n = len(images)
        for start in tqdm(range(0, n, batch_size), desc="embed", disable=not progress, unit="batch"):
            batch = torch.stack([_load(images[i], hw, in_chans) for i in range(start, min(n, start + batch_size))])
            batch = batch.to(device)
            if norm is not None:
                batch = (batch - norm[0]) / norm[1]
            out.append(_features(extractor, batch).float().cpu())
    finally:
        if isinstance(extractor, nn.Module):
            extractor.train(was_training)
    if not out:
        raise ValueError("no images to embed")
    return torch.cat(out)


def reference_similarity(frame_emb: Tensor, ref_emb: Tensor) -> tuple[Tensor, Tensor]:
    """Highest cosine similarity of each frame to any reference, as one matrix product.

    Args:
        frame_emb: ``(N, D)`` frame features.
        ref_emb: ``(R, D)`` reference features.

    Returns:
        ``(scores, index)``: ``(N,)`` max cosine similarity in [-1, 1] and ``(N,)`` long index of the
        most similar reference.

    Examples:
        >>> import torch
        >>> refs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> frames = torch.tensor([[2.0, 0.0], [1.0, 1.0], [0.1, 3.0]])
        >>> scores, index = reference_similarity(frames, refs)
        >>> [round(s, 4) for s in scores.tolist()], index.tolist()
        ([1.0, 0.7071, 0.9994], [0, 0, 1])
    """
    if frame_emb.ndim != 2 or ref_emb.ndim != 2 or frame_emb.shape[1] != ref_emb.shape[1]:
        raise ValueError(
            "frame_emb must be (N, D) and ref_emb (R, D) with the same D; got "
            f"{tuple(frame_emb.shape)} and {tuple(ref_emb.shape)}"
        )
    if ref_emb.shape[0] == 0:
        raise ValueError("ref_emb holds no reference (shape (0, D))")
    sim = F.normalize(frame_emb.float(), dim=1) @ F.normalize(ref_emb.float(), dim=1).T  # (N, R)
    scores, index = sim.max(dim=1)
    return scores, index


def frame_cut(
    scores: Tensor,
    threshold: float | None = None,
    top_fraction: float | None = None,
    zscore: float | None = None,
) -> float:
    """The score a frame must reach, from exactly one of three rules.

    Args:
        scores: ``(N,)`` similarity scores of all frames considered together.
        threshold: Absolute cosine similarity (0.99 in the paper, with its ResNet50 features).
        top_fraction: Keep the best fraction in (0, 1] of the frames: the cut is the score of the
            ``ceil(top_fraction · N)``-th best frame (ties at the cut pass too).
        zscore: Relative to the distribution: ``mean + zscore · std`` of ``scores``.

    Returns:
        The cut as a float.

    Examples:
        >>> import torch
        >>> s = torch.tensor([0.1, 0.5, 0.9, 0.7])
        >>> frame_cut(s, threshold=0.8), frame_cut(s, top_fraction=0.5), frame_cut(s, zscore=0.0)
        (0.8, 0.699999988079071, 0.550000011920929)
    """
    given = [v is not None for v in (threshold, top_fraction, zscore)]
    if sum(given) != 1:
        raise ValueError("give exactly one of threshold, top_fraction, zscore")
    if scores.ndim != 1 or scores.numel() == 0:
        raise ValueError(f"scores must be a non-empty (N,) tensor; got shape {tuple(scores.shape)}")
    if threshold is not None:
        return float(threshold)
    if top_fraction is not None:
        if not 0.0 < top_fraction <= 1.0:
            raise ValueError(f"top_fraction must be in (0, 1]; got {top_fraction}")
        k = max(1, math.ceil(top_fraction * scores.numel()))
        return float(scores.float().topk(k).values[-1])
    assert zscore is not None
    s = scores.float()
    std = float(s.std()) if s.numel() > 1 else 0.0
    return float(s.mean()) + zscore * std


def select_frames(
    scores: Tensor,
    threshold: float | None = None,
    top_fraction: float | None = None,
    zscore: float | None = None,
) -> Tensor:
    """Frames whose score reaches the cut of :func:`frame_cut` (exactly one rule given).

    Args:
        scores: ``(N,)`` similarity scores.
        threshold: Absolute cut.
        top_fraction: Keep the best fraction of frames.
        zscore: Cut at ``mean + zscore · std``.

    Returns:
        ``(N,)`` bool mask.

    Examples:
        >>> import torch
        >>> select_frames(torch.tensor([0.995, 0.2, 0.991]), threshold=0.99).tolist()
        [True, False, True]
        >>> select_frames(torch.tensor([0.3, 0.2, 0.1, 0.4]), top_fraction=0.25).tolist()
        [False, False, False, True]
    """
    return scores >= frame_cut(scores, threshold, top_fraction, zscore)


def select_sequences(
    sequence_scores: Sequence[Tensor],
    threshold: float,
    rule: Literal["fraction", "median"] = "fraction",
    min_fraction: float = 0.5,
) -> Tensor:
    """Which sequences to keep, from their frames' scores.

    Rules:
        ``"fraction"``: kept when at least ``min_fraction`` of its frames score ``>= threshold``.
        ``"median"``: kept when its median frame score is ``>= threshold``.

    Args:
        sequence_scores: One ``(T_i,)`` score tensor per sequence.
        threshold: The frame cut (e.g. from :func:`frame_cut`).
        rule: ``"fraction"`` or ``"median"``.
        min_fraction: For ``"fraction"``: share of passing frames needed, in (0, 1].

    Returns:
        ``(S,)`` bool mask over sequences (an empty sequence is never kept).

    Examples:
        >>> import torch
        >>> seqs = [torch.tensor([0.99, 0.995, 0.2]), torch.tensor([0.3, 0.995]), torch.tensor([])]
        >>> select_sequences(seqs, 0.99, min_fraction=0.6).tolist()
        [True, False, False]
        >>> select_sequences(seqs, 0.99, rule="median").tolist()
        [True, False, False]
    """
    if rule not in ("fraction", "median"):
        raise ValueError(f"rule must be 'fraction' or 'median'; got {rule!r}")
    if not 0.0 < min_fraction <= 1.0:
        raise ValueError(f"min_fraction must be in (0, 1]; got {min_fraction}")
    keep = []
    for s in sequence_scores:
        if s.numel() == 0:
            keep.append(False)
        elif rule == "fraction":
            keep.append(float((s >= threshold).float().mean()) >= min_fraction)
        else:
            # The mean of the two middle values for an even count (torch.median takes the lower).
            keep.append(float(s.float().quantile(0.5)) >= threshold)
    return torch.tensor(keep, dtype=torch.bool)


@dataclass
class ScreeningResult:
    """Every score of a screening run, and what was kept.

    Attributes:
        frame_scores: Per sequence, ``(T_i,)`` highest cosine similarity of each frame to a reference.
        frame_reference: Per sequence, ``(T_i,)`` index of the most similar reference.
        frame_masks: Per sequence, ``(T_i,)`` bool: the frame reaches ``threshold``.
        sequence_mask: ``(S,)`` bool: the sequence is kept.
        threshold: The frame cut actually applied (absolute cosine similarity).
        rule: Sequence rule (``"fraction"`` or ``"median"``).
        min_fraction: Share of passing frames needed under ``"fraction"``.
        names: A name per sequence (for plots and reports).
        criterion: How the cut was chosen, e.g. ``{"threshold": 0.99}`` or ``{"top_fraction": 0.1}``.
    """

    frame_scores: list[Tensor]
    frame_reference: list[Tensor]
    frame_masks: list[Tensor]
    sequence_mask: Tensor
    threshold: float
    rule: str
    min_fraction: float
    names: list[str] = field(default_factory=list)
    criterion: dict[str, float] = field(default_factory=dict)

    @property
    def selected(self) -> list[int]:
        """Indices of the kept sequences."""
        return [int(i) for i in self.sequence_mask.nonzero().flatten()]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: cut, rule and per-sequence scores, passing frames and decision."""
        return {
            "threshold": self.threshold,
            "rule": self.rule,
            "min_fraction": self.min_fraction,
            "criterion": dict(self.criterion),
            "sequences": [
                {
                    "name": self.names[i] if i < len(self.names) else str(i),
                    "kept": bool(self.sequence_mask[i]),
                    "scores": [round(float(v), 6) for v in self.frame_scores[i]],
                    "reference": [int(v) for v in self.frame_reference[i]],
                    "passing": int(self.frame_masks[i].sum()),
                }
                for i in range(len(self.frame_scores))
            ],
        }


def screen_sequences(
    extractor: Extractor,
    references: Tensor | Sequence[ImageSource],
    sequences: Sequence[Tensor | Sequence[ImageSource]],
    threshold: float | None = None,
    top_fraction: float | None = None,
    zscore: float | None = None,
    rule: Literal["fraction", "median"] = "fraction",
    min_fraction: float = 0.5,
    names: Sequence[str] | None = None,
    **embed_kwargs: Any,
) -> ScreeningResult:
    """Embed references and every frame, score frames, and keep the sequences that pass.

    Relative cuts (``top_fraction``, ``zscore``) are taken over all frames of all sequences
    together.

    Args:
        extractor: Feature extractor, as for :func:`embed_images`.
        references: Reference images (tensor ``(R, C, H, W)`` or files).
        sequences: Per sequence, its frames (tensor ``(T, C, H, W)`` or files).
        threshold: Absolute frame cut (0.99 in the paper, with its ResNet50 features).
        top_fraction: Keep the best fraction of all frames.
        zscore: Cut at ``mean + zscore · std`` of all frame scores.
        rule: Sequence rule of :func:`select_sequences`.
        min_fraction: Share of passing frames for ``rule="fraction"``.
        names: A name per sequence; defaults to the parent folder of the first frame for file
            lists, else the index.
        **embed_kwargs: ``batch_size``, ``size``, ``in_chans``, ``device``, ``progress``, ``mean``,
            ``std`` of :func:`embed_images`.

    Returns:
        A :class:`ScreeningResult`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> extractor = nn.Flatten()
        >>> refs = torch.eye(4).view(4, 1, 2, 2)
        >>> good = refs + 0.01 * torch.rand(4, 1, 2, 2)
        >>> bad = torch.rand(4, 1, 2, 2)
        >>> r = screen_sequences(extractor, refs, [good, bad], threshold=0.99, size=2, in_chans=1,
        ...                      progress=False)
        >>> r.selected
        [0]
    """
    if len(sequences) == 0:
        raise ValueError("no sequences to screen")
    ref_emb = embed_images(extractor, references, **embed_kwargs)
    lengths = [len(s) for s in sequences]
    frames: list[ImageSource] = []
    for s in sequences:
        frames.extend(s[i] for i in range(len(s)))
    frame_emb = embed_images(extractor, frames, **embed_kwargs)
    scores, index = reference_similarity(frame_emb, ref_emb)
    cut = frame_cut(scores, threshold, top_fraction, zscore)
    per_seq = list(scores.split(lengths))
    per_ref = list(index.split(lengths))
    criterion = {
        k: float(v)
        for k, v in (("threshold", threshold), ("top_fraction", top_fraction), ("zscore", zscore))
        if v is not None
    }
    if names is None:
        names = [
            Path(s[0]).parent.name if len(s) and not isinstance(s[0], Tensor) else str(i)
            for i, s in enumerate(sequences)
        ]
    return ScreeningResult(
        frame_scores=per_seq,
        frame_reference=per_ref,
        frame_masks=[s >= cut for s in per_seq],
        sequence_mask=select_sequences(per_seq, cut, rule=rule, min_fraction=min_fraction),
        threshold=cut,
        rule=rule,
        min_fraction=min_fraction,
        names=list(names),
        criterion=criterion,
    )


def plot_scores(result: ScreeningResult, path: str | PathLike[str]) -> Path:
    """Plot the screening: a strip of frame scores per sequence and a histogram, cut drawn.

    Kept sequences are drawn in blue, rejected ones in grey; frames that pass are filled.

    Args:
        result: A :class:`ScreeningResult`.
        path: Image file to write (format from the extension, e.g. ``.png``).

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(result.frame_scores)
    fig, (ax, axh) = plt.subplots(
        1, 2, figsize=(min(4 + 0.4 * n, 16), 4), gridspec_kw={"width_ratios": [3, 1]}, sharey=True
    )
    gen = torch.Generator().manual_seed(0)
    for i, s in enumerate(result.frame_scores):
        if s.numel() == 0:
            continue
        x = i + (torch.rand(s.numel(), generator=gen) - 0.5) * 0.5
        colour = "tab:blue" if bool(result.sequence_mask[i]) else "tab:gray"
        passing = result.frame_masks[i]
        ax.scatter(x[passing], s[passing], s=10, color=colour)
        ax.scatter(x[~passing], s[~passing], s=10, facecolors="none", edgecolors=colour)
    ax.axhline(result.threshold, color="tab:red", linestyle="--", label=f"cut {result.threshold:.4f}")
    labels = result.names if len(result.names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), labels, rotation=90 if n > 10 else 0, fontsize=7)
    ax.set_xlabel(f"sequence (blue: kept, rule={result.rule})")
    ax.set_ylabel("max cosine similarity to a reference")
    ax.legend(loc="lower right")
    all_scores = torch.cat([s for s in result.frame_scores if s.numel()]) if n else torch.zeros(0)
    values = all_scores.double().numpy()
    # Nearly constant scores (e.g. an untrained extractor) leave no room for 40 float bins.
    lo, hi = float(values.min()), float(values.max())
    pad = max(1e-6, 1e-6 * abs(hi))
    axh.hist(values, bins=40, range=(lo - pad, hi + pad), orientation="horizontal", color="tab:blue")
    axh.axhline(result.threshold, color="tab:red", linestyle="--")
    axh.set_xlabel("frames")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)

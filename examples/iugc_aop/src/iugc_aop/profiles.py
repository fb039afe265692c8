"""Named run profiles of the IUGC pipeline: every size, epoch count and learning rate in one place.

A :class:`Profile` fixes the network (input and heatmap size, U-Net widths, the ResNet of the
baseline row), the three training stages (:class:`SSLStage` twice, :class:`FinetuneStage`), the
screening of sequences (:class:`Screening`), the labelled-image budget and the synthetic data
written when no real data is given. Three are provided:

* ``paper`` — the published recipe, for a GPU: 256×256 input, 64×64 heatmaps (σ = 2), U-Net
  widths 64–512 with a 1024 bottleneck; stage 1 AdamW 1e-3 / 1e-3, batch 64, 200 epochs, queue
  65,536; stage 2 AdamW 1e-4 / 1e-4 with ReduceLROnPlateau, queue 16,384; stage 3 Adam 1e-5,
  batch 8, up to 1000 epochs with early stopping (patience 50).
* ``quick`` — the demo on 2 CPU cores in under 10 minutes: 96×96 input, 24×24 heatmaps, widths
  8–64, five epochs per pre-training stage, 60 labelled images, 20 fine-tuning epochs (the best
  hold-out epoch is kept). Fine-tuning uses Adam 3e-3 instead of 1e-5: with about 150 optimiser
  steps instead of tens of thousands, 1e-5 barely moves a randomly initialised decoder, and every
  variant would be compared at "not trained yet". The demo takes about 1.5 minutes on an idle
  2-core machine. The spare time is deliberately not spent on longer pre-training: a
  Validation-split scan (``benchmarks/bench_ssl_scan.py``) found that 30 or 60 stage-1 epochs
  leave the InfoNCE loss at chance and do not make ``ssl_unet`` better, and that a 128-px input
  makes every variant worse at this fine-tuning length.
* ``smoke`` — seconds, for tests: 64×64 input, tiny widths, one or two epochs.

Profiles are frozen dataclasses; derive a variant with :func:`dataclasses.replace` or
:meth:`Profile.with_overrides`.

Examples:
    >>> p = get_profile("quick")
    >>> p.input_size, p.heatmap_size, p.finetune.lr
    ((96, 96), (24, 24), 0.003)
    >>> get_profile("paper").stage1.queue_size
    65536
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROFILES",
    "FinetuneStage",
    "Profile",
    "SSLStage",
    "Screening",
    "get_profile",
]


@dataclass(frozen=True)
class SSLStage:
    """Settings of one MoCo v2 pre-training stage.

    Attributes:
        epochs: Training epochs.
        batch_size: Images (stage 1) or frame pairs (stage 2) per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        queue_size: Requested MoCo queue length (capped below the data size by the library).
        plateau: Reduce the learning rate when the epoch loss plateaus.
        split_bn: Sub-batches for the key encoder's batch norm (shuffle-BN substitute).
        max_steps: Optional cap on optimiser steps (``None``: ``epochs`` decides).
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    queue_size: int
    plateau: bool = False
    split_bn: int = 8
    max_steps: int | None = None


@dataclass(frozen=True)
class Screening:
    """How sequences are screened against the ``ExampleN.jpg`` reference images.

    Frames are embedded with the stage-1 encoder (globally pooled deepest features) and scored by
    their highest cosine similarity to a reference. Exactly one frame cut is used: ``threshold``
    (absolute, the paper's 0.99 with ImageNet ResNet50 features, which cannot be downloaded here),
    ``top_fraction`` (the best share of all frames) or ``zscore``. A sequence is kept by ``rule``.

    Attributes:
        threshold: Absolute cosine-similarity cut, or ``None``.
        top_fraction: Share of all frames that pass, or ``None``.
        zscore: Cut at ``mean + zscore·std`` of all frame scores, or ``None``.
        rule: ``"fraction"`` (share of passing frames ≥ ``min_fraction``) or ``"median"``.
        min_fraction: Share of passing frames a kept sequence needs.
        min_sequences: Keep at least this many sequences (the best by median score) so stage 2
            always has data.
    """

    threshold: float | None = None
    top_fraction: float | None = 0.6
    zscore: float | None = None
    rule: str = "fraction"
    min_fraction: float = 0.5
    min_sequences: int = 2

    def criterion(self) -> dict[str, float]:
        """The one frame-cut keyword for :func:`sslkeypoint.ssl.selection.screen_sequences`."""
        given = {k: v for k, v in (("threshold", self.threshold), ("top_fraction", self.top_fraction),
                                   ("zscore", self.zscore)) if v is not None}
        if len(given) != 1:
            raise ValueError(f"give exactly one of threshold, top_fraction, zscore; got {given}")
        return given


@dataclass(frozen=True)
class FinetuneStage:
    """Settings of the supervised heatmap fine-tuning (stage 3), shared by every variant.

    Attributes:
        epochs: Upper bound on epochs.
        batch_size: Images per step.
        lr: Adam learning rate.
        patience: Early-stopping patience in validation epochs (on the validation MRE).
        lr_patience: ReduceLROnPlateau patience.
        augment: Geometric/intensity augmentation of training batches.
        val_fraction: Share of the labelled budget held out for early stopping (8:2 in the paper).
        max_steps: Optional cap on optimiser steps.
    """

    epochs: int
    batch_size: int
    lr: float
    patience: int
    lr_patience: int
    augment: bool = False
    val_fraction: float = 0.2
    max_steps: int | None = None


@dataclass(frozen=True)
class Profile:
    """Everything that sizes a pipeline run.

    Attributes:
        name: Profile name.
        description: One line shown at start.
        input_size: Network input ``(H, W)`` in px.
        heatmap_size: Heatmap ``(h, w)``; ``input_size / heatmap_size`` is the heatmap stride.
        sigma: Gaussian σ of the targets in heatmap px.
        widths: U-Net encoder widths.
        bottleneck_width: U-Net bottleneck width.
        resnet: timm model of the ``resnet_unet`` baseline (randomly initialised).
        label_budget: Labelled training images used for fine-tuning (``None``: all); the rest
            are still used, without labels, in stage 1.
        stage1: Stage-1 MoCo v2 on single images.
        stage2: Stage-2 MoCo v2 on adjacent frames of the screened sequences.
        screening: Sequence screening.
        finetune: Stage-3 fine-tuning.
        synthetic_size: Preset of :class:`iugc_aop.synth.SynthConfig` written when no data is
            given.
        synthetic_overrides: Field overrides of that preset.
        eval_batch_size: Images per forward pass when evaluating.
        timing_images: Test images timed one by one for the inference ms/image column.
        num_workers: DataLoader worker processes.
        seed: Seed of every stage.
    """

    name: str
    description: str
    input_size: tuple[int, int]
    heatmap_size: tuple[int, int]
    sigma: float
    widths: tuple[int, ...]
    bottleneck_width: int
    resnet: str
    label_budget: int | None
    stage1: SSLStage
    stage2: SSLStage
    screening: Screening
    finetune: FinetuneStage
    synthetic_size: str = "quick"
    synthetic_overrides: dict[str, Any] = field(default_factory=dict)
    eval_batch_size: int = 16
    timing_images: int = 16
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        h, w = self.input_size
        hh, hw = self.heatmap_size
        if h % hh or w % hw or h // hh != w // hw:
            raise ValueError(
                f"input_size must be the same integer multiple of heatmap_size on both axes; got "
                f"input_size={self.input_size}, heatmap_size={self.heatmap_size}"
            )
        if self.label_budget is not None and self.label_budget < 4:
            raise ValueError(f"label_budget must be >= 4 images or None; got {self.label_budget}")

    @property
    def heatmap_stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return self.input_size[0] // self.heatmap_size[0]

    def unet_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`sslkeypoint.encoders.UNetEncoder` (besides ``in_chans``)."""
        return {"widths": list(self.widths), "bottleneck_width": self.bottleneck_width}

    def with_overrides(self, **changes: Any) -> Profile:
        """A copy with some fields replaced (nested stages by their dataclass)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def describe(self) -> str:
        """A few lines that say what this profile runs (printed at the start of a command)."""
        s1, s2, ft, sc = self.stage1, self.stage2, self.finetune, self.screening
        budget = "all" if self.label_budget is None else str(self.label_budget)
        return "\n".join([
            f"profile {self.name}: {self.description}",
            f"  network   input {self.input_size[0]}x{self.input_size[1]} -> heatmap "
            f"{self.heatmap_size[0]}x{self.heatmap_size[1]} (sigma {self.sigma:g}), U-Net widths "
            f"{list(self.widths)} + {self.bottleneck_width}, baseline {self.resnet}",
            f"  stage 1   MoCo v2 {s1.epochs} epochs, batch {s1.batch_size}, AdamW {s1.lr:g}/"
            f"{s1.weight_decay:g}, queue {s1.queue_size}",
            f"  screening {sc.criterion()}, rule {sc.rule} (min fraction {sc.min_fraction:g})",
            f"  stage 2   MoCo v2 on frame pairs {s2.epochs} epochs, batch {s2.batch_size}, AdamW "
            f"{s2.lr:g}/{s2.weight_decay:g}{' + plateau' if s2.plateau else ''}, queue {s2.queue_size}",
            f"  stage 3   Adam {ft.lr:g}, batch {ft.batch_size}, <= {ft.epochs} epochs (patience "
            f"{ft.patience}), labelled images: {budget}, augmentation {'on' if ft.augment else 'off'}",
        ])


PROFILES: dict[str, Profile] = {
    "paper": Profile(
        name="paper",
        description="the published hyper-parameters (a GPU is needed)",
        input_size=(256, 256),
        heatmap_size=(64, 64),
        sigma=2.0,
        widths=(64, 128, 256, 512),
        bottleneck_width=1024,
        resnet="timm:resnet18",
        label_budget=None,
        stage1=SSLStage(epochs=200, batch_size=64, lr=1e-3, weight_decay=1e-3, queue_size=65536),
        stage2=SSLStage(epochs=100, batch_size=64, lr=1e-4, weight_decay=1e-4, queue_size=16384,
                        plateau=True),
        screening=Screening(top_fraction=0.6),
        finetune=FinetuneStage(epochs=1000, batch_size=8, lr=1e-5, patience=50, lr_patience=20),
        synthetic_size="full",
        eval_batch_size=32,
        timing_images=32,
        num_workers=4,
    ),
    "quick": Profile(
        name="quick",
        description="the demo on 2 CPU cores (< 10 minutes)",
        input_size=(96, 96),
        heatmap_size=(24, 24),
        sigma=2.0,
        widths=(8, 16, 32, 64),
        bottleneck_width=128,
        resnet="timm:resnet10t",
        label_budget=60,
        stage1=SSLStage(epochs=5, batch_size=32, lr=1e-3, weight_decay=1e-3, queue_size=4096,
                        split_bn=4),
        stage2=SSLStage(epochs=5, batch_size=16, lr=1e-4, weight_decay=1e-4, queue_size=1024,
                        plateau=True, split_bn=4),
        screening=Screening(top_fraction=0.6),
        finetune=FinetuneStage(epochs=20, batch_size=8, lr=3e-3, patience=20, lr_patience=5),
        synthetic_size="quick",
        synthetic_overrides={"train": 120, "validation": 30, "testing": 60, "sequences": 12,
                             "frames": 12},
    ),
    "smoke": Profile(
        name="smoke",
        description="seconds, for tests (numbers mean nothing)",
        input_size=(64, 64),
        heatmap_size=(16, 16),
        sigma=1.5,
        widths=(4, 8, 16, 32),
        bottleneck_width=32,
        resnet="timm:resnet10t",
        label_budget=None,
        stage1=SSLStage(epochs=1, batch_size=8, lr=1e-3, weight_decay=1e-3, queue_size=64,
                        split_bn=2),
        stage2=SSLStage(epochs=1, batch_size=4, lr=1e-4, weight_decay=1e-4, queue_size=32,
                        plateau=True, split_bn=2),
        screening=Screening(top_fraction=0.6),
        finetune=FinetuneStage(epochs=2, batch_size=8, lr=1e-3, patience=2, lr_patience=1),
        synthetic_size="smoke",
        eval_batch_size=16,
        timing_images=4,
    ),
}


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (a :class:`Profile` is returned as is).

    Raises:
        ValueError: For an unknown name (the valid names are listed).
    """
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[name]

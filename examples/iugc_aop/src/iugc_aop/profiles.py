"""Named run profiles of the IUGC pipeline, built from the library's config classes.

A :class:`Profile` holds the library configs of the three training stages —
:class:`~sslkeypoint.configs.PretrainConfig` for stage 1 and stage 2,
:class:`~sslkeypoint.configs.FinetuneConfig` for stage 3 (the base of every variant, see
:mod:`iugc_aop.variants`) and a :class:`~sslkeypoint.configs.TrainerConfig` — plus what only the
example knows: the screening of sequences (:class:`Screening`), the ResNet of the baseline row,
the labelled-image budget and the synthetic data written when no real data is given. Three are
provided:

* ``paper`` — the published recipe, for a GPU: 256×256 input, 64×64 heatmaps (σ = 2), U-Net
  widths 64–512 with a 1024 bottleneck; stage 1 AdamW 1e-3 / 1e-3, batch 64, 200 epochs, queue
  65,536; stage 2 AdamW 1e-4 / 1e-4 with ReduceLROnPlateau, queue 16,384; stage 3 Adam 1e-5,
  batch 8, up to 1000 epochs with early stopping (patience 50).
* ``quick`` — the demo on 2 CPU cores in under 10 minutes: 96×96 input, 24×24 heatmaps, widths
  8–64, five epochs per pre-training stage, 60 labelled images, 20 fine-tuning epochs (the best
  hold-out epoch is kept). Fine-tuning uses Adam 3e-3 instead of 1e-5: with about 150 optimiser
  steps instead of tens of thousands, 1e-5 barely moves a randomly initialised decoder, and every
  variant would be compared at "not trained yet". The demo takes about 2 minutes on an idle
  2-core machine. The spare time is deliberately not spent on longer pre-training: a
  Validation-split scan (``benchmarks/bench_ssl_scan.py``) found that 30 or 60 stage-1 epochs
  leave the InfoNCE loss at chance and do not make ``ssl_unet`` better, and that a 128-px input
  makes every variant worse at this fine-tuning length.
* ``smoke`` — seconds, for tests: 64×64 input, tiny widths, one or two epochs.

Real images (PSFHS, or an IUGC folder not written by :mod:`iugc_aop.synth`) need more
resolution and capacity than the synthetic scenes: :func:`get_profile` with ``real=True`` gives
the :data:`REAL_PROFILES` profile of the same name when there is one. The real ``quick`` takes
128-px input, 32×32 heatmaps, U-Net widths 16–128 + 256, ten stage-1 epochs without horizontal
flips, and fine-tuning with keypoint augmentation for up to 40 epochs (Adam 1e-3). It chooses its
labelled cases by ``coverage`` (typical clusters of the stage-1 encoder's features) and trains
three variants, ``unet``, ``ssl_unet`` and ``pseudo_unet``; its recommended variant,
exported to the demo's ``submission/``, is ``pseudo_unet``, pseudo-label self-training: on the
PSFHS benchmark split with 50 labels it had the lowest errors of every method measured,
7.23 ± 0.78 px / 7.22 ± 1.19° on coverage-chosen labels and 7.78 ± 0.24 px / 7.27 ± 0.49° on
random ones, against 9.04 ± 0.61 px / 8.92 ± 0.28° from scratch on random labels (three draws;
docs: "Label efficiency on real images"). The choice of labels is the weaker part of that gain.
With 50 labelled PSFHS cases the demo takes about 17 minutes on 2 CPU cores, most of it the
pseudo-label student (about 9 minutes); ``--variants`` adds others (``semi_unet``: 2.5 minutes).

Profiles are frozen; derive a variant with :func:`dataclasses.replace` on the profile and on its
configs (:meth:`Profile.with_overrides`).

Examples:
    >>> p = get_profile("quick")
    >>> p.input_size, p.heatmap_size, p.finetune.lr
    ((96, 96), (24, 24), 0.003)
    >>> get_profile("paper").pretrain.method.queue_size
    65536
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from iugc_aop.landmarks import LANDMARK_NAMES, MEASURES
from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
from sslkeypoint.methods import MoCoV2Method

__all__ = ["PROFILES", "REAL_PROFILES", "Profile", "Screening", "get_profile"]


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
        """The one frame-cut keyword for :func:`sslkeypoint.ssl.screening.screen_sequences`."""
        given = {k: v for k, v in (("threshold", self.threshold), ("top_fraction", self.top_fraction),
                                   ("zscore", self.zscore)) if v is not None}
        if len(given) != 1:
            raise ValueError(f"give exactly one of threshold, top_fraction, zscore; got {given}")
        return given


@dataclass(frozen=True)
class Profile:
    """Everything that sizes a pipeline run.

    Attributes:
        name: Profile name.
        description: One line shown at start.
        pretrain: Stage 1, MoCo v2 on single images (the network input size and U-Net widths of
            every stage are the fine-tuning config's).
        pretrain_temporal: Stage 2, MoCo v2 on adjacent frames of the screened sequences.
        finetune: Stage 3, the base fine-tuning config of every variant.
        trainer: Where the stages run (workers, logging; the command line sets the device).
        screening: Sequence screening.
        resnet: timm model of the ``resnet_unet`` baseline (randomly initialised).
        label_budget: Labelled training images used for fine-tuning (``None``: all); the rest
            are still used, without labels, in stage 1.
        synthetic_size: Preset of :class:`iugc_aop.synth.SynthConfig` written when no data is
            given.
        synthetic_overrides: Field overrides of that preset.
        eval_batch_size: Images per forward pass when evaluating.
        timing_images: Test images timed one by one for the inference ms/image column.
        seed: Seed of every stage.
        recommended: The variant exported to the demo's ``submission/`` folder.
        select: How the demo chooses its labelled cases (:data:`~iugc_aop.stages.SELECTIONS`).
        variants: The variants the demo trains (empty: :data:`~iugc_aop.variants.DEMO_VARIANTS`);
            the recommended one is always among them.
    """

    name: str
    description: str
    pretrain: PretrainConfig
    pretrain_temporal: PretrainConfig
    finetune: FinetuneConfig
    trainer: TrainerConfig
    screening: Screening
    resnet: str
    label_budget: int | None
    synthetic_size: str = "quick"
    synthetic_overrides: dict[str, Any] = field(default_factory=dict)
    eval_batch_size: int = 16
    timing_images: int = 16
    seed: int = 0
    recommended: str = "ssl_unet"
    select: str = "random"
    variants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ft = self.finetune
        for stage in (self.pretrain, self.pretrain_temporal):
            if stage.image_size != ft.input_size or stage.encoder_kwargs != ft.encoder_kwargs or stage.in_chans != ft.in_chans:
                raise ValueError(
                    f"profile {self.name!r}: the pre-training stages must train the fine-tuning network "
                    f"(input {ft.input_size}, encoder_kwargs {ft.encoder_kwargs}, in_chans {ft.in_chans}); "
                    f"stage {stage.stage} has input {stage.image_size}, encoder_kwargs {stage.encoder_kwargs}"
                )
        if self.label_budget is not None and self.label_budget < 4:
            raise ValueError(f"label_budget must be >= 4 images or None; got {self.label_budget}")

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(H, W)`` in px."""
        return self.finetune.input_size

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """Heatmap ``(h, w)``."""
        return self.finetune.heatmap_size

    def unet_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`sslkeypoint.encoders.UNetEncoder` (besides ``in_chans``)."""
        return dict(self.finetune.encoder_kwargs)

    def with_overrides(self, **changes: Any) -> Profile:
        """A copy with some fields replaced (configs by their own ``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("pretrain", "pretrain_temporal", "finetune", "trainer"):
            data[key] = data[key].to_dict()
        data["screening"] = dataclasses.asdict(self.screening)
        return json.loads(json.dumps(data))

    def describe(self) -> str:
        """A few lines that say what this profile runs (printed at the start of a command)."""
        s1, s2, ft, sc = self.pretrain, self.pretrain_temporal, self.finetune, self.screening
        budget = "all" if self.label_budget is None else str(self.label_budget)
        kw = ft.encoder_kwargs
        return "\n".join([
            f"profile {self.name}: {self.description}",
            f"  network   input {ft.input_size[0]}x{ft.input_size[1]} -> heatmap {ft.heatmap_size[0]}x"
            f"{ft.heatmap_size[1]} (sigma {ft.sigma:g}), U-Net widths {list(kw.get('widths', []))} + "
            f"{kw.get('bottleneck_width')}, baseline {self.resnet}",
            f"  stage 1   {s1.max_epochs} epochs, batch {s1.batch_size}, AdamW {s1.lr:g}/"
            f"{s1.weight_decay:g}, {s1.method.describe()}",
            f"  screening {sc.criterion()}, rule {sc.rule} (min fraction {sc.min_fraction:g})",
            f"  stage 2   frame pairs {s2.max_epochs} epochs, batch {s2.batch_size}, AdamW "
            f"{s2.lr:g}/{s2.weight_decay:g}{' + plateau' if s2.plateau else ''}, {s2.method.describe()}",
            f"  stage 3   Adam {ft.lr:g}, batch {ft.batch_size}, <= {ft.max_epochs} epochs (patience "
            f"{ft.early_stopping_patience}), labelled images: {budget} ({self.select}), augmentation "
            f"{'on' if ft.augment else 'off'}",
        ])


def _profile(
    name: str,
    description: str,
    *,
    size: int,
    heatmap: int,
    sigma: float,
    widths: tuple[int, ...],
    bottleneck: int,
    stage1: dict[str, Any],
    stage2: dict[str, Any],
    finetune: dict[str, Any],
    num_workers: int = 0,
    **rest: Any,
) -> Profile:
    """A profile whose three stages share one network (input size, U-Net widths, one channel)."""
    net: dict[str, Any] = {"in_chans": 1, "encoder": "unet",
                           "encoder_kwargs": {"widths": list(widths), "bottleneck_width": bottleneck}}
    return Profile(
        name=name,
        description=description,
        pretrain=PretrainConfig.stage1(image_size=(size, size), **net, **stage1),
        pretrain_temporal=PretrainConfig.stage2(image_size=(size, size), **net, **stage2),
        finetune=FinetuneConfig(
            input_size=(size, size), heatmap_size=(heatmap, heatmap), sigma=sigma, num_keypoints=len(LANDMARK_NAMES),
            keypoint_names=LANDMARK_NAMES, measures=MEASURES, **net, **finetune,
        ),
        trainer=TrainerConfig(num_workers=num_workers, log_every_n_steps=1),
        **rest,
    )


PROFILES: dict[str, Profile] = {
    "paper": _profile(
        "paper", "the published hyper-parameters (a GPU is needed)",
        size=256, heatmap=64, sigma=2.0, widths=(64, 128, 256, 512), bottleneck=1024,
        stage1={"max_epochs": 200, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-3, "method": MoCoV2Method(queue_size=65536)},
        stage2={"max_epochs": 100, "batch_size": 64, "lr": 1e-4, "weight_decay": 1e-4, "method": MoCoV2Method(queue_size=16384),
                "plateau": True},
        finetune={"max_epochs": 1000, "batch_size": 8, "lr": 1e-5, "early_stopping_patience": 50, "lr_patience": 20},
        num_workers=4, screening=Screening(top_fraction=0.6), resnet="timm:resnet18", label_budget=None,
        synthetic_size="full", eval_batch_size=32, timing_images=32,
    ),
    "quick": _profile(
        "quick", "the demo on 2 CPU cores (< 10 minutes)",
        size=96, heatmap=24, sigma=2.0, widths=(8, 16, 32, 64), bottleneck=128,
        stage1={"max_epochs": 5, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-3, "method": MoCoV2Method(queue_size=4096, split_bn=4)},
        stage2={"max_epochs": 5, "batch_size": 16, "lr": 1e-4, "weight_decay": 1e-4, "method": MoCoV2Method(queue_size=1024, split_bn=4),
                "plateau": True},
        finetune={"max_epochs": 20, "batch_size": 8, "lr": 3e-3, "early_stopping_patience": 20, "lr_patience": 5},
        screening=Screening(top_fraction=0.6), resnet="timm:resnet10t", label_budget=60,
        synthetic_size="quick",
        synthetic_overrides={"train": 120, "validation": 30, "testing": 60, "sequences": 12, "frames": 12},
    ),
    "smoke": _profile(
        "smoke", "seconds, for tests (numbers mean nothing)",
        size=64, heatmap=16, sigma=1.5, widths=(4, 8, 16, 32), bottleneck=32,
        stage1={"max_epochs": 1, "batch_size": 8, "lr": 1e-3, "weight_decay": 1e-3, "method": MoCoV2Method(queue_size=64, split_bn=2)},
        stage2={"max_epochs": 1, "batch_size": 4, "lr": 1e-4, "weight_decay": 1e-4, "method": MoCoV2Method(queue_size=32, split_bn=2),
                "plateau": True},
        finetune={"max_epochs": 2, "batch_size": 8, "lr": 1e-3, "early_stopping_patience": 2, "lr_patience": 1},
        screening=Screening(top_fraction=0.6), resnet="timm:resnet10t", label_budget=None,
        synthetic_size="smoke", eval_batch_size=16, timing_images=4,
    ),
}


#: Profiles for real images, used instead of the profile of the same name when the data are real
#: (PSFHS, or an IUGC folder that is not this package's synthetic data). The synthetic scenes are
#: simple enough for the 96-px ``quick`` network; real ultrasound needs more resolution and
#: capacity: 128-px input, 32×32 heatmaps (σ = 2), U-Net widths 16–128, 10 stage-1 epochs,
#: fine-tuning with keypoint augmentation for up to 40 epochs.
REAL_PROFILES: dict[str, Profile] = {
    "quick": _profile(
        "quick", "the demo on 2 CPU cores, real images (< 20 minutes for 50 labels)",
        size=128, heatmap=32, sigma=2.0, widths=(16, 32, 64, 128), bottleneck=256,
        stage1={"max_epochs": 10, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-3, "method": MoCoV2Method(queue_size=4096, split_bn=4), "augment": {"hflip_p": 0.0}},
        stage2={"max_epochs": 5, "batch_size": 16, "lr": 1e-4, "weight_decay": 1e-4, "method": MoCoV2Method(queue_size=1024, split_bn=4),
                "plateau": True, "augment": {"hflip_p": 0.0, "scale": [0.6, 1.0], "jitter": 0.2,
                                                            "blur_p": 0.2}},
        finetune={"max_epochs": 40, "batch_size": 8, "lr": 1e-3, "early_stopping_patience": 20, "lr_patience": 8,
                  "augment": True},
        screening=Screening(top_fraction=0.6), resnet="timm:resnet10t", label_budget=50,
        # The variant and the choice of labels with the lowest landmark and AoP errors at 50 labels
        # over three label draws on the PSFHS benchmark split (benchmarks/bench_label_efficiency.py;
        # docs: "Label efficiency on real images"). ``unet`` stays: it is the from-scratch
        # comparison of every report and of ``submissions/unet/``.
        recommended="pseudo_unet", select="coverage", variants=("unet", "ssl_unet", "pseudo_unet"),
    ),
}


def get_profile(name: str | Profile, real: bool = False) -> Profile:
    """The profile called ``name`` (a :class:`Profile` is returned as is).

    Args:
        name: Profile name or profile.
        real: The data are real images: use :data:`REAL_PROFILES`' profile of that name when
            there is one.

    Raises:
        ValueError: For an unknown name (the valid names are listed).

    Examples:
        >>> get_profile("quick").input_size, get_profile("quick", real=True).input_size
        ((96, 96), (128, 128))
    """
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {sorted(PROFILES)}")
    if real and name in REAL_PROFILES:
        return REAL_PROFILES[name]
    return PROFILES[name]

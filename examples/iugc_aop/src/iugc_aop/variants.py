"""The one table of methods: the pre-trainings and the model variants of the demo, the report and every benchmark.

A variant is a fine-tuned network: its encoder, its codec, where its weights start (random, or a
:class:`Pretraining`) and how it is fine-tuned (a library fine-tuning method,
:mod:`sslkeypoint.methods`). A pre-training is a library pre-training method applied to the
profile's stage 1 (and, for MoCo v2 on data with sequences, stage 2).

Pre-trainings (:data:`PRETRAININGS`; folder ``stage1`` for ``moco``, ``stage1_<name>`` for the others):

* ``moco`` — MoCo v2, the paper's stages 1 and 2 (the profile's settings);
* ``moco_flip`` — the same with horizontal flips in the views;
* ``dense`` — DenseCL on the encoder's deepest map (``weight=0.5``);
* ``dense_dec`` — DenseCL on the U-Net decoder's output: encoder and decoder pre-trained;
* ``recon`` — masked-image reconstruction of the whole U-Net (encoder and decoder).

Variants (:data:`VARIANTS`), in table order:

* ``resnet_unet`` — a timm ResNet encoder (randomly initialised: no weights can be downloaded) in
  the same :class:`~sslkeypoint.models.HeatmapUNet`, exact codec;
* ``unet_starter`` — the U-Net without SSL, trained and decoded with the IUGC starter's codec
  (:class:`iugc_aop.starter_codec.StarterCodec`: truncated Gaussian centres, argmax, ``x/W``
  scaling back to the original image);
* ``unet`` — the U-Net without SSL, exact codec (:class:`~sslkeypoint.heatmaps.HeatmapCodec`,
  DARK decoding): training from scratch;
* ``ssl_unet`` — the U-Net initialised from the MoCo v2 encoder (stage 2, or stage 1 for data
  without sequences), exact codec;
* ``ssl_unet_starter_codec`` — ``ssl_unet``'s recipe with the starter's codec;
* ``moco_flip_unet``, ``dense_unet``, ``dense_dec_unet``, ``recon_unet`` — the U-Net from the
  other pre-trainings (the decoder too where the pre-training trains one);
* ``semi_unet`` — the U-Net without SSL, fine-tuned as a mean teacher on the labelled images and
  every unlabelled training image; ``ssl_semi_unet`` — the same from the MoCo v2 encoder;
* ``pseudo_unet`` — pseudo-label self-training (noisy student) from a supervised teacher;
  ``pseudo2_unet`` — two rounds of it (the first student labels the pool again);
  ``semi_pseudo_unet`` — the same from a mean-teacher teacher; ``recon_pseudo_unet`` — pseudo-label
  self-training from the reconstruction-pre-trained U-Net.

A variant is a small change of the profile's :class:`~sslkeypoint.configs.FinetuneConfig`
(:func:`finetune_config`) plus its codec (:func:`make_codec`); the codec is stored in every
checkpoint, so prediction and the challenge submission decode each variant as it was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from iugc_aop.profiles import Profile
from iugc_aop.starter_codec import StarterCodec
from sslkeypoint.configs import FinetuneConfig, PretrainConfig
from sslkeypoint.heatmaps import KeypointCodec
from sslkeypoint.methods import (
    DenseCLMethod,
    FinetuningMethod,
    MeanTeacherMethod,
    MoCoV2Method,
    PseudoLabelMethod,
    ReconstructionMethod,
    SupervisedMethod,
)

__all__ = [
    "DEMO_VARIANTS",
    "PRETRAININGS",
    "VARIANTS",
    "Pretraining",
    "Variant",
    "finetune_config",
    "get_pretraining",
    "get_variant",
    "make_codec",
]


@dataclass(frozen=True)
class Pretraining:
    """A pre-training of the network: a library method applied to the profile's stage 1.

    Attributes:
        name: Key in :data:`PRETRAININGS`; the stage folder is ``stage1`` for ``moco`` and
            ``stage1_<name>`` for the others.
        title: Human-readable description.
        method: ``"moco_v2"`` (the profile's own MoCo v2 settings), ``"densecl"`` (DenseCL with the
            profile's MoCo v2 settings) or ``"reconstruction"``.
        options: Fields of the method (e.g. ``{"weight": 0.5, "level": "decoder"}``).
        augment: Changes of the profile's view augmentation (e.g. ``{"hflip_p": 0.5}``).
        temporal: Followed by the profile's stage 2 (MoCo v2 on adjacent frames of the screened
            sequences) when the data has sequences.
        epochs_factor: The profile's stage-1 epochs times this (a reconstruction objective needs
            more steps than a contrastive one to paint images back).
    """

    name: str
    title: str
    method: Literal["moco_v2", "densecl", "reconstruction"] = "moco_v2"
    options: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)
    temporal: bool = False
    epochs_factor: int = 1

    @property
    def folder(self) -> str:
        """The stage-1 folder name."""
        return "stage1" if self.name == "moco" else f"stage1_{self.name}"

    @property
    def trains_decoder(self) -> bool:
        """Whether it pre-trains the decoder too (fine-tuning then loads ``unet.safetensors``)."""
        return self.method == "reconstruction" or (self.method == "densecl" and self.options.get("level") == "decoder")

    def config(self, profile: Profile) -> PretrainConfig:
        """The profile's stage-1 config with this pre-training's method and views.

        Examples:
            >>> from iugc_aop.profiles import get_profile
            >>> PRETRAININGS["recon"].config(get_profile("quick")).method.decoder_stride
            4
        """
        base = profile.pretrain
        moco = base.method if isinstance(base.method, MoCoV2Method) else MoCoV2Method()
        moco_fields = {f.name: getattr(moco, f.name) for f in dataclasses.fields(MoCoV2Method)}
        method: Any
        if self.method == "moco_v2":
            method = dataclasses.replace(moco, **self.options)
        elif self.method == "densecl":
            options = {"decoder_stride": profile.finetune.heatmap_stride, **self.options}
            method = DenseCLMethod(**moco_fields, **options)
        else:
            method = ReconstructionMethod(**{"decoder_stride": profile.finetune.heatmap_stride, **self.options})
        return dataclasses.replace(base, method=method, augment={**base.augment, **self.augment},
                                   max_epochs=base.max_epochs * self.epochs_factor)


#: The pre-trainings, by name.
PRETRAININGS: dict[str, Pretraining] = {
    p.name: p
    for p in (
        Pretraining("moco", "MoCo v2 (stage 1, and stage 2 on screened sequences)", temporal=True),
        Pretraining("moco_flip", "MoCo v2 with horizontal flips in the views", augment={"hflip_p": 0.5}),
        Pretraining("dense", "DenseCL on the encoder's deepest map", "densecl", {"weight": 0.5}),
        Pretraining("dense_dec", "DenseCL on the U-Net decoder's output (encoder and decoder)", "densecl",
                    {"weight": 0.5, "level": "decoder"}),
        Pretraining("recon", "masked-image reconstruction of the whole U-Net", "reconstruction", epochs_factor=5),
    )
}


@dataclass(frozen=True)
class Variant:
    """One fine-tuned network: a row of the report, a folder of the demo, a method of the benchmarks.

    Attributes:
        name: Key in ``metrics.json`` and folder name.
        title: Human-readable description.
        encoder: ``"unet"`` (the profile's U-Net) or ``"resnet"`` (the profile's timm ResNet).
        codec: ``"exact"`` (:class:`~sslkeypoint.heatmaps.HeatmapCodec`, DARK) or ``"starter"``
            (:class:`iugc_aop.starter_codec.StarterCodec`).
        pretraining: Key of :data:`PRETRAININGS` the network starts from (``None``: random).
        method: The library fine-tuning method.
    """

    name: str
    title: str
    encoder: Literal["unet", "resnet"] = "unet"
    codec: Literal["exact", "starter"] = "exact"
    pretraining: str | None = None
    method: FinetuningMethod = field(default_factory=SupervisedMethod)

    @property
    def ssl(self) -> bool:
        """Whether the network starts from a pre-training."""
        return self.pretraining is not None

    @property
    def uses_unlabelled(self) -> bool:
        """Whether fine-tuning learns from the unlabelled pool too."""
        return self.method.uses_unlabelled


#: Pseudo-label self-training as the benchmarks run it: one round, the student trained for 15 epochs
#: of the labelled and pseudo-labelled images (several hundred optimiser steps each on PSFHS).
_PSEUDO = PseudoLabelMethod(student_epochs=15)

#: The variants, in table order.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("resnet_unet", "ResNet encoder U-Net (random init), exact codec", encoder="resnet"),
        Variant("unet_starter", "U-Net, no SSL, IUGC starter codec", codec="starter"),
        Variant("unet", "U-Net, no SSL, exact codec"),
        Variant("ssl_unet", "U-Net with two-stage SSL, exact codec", pretraining="moco"),
        Variant("ssl_unet_starter_codec", "U-Net with two-stage SSL, IUGC starter codec", codec="starter",
                pretraining="moco"),
        Variant("moco_flip_unet", "U-Net from MoCo v2 with flipped views", pretraining="moco_flip"),
        Variant("dense_unet", "U-Net from the DenseCL encoder", pretraining="dense"),
        Variant("dense_dec_unet", "U-Net with DenseCL-pre-trained encoder and decoder", pretraining="dense_dec"),
        Variant("recon_unet", "U-Net with encoder and decoder pre-trained by masked reconstruction",
                pretraining="recon"),
        Variant("semi_unet", "U-Net, no SSL, mean teacher on the unlabelled images, exact codec",
                method=MeanTeacherMethod()),
        Variant("ssl_semi_unet", "U-Net with SSL, mean teacher on the unlabelled images, exact codec",
                pretraining="moco", method=MeanTeacherMethod()),
        Variant("pseudo_unet", "U-Net, no SSL, pseudo-label self-training on the unlabelled images",
                method=_PSEUDO),
        Variant("pseudo2_unet", "U-Net, no SSL, pseudo-label self-training, two rounds",
                method=dataclasses.replace(_PSEUDO, rounds=2)),
        Variant("semi_pseudo_unet", "U-Net, no SSL, pseudo-labels from a mean teacher",
                method=dataclasses.replace(_PSEUDO, teacher=MeanTeacherMethod())),
        Variant("recon_pseudo_unet", "U-Net pre-trained by masked reconstruction, pseudo-label self-training",
                pretraining="recon", method=_PSEUDO),
    )
}

#: The variants the demo trains by default (every variant can be asked for by name).
DEMO_VARIANTS: tuple[str, ...] = ("resnet_unet", "unet_starter", "unet", "ssl_unet", "ssl_unet_starter_codec",
                                  "semi_unet", "ssl_semi_unet")


def get_variant(name: str | Variant) -> Variant:
    """The variant called ``name`` (a :class:`Variant` is returned as is).

    Raises:
        ValueError: For an unknown name (the valid names are listed).

    Examples:
        >>> get_variant("ssl_unet").ssl
        True
    """
    if isinstance(name, Variant):
        return name
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; expected one of {list(VARIANTS)}")
    return VARIANTS[name]


def get_pretraining(name: str | Pretraining) -> Pretraining:
    """The pre-training called ``name`` (a :class:`Pretraining` is returned as is).

    Raises:
        ValueError: For an unknown name (the valid names are listed).
    """
    if isinstance(name, Pretraining):
        return name
    if name not in PRETRAININGS:
        raise ValueError(f"unknown pre-training {name!r}; expected one of {list(PRETRAININGS)}")
    return PRETRAININGS[name]


def finetune_config(variant: Variant, profile: Profile, init_encoder: Path | None = None, seed: int = 0) -> FinetuneConfig:
    """The profile's fine-tuning config changed for ``variant``.

    ``init_encoder`` is the pre-trained weight file of its pre-training (the decoder is loaded
    from it too when the pre-training trains one).

    Examples:
        >>> from iugc_aop.profiles import get_profile
        >>> cfg = finetune_config(VARIANTS["resnet_unet"], get_profile("quick"))
        >>> cfg.encoder, cfg.encoder_kwargs, cfg.refine
        ('timm:resnet10t', {}, 'dark')
    """
    base = profile.finetune
    changes: dict[str, object] = {"seed": seed, "refine": "dark" if variant.codec == "exact" else "none",
                                  "method": variant.method}
    if variant.encoder == "resnet":
        changes.update(encoder=profile.resnet, encoder_kwargs={})
    if init_encoder is not None:
        changes["init_encoder"] = str(init_encoder)
        changes["init_decoder"] = variant.pretraining is not None and PRETRAININGS[variant.pretraining].trains_decoder
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def make_codec(variant: Variant, config: FinetuneConfig) -> KeypointCodec:
    """The codec a variant trains and decodes with, sized by ``config``.

    Examples:
        >>> from iugc_aop.profiles import get_profile
        >>> type(make_codec(VARIANTS["unet_starter"], get_profile("quick").finetune)).__name__
        'StarterCodec'
    """
    if variant.codec == "starter":
        return StarterCodec(config.input_size, config.heatmap_size, config.sigma)
    return config.codec()

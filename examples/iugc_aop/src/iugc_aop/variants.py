"""The model variants of the report (the rows of the paper's Table 2 on this data).

* ``resnet_unet`` — a timm ResNet encoder (randomly initialised: no weights can be downloaded) in
  the same :class:`~sslkeypoint.models.HeatmapUNet`, exact codec;
* ``unet_starter`` — the U-Net without SSL, trained and decoded with the IUGC starter's codec
  (:class:`iugc_aop.starter_codec.StarterCodec`: truncated Gaussian centres, argmax, ``x/W``
  scaling back to the original image);
* ``unet`` — the U-Net without SSL, exact codec (:class:`~sslkeypoint.heatmaps.HeatmapCodec`,
  DARK decoding);
* ``ssl_unet`` — the U-Net initialised from the stage-2 encoder, exact codec;
* ``ssl_unet_starter_codec`` — ``ssl_unet``'s recipe with the starter's codec;
* ``semi_unet`` — the U-Net without SSL, fine-tuned as a mean teacher
  (:mod:`sslkeypoint.lightning.semi`) on the labelled images and every unlabelled training image;
* ``ssl_semi_unet`` — both: the SSL encoder, fine-tuned as a mean teacher.

A variant is a small change of the profile's :class:`~sslkeypoint.configs.FinetuneConfig`
(:func:`finetune_config`) plus its codec (:func:`make_codec`); the codec is stored in every
checkpoint, so prediction and the challenge submission decode each variant as it was trained.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from iugc_aop.profiles import Profile
from iugc_aop.starter_codec import StarterCodec
from sslkeypoint.configs import FinetuneConfig
from sslkeypoint.heatmaps import KeypointCodec

__all__ = ["VARIANTS", "Variant", "finetune_config", "get_variant", "make_codec"]


@dataclass(frozen=True)
class Variant:
    """One row of the report.

    Attributes:
        name: Key in ``metrics.json`` and folder name.
        title: Human-readable description.
        encoder: ``"unet"`` (the profile's U-Net) or ``"resnet"`` (the profile's timm ResNet).
        ssl: Initialise the encoder from the stage-2 encoder.
        codec: ``"exact"`` (:class:`~sslkeypoint.heatmaps.HeatmapCodec`, DARK) or ``"starter"``
            (:class:`iugc_aop.starter_codec.StarterCodec`).
        semi: Fine-tune as a mean teacher on the unlabelled training images too
            (``FinetuneConfig(semi="mean_teacher")``).
    """

    name: str
    title: str
    encoder: Literal["unet", "resnet"]
    ssl: bool
    codec: Literal["exact", "starter"]
    semi: bool = False


#: The report's variants, in table order.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("resnet_unet", "ResNet encoder U-Net (random init), exact codec", "resnet", False, "exact"),
        Variant("unet_starter", "U-Net, no SSL, IUGC starter codec", "unet", False, "starter"),
        Variant("unet", "U-Net, no SSL, exact codec", "unet", False, "exact"),
        Variant("ssl_unet", "U-Net with two-stage SSL, exact codec", "unet", True, "exact"),
        Variant("ssl_unet_starter_codec", "U-Net with two-stage SSL, IUGC starter codec", "unet", True, "starter"),
        Variant("semi_unet", "U-Net, no SSL, mean teacher on the unlabelled images, exact codec", "unet", False,
                "exact", semi=True),
        Variant("ssl_semi_unet", "U-Net with SSL, mean teacher on the unlabelled images, exact codec", "unet", True,
                "exact", semi=True),
    )
}


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


def finetune_config(variant: Variant, profile: Profile, init_encoder: Path | None = None, seed: int = 0) -> FinetuneConfig:
    """The profile's fine-tuning config changed for ``variant``.

    Examples:
        >>> from iugc_aop.profiles import get_profile
        >>> cfg = finetune_config(VARIANTS["resnet_unet"], get_profile("quick"))
        >>> cfg.encoder, cfg.encoder_kwargs, cfg.refine
        ('timm:resnet10t', {}, 'dark')
    """
    base = profile.finetune
    changes: dict[str, object] = {"seed": seed, "refine": "dark" if variant.codec == "exact" else "none"}
    if variant.encoder == "resnet":
        changes.update(encoder=profile.resnet, encoder_kwargs={})
    if init_encoder is not None:
        changes["init_encoder"] = str(init_encoder)
    if variant.semi:
        changes["semi"] = "mean_teacher"
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

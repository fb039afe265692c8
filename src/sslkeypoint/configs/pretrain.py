"""What a pre-training stage learns: :class:`PretrainConfig` (the method, the network, the schedule)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sslkeypoint._utils import plain, size_pair
from sslkeypoint.configs._form import DictForm
from sslkeypoint.configs.legacy import upgrade_pretrain_dict
from sslkeypoint.methods import MoCoV2Method, PretrainingMethod, method_from_dict

__all__ = ["STAGE2_AUGMENT", "PretrainConfig"]

#: Lighter view augmentation for stage 2 (the two frames already differ by motion).
STAGE2_AUGMENT: dict[str, Any] = {"scale": (0.6, 1.0), "jitter": 0.2, "blur_p": 0.2}


@dataclass
class PretrainConfig(DictForm):
    """A pre-training stage; the defaults are the paper's stage 1 (MoCo v2).

    Use :meth:`stage1` / :meth:`stage2` for the paper's settings of each stage, with overrides. The
    method (:mod:`sslkeypoint.methods`: MoCo v2, DenseCL, masked reconstruction) says how the
    network learns; the other fields what it is and for how long.

    Attributes:
        stage: 1 (views of one image) or 2 (frame ``t`` vs frame ``t + Δ`` of a sequence).
        image_size: Network input ``(H, W)`` in px (an int means square); images are resized to it
            on loading and the random resized crop outputs it.
        in_chans: Input channels (1 for ultrasound).
        encoder: Name for :func:`~sslkeypoint.encoders.create_encoder` (``"unet"``, ``"timm:<name>"``).
        encoder_kwargs: Its keyword arguments besides ``in_chans`` (e.g. ``widths``).
        method: The pre-training method (:class:`~sslkeypoint.methods.MoCoV2Method`,
            :class:`~sslkeypoint.methods.DenseCLMethod`,
            :class:`~sslkeypoint.methods.ReconstructionMethod`, or its stored form).
        batch_size: Images (or frame pairs) per device per step.
        max_epochs: Epochs.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        plateau: Reduce the learning rate on a plateau of the epoch loss.
        plateau_factor: Factor of the reduction.
        plateau_patience: Epochs without improvement before a reduction.
        delta: Stage 2: inclusive range of the frame offset ``Δ``.
        augment: Keyword arguments of :func:`~sslkeypoint.augment.moco_v2_augmentation` (crop
            ``scale``, ``jitter``, ``blur_p``, ``hflip_p``, ...), the views of every method.
        seed: Seed of everything (weights, queue, shuffling, augmentation, masks).

    Examples:
        >>> c = PretrainConfig.stage2(batch_size=32)
        >>> c.stage, c.method.queue_size, c.lr, c.plateau, c.batch_size
        (2, 16384, 0.0001, True, 32)
    """

    stage: int = 1
    image_size: tuple[int, int] | int = (256, 256)
    in_chans: int = 1
    encoder: str = "unet"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    method: PretrainingMethod = field(default_factory=MoCoV2Method)
    batch_size: int = 64
    max_epochs: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-3
    plateau: bool = False
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    delta: tuple[int, int] = (1, 3)
    augment: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2; got {self.stage}")
        self.image_size = size_pair(self.image_size, "image_size")
        self.method = method_from_dict(self.method, PretrainingMethod)
        # Plain containers (lists, not tuples) so a config equals its JSON / checkpoint round trip.
        self.encoder_kwargs = plain(dict(self.encoder_kwargs))
        self.augment = plain(dict(self.augment))
        self.delta = (int(self.delta[0]), int(self.delta[1]))
        if not 1 <= self.delta[0] <= self.delta[1]:
            raise ValueError(f"delta must satisfy 1 <= min <= max; got {self.delta}")
        for name in ("batch_size", "max_epochs", "in_chans"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")

    @classmethod
    def stage1(cls, **overrides: Any) -> PretrainConfig:
        """The paper's stage 1: MoCo v2, AdamW 1e-3 / 1e-3, batch 64, 200 epochs, queue 65,536."""
        return cls(**{"stage": 1, **overrides})

    @classmethod
    def stage2(cls, **overrides: Any) -> PretrainConfig:
        """The paper's stage 2: MoCo v2 with a queue of 16,384, AdamW 1e-4 / 1e-4 + ReduceLROnPlateau,
        lighter views."""
        defaults: dict[str, Any] = {
            "stage": 2,
            "method": MoCoV2Method(queue_size=16384),
            "lr": 1e-4,
            "weight_decay": 1e-4,
            "plateau": True,
            "augment": dict(STAGE2_AUGMENT),
        }
        return cls(**{**defaults, **overrides})

    @classmethod
    def profile(cls, name: str, stage: int = 1, **overrides: Any) -> PretrainConfig:
        """A stage-1 or stage-2 config that starts from a named profile
        (:mod:`sslkeypoint.configs.profiles`): ``"cpu"`` or ``"paper"`` (:meth:`stage1` /
        :meth:`stage2`), with overrides.

        Examples:
            >>> c = PretrainConfig.profile("cpu", stage=2)
            >>> c.stage, c.image_size, c.plateau
            (2, (128, 128), True)
        """
        from sslkeypoint.configs.profiles import profile_defaults

        base = cls.stage2() if stage == 2 else cls.stage1()
        fields = profile_defaults(name, "pretrain_stage2" if stage == 2 else "pretrain")
        return cls.from_dict({**base.to_dict(), **fields, **overrides})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings, None); the method in its stored form.

        Examples:
            >>> from sslkeypoint.methods import DenseCLMethod
            >>> c = PretrainConfig(method=DenseCLMethod(weight=0.25))
            >>> PretrainConfig.from_dict(c.to_dict()) == c
            True
        """
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["method"] = self.method.to_dict()
        return plain(data)

    @classmethod
    def upgrade(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """A stored config of sslkeypoint 0.6 or earlier (flat MoCo / DenseCL fields) in this form
        (:func:`~sslkeypoint.configs.legacy.upgrade_pretrain_dict`)."""
        return upgrade_pretrain_dict(data)

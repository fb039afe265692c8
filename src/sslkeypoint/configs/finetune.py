"""What heatmap fine-tuning learns: :class:`FinetuneConfig` (the network, codec, method and schedule)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sslkeypoint._utils import plain, size_pair
from sslkeypoint.configs._form import DictForm, tuple_or_none
from sslkeypoint.configs.legacy import upgrade_finetune_dict
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.measures import Measure, measures_from_dict, measures_to_dict, validate_measures
from sslkeypoint.methods import FinetuningMethod, SupervisedMethod, method_from_dict

__all__ = ["FinetuneConfig"]


@dataclass
class FinetuneConfig(DictForm):
    """Heatmap fine-tuning; the defaults are the paper's stage 3.

    The paper fixes the input and heatmap sizes, σ, the MSE loss, Adam with lr 1e-5, batch 8, up
    to 1000 epochs, early stopping, learning-rate reduction on plateau and the 8:2 split; it does
    not give the patience values or the reduction factor, so ``early_stopping_patience=50``,
    ``lr_factor=0.1``, ``lr_patience=20`` are this library's choices.

    Attributes:
        input_size: Network input ``(H, W)`` in pixels; images are resized to it.
        heatmap_size: Heatmap ``(h, w)``; ``input_size / heatmap_size`` is the model's heatmap
            stride (the same integer for rows and columns).
        sigma: Gaussian σ of the targets, in heatmap pixels.
        in_chans: Image channels given to the encoder (1 for grayscale ultrasound).
        num_keypoints: Number of landmarks ``K``.
        keypoint_names: Optional ``K`` names (used in logs, metrics and predictions).
        measures: Named measures scored on the validation set and reported by predictions, e.g.
            ``{"aop": AngleMeasure(vertex=0, first=1, second=2)}`` (see :mod:`sslkeypoint.measures`).
        encoder: :func:`~sslkeypoint.encoders.create_encoder` name (``"unet"``, ``"timm:<name>"``).
        encoder_kwargs: Keyword arguments of the encoder (``widths``, ``bottleneck_width``, ...);
            ``in_chans`` is taken from :attr:`in_chans`.
        init_encoder: Weight file (``encoder.safetensors`` from pre-training, or a Lightning /
            torch checkpoint) loaded into the encoder with
            :func:`~sslkeypoint.weights.load_partial_state_dict` before training; ``None`` for
            random initialisation.
        init_strip_prefix: Prefixes stripped from the checkpoint's keys, tried in order.
        loss: ``"mse"`` (the paper: mean over all heatmaps, invisible ones with all-zero
            targets) or ``"masked_mse"`` (only visible landmarks' heatmaps).
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        batch_size: Training and validation batch size (per process).
        max_epochs: Upper bound on epochs.
        early_stopping_patience: Validation epochs without improvement of ``val/mre_px`` before
            stopping.
        lr_factor: ``ReduceLROnPlateau`` factor.
        lr_patience: ``ReduceLROnPlateau`` patience in validation epochs.
        min_lr: Lower bound of the learning rate.
        val_fraction: Fraction of records held out for validation when no explicit split is
            given.
        seed: Seed of the split, the model initialisation, the shuffling and the augmentation.
        augment: Apply :func:`~sslkeypoint.augment.keypoint_augmentation` to training batches
            (off in the paper's description).
        augment_kwargs: Its arguments (rotation, translate, scale, brightness, contrast, ...).
        refine: Heatmap decoding of the default codec: ``"dark"``, ``"quarter"``, ``"none"``.
        blur_kernel: Optional odd smoothing kernel of the default codec's decoding.
        pixel_spacing: Optional mm per pixel to also report errors in mm.
        init_decoder: Also initialise the decoder from :attr:`init_encoder`'s file: its
            ``decoder.*`` tensors (the ``unet.safetensors`` of a pre-training run with
            ``dense_level="decoder"``, or a heatmap-model checkpoint) are loaded into the decoder
            by name and shape (:meth:`HeatmapFinetuneModule.init_decoder_from
            <sslkeypoint.lightning.HeatmapFinetuneModule.init_decoder_from>`); a file without
            them is an error. Needs ``init_encoder``.
        method: The fine-tuning method (:mod:`sslkeypoint.methods`):
            :class:`~sslkeypoint.methods.SupervisedMethod` (default),
            :class:`~sslkeypoint.methods.MeanTeacherMethod` or
            :class:`~sslkeypoint.methods.PseudoLabelMethod` (which learn from the ``unlabelled``
            pool of :func:`~sslkeypoint.run_finetuning` too), or its stored form.

    Examples:
        >>> from sslkeypoint.methods import MeanTeacherMethod
        >>> FinetuneConfig(method=MeanTeacherMethod()).method.uses_unlabelled
        True
    """

    input_size: tuple[int, int] = (256, 256)
    heatmap_size: tuple[int, int] = (64, 64)
    sigma: float = 2.0
    in_chans: int = 1
    num_keypoints: int = 3
    keypoint_names: tuple[str, ...] | None = None
    measures: dict[str, Measure] = field(default_factory=dict)
    encoder: str = "unet"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    init_encoder: str | None = None
    init_strip_prefix: tuple[str, ...] = ("model.", "module.", "backbone.", "encoder.")
    loss: Literal["mse", "masked_mse"] = "mse"
    lr: float = 1e-5
    weight_decay: float = 0.0
    batch_size: int = 8
    max_epochs: int = 1000
    early_stopping_patience: int = 50
    lr_factor: float = 0.1
    lr_patience: int = 20
    min_lr: float = 1e-8
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = False
    augment_kwargs: dict[str, Any] = field(
        default_factory=lambda: {
            "rotation": 10.0,
            "translate": 0.05,
            "scale": [0.9, 1.1],
            "brightness": 0.2,
            "contrast": 0.2,
        }
    )
    refine: Literal["dark", "quarter", "none"] = "dark"
    blur_kernel: int | None = None
    pixel_spacing: float | None = None
    init_decoder: bool = False
    method: FinetuningMethod = field(default_factory=SupervisedMethod)

    def __post_init__(self) -> None:
        self.input_size = size_pair(self.input_size, "input_size")
        self.heatmap_size = size_pair(self.heatmap_size, "heatmap_size")
        self.keypoint_names = tuple_or_none(self.keypoint_names, str)
        self.init_strip_prefix = tuple(str(p) for p in self.init_strip_prefix)
        # Plain containers (lists, not tuples) so a config equals its JSON / checkpoint round trip.
        self.encoder_kwargs = plain(dict(self.encoder_kwargs))
        self.augment_kwargs = plain(dict(self.augment_kwargs))
        if self.init_encoder is not None:
            self.init_encoder = str(self.init_encoder)
        if min(self.input_size) < 1 or min(self.heatmap_size) < 3:
            raise ValueError(
                f"input_size must be positive and heatmap_size at least (3, 3); got "
                f"input_size={self.input_size}, heatmap_size={self.heatmap_size}"
            )
        sy, ry = divmod(self.input_size[0], self.heatmap_size[0])
        sx, rx = divmod(self.input_size[1], self.heatmap_size[1])
        if ry or rx or sy != sx:
            raise ValueError(
                "input_size must be the same integer multiple of heatmap_size along both axes; got "
                f"input_size={self.input_size}, heatmap_size={self.heatmap_size}"
            )
        if self.num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1; got {self.num_keypoints}")
        if self.keypoint_names is not None and len(self.keypoint_names) != self.num_keypoints:
            raise ValueError(
                f"keypoint_names must have num_keypoints={self.num_keypoints} entries; got "
                f"{len(self.keypoint_names)}: {self.keypoint_names}"
            )
        self.measures = validate_measures(measures_from_dict(self.measures), self.num_keypoints)
        if self.loss not in ("mse", "masked_mse"):
            raise ValueError(f"loss must be 'mse' or 'masked_mse'; got {self.loss!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1); got {self.val_fraction}")
        if self.batch_size < 1 or self.max_epochs < 1 or self.lr <= 0:
            raise ValueError(
                f"batch_size and max_epochs must be >= 1 and lr > 0; got batch_size={self.batch_size}, "
                f"max_epochs={self.max_epochs}, lr={self.lr}"
            )
        if self.init_decoder and self.init_encoder is None:
            raise ValueError(
                "init_decoder=True loads the decoder from the init_encoder file (a unet.safetensors); "
                "set init_encoder too"
            )
        self.codec()  # validates sigma, refine and blur_kernel
        self.method = method_from_dict(self.method, FinetuningMethod)

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> FinetuneConfig:
        """A config that starts from a named profile (:mod:`sslkeypoint.configs.profiles`): ``"cpu"``
        (trains in minutes on a CPU) or ``"paper"`` (these defaults), with overrides.

        Examples:
            >>> FinetuneConfig.profile("cpu", num_keypoints=4).input_size
            (128, 128)
        """
        from sslkeypoint.configs.profiles import profile_defaults

        return cls.from_dict({**profile_defaults(name, "finetune"), **overrides})

    @property
    def heatmap_stride(self) -> int:
        """Input pixels per heatmap pixel."""
        return self.input_size[0] // self.heatmap_size[0]

    def codec(self) -> HeatmapCodec:
        """The :class:`~sslkeypoint.heatmaps.HeatmapCodec` of this configuration."""
        return HeatmapCodec(self.input_size, self.heatmap_size, self.sigma, self.refine, self.blur_kernel)  # type: ignore[arg-type]

    def model_spec(self) -> dict[str, Any]:
        """Plain description of the network for :func:`~sslkeypoint.models.build_heatmap_model`."""
        return {
            "encoder": self.encoder,
            "encoder_kwargs": plain(self.encoder_kwargs),
            "in_chans": self.in_chans,
            "num_keypoints": self.num_keypoints,
            "heatmap_stride": self.heatmap_stride,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, numbers, strings, None); measures in their stored form.

        Examples:
            >>> from sslkeypoint.measures import AngleMeasure
            >>> c = FinetuneConfig(measures={"aop": AngleMeasure(0, 1, 2)})
            >>> FinetuneConfig.from_dict(c.to_dict()) == c
            True
        """
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["measures"] = measures_to_dict(self.measures)
        data["method"] = self.method.to_dict()
        return plain(data)

    def run_settings(self) -> dict[str, Any]:
        """The settings a run folder (or a cached stage) is identified by: :meth:`to_dict`.

        Every field changes what a run learns; a method's own settings are inside ``method``.

        Examples:
            >>> "method" in FinetuneConfig().run_settings()
            True
        """
        return self.to_dict()

    @classmethod
    def upgrade(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """A stored config of sslkeypoint 0.6 or earlier (the flat ``semi`` fields) in this form
        (:func:`~sslkeypoint.configs.legacy.upgrade_finetune_dict`)."""
        return upgrade_finetune_dict(data)

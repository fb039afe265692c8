"""What every training method shares: a frozen dataclass, stored by its class path.

A method is a small typed config that says *how* a stage learns, apart from *what* it trains (the
network, input size, schedule of :mod:`sslkeypoint.configs`). It builds the pure-torch parts of the
method (:mod:`sslkeypoint.ssl`), which the LightningModules compose. Two kinds:

* :class:`PretrainingMethod` — learns an encoder (or a whole U-Net) from unlabelled images;
  :meth:`PretrainingMethod.build` returns a :class:`~sslkeypoint.ssl.PretrainObjective`.
* :class:`FinetuningMethod` — learns the heatmap network from labelled images, and possibly from
  unlabelled ones; :meth:`FinetuningMethod.build` returns a :class:`~sslkeypoint.ssl.FinetuneObjective`.

Methods are stored as ``{"class": "<module>.<Class>", "kwargs": {...}}`` (plain types, the form of
codecs and measures), so a method of the user's own round-trips as well as the library's:
:meth:`Method.to_dict` and :func:`method_from_dict`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from sslkeypoint._utils import dataclass_from_spec, dataclass_to_spec

__all__ = ["FinetuningMethod", "Method", "PretrainingMethod", "method_from_dict"]

M = TypeVar("M", bound="Method")


@dataclasses.dataclass(frozen=True)
class Method:
    """Base of every training method: frozen, compared by value, stored by class path.

    Attributes:
        name: Short name of the method (class attribute), used in logs, summaries and tables.
    """

    name: ClassVar[str] = "method"

    def to_dict(self) -> dict[str, Any]:
        """``{"class": ..., "kwargs": {...}}`` in plain types (what :func:`method_from_dict` reads)."""
        return dataclass_to_spec(self)

    def describe(self) -> str:
        """The name and the fields that differ from the defaults, e.g. ``mean_teacher(weight=2.0)``.

        Examples:
            >>> from sslkeypoint.methods import MeanTeacherMethod
            >>> MeanTeacherMethod(weight=2.0).describe()
            'mean_teacher(weight=2.0)'
        """
        changed = []
        for f in dataclasses.fields(self):
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
            value = getattr(self, f.name)
            if value != default:
                shown = value.describe() if isinstance(value, Method) else repr(value)
                changed.append(f"{f.name}={shown}")
        return f"{self.name}({', '.join(changed)})"


@dataclasses.dataclass(frozen=True)
class PretrainingMethod(Method):
    """Base of the pre-training methods (:mod:`sslkeypoint.methods.pretraining`).

    Attributes:
        num_views: Views of each training item the objective takes (class attribute): 2 for
            contrastive methods (two augmentations of an image, or two frames of a sequence), 1 for
            reconstruction.
    """

    num_views: ClassVar[int] = 2

    def build(self, encoder: Any, *, image_size: tuple[int, int], num_items: int | None = None,
              global_batch: int | None = None) -> Any:
        """The method's :class:`~sslkeypoint.ssl.PretrainObjective` around ``encoder``.

        Args:
            encoder: The encoder to pre-train (an sslkeypoint encoder).
            image_size: Network input ``(H, W)`` in px.
            num_items: Training items (images or frame pairs), for sizes chosen from the data
                (e.g. a capped queue); ``None`` when unknown.
            global_batch: Items per optimiser step over every process; ``None`` when unknown.
        """
        raise NotImplementedError

    def resolved(self, num_items: int, global_batch: int) -> PretrainingMethod:
        """This method with the sizes it chooses from the data fixed (default: itself)."""
        return self


@dataclasses.dataclass(frozen=True)
class FinetuningMethod(Method):
    """Base of the fine-tuning methods (:mod:`sslkeypoint.methods.finetuning`).

    Attributes:
        uses_unlabelled: Whether the method learns from a pool of unlabelled images (class
            attribute); :func:`~sslkeypoint.recipes.run_finetuning` then needs ``unlabelled``.
    """

    uses_unlabelled: ClassVar[bool] = False

    def batch_of_unlabelled(self, labelled_batch: int) -> int:
        """Unlabelled images per training batch of a method that takes them batch by batch (default:
        as many as labelled images)."""
        return int(labelled_batch)

    def build(self, model: Any, *, heatmap_stride: int, augment_kwargs: Mapping[str, Any]) -> Any:
        """The method's :class:`~sslkeypoint.ssl.FinetuneObjective` for the heatmap network ``model``.

        Args:
            model: The heatmap network being fine-tuned.
            heatmap_stride: Input pixels per heatmap pixel.
            augment_kwargs: The fine-tuning config's keypoint augmentation arguments.
        """
        raise NotImplementedError


def method_from_dict(data: Any, base: type[M]) -> M:
    """A method from its stored form (:meth:`Method.to_dict`); a ``base`` instance is returned as is.

    Args:
        data: A method, or its ``{"class", "kwargs"}`` form.
        base: The kind of method expected (:class:`PretrainingMethod` or :class:`FinetuningMethod`).

    Raises:
        ValueError: If the class cannot be imported or built, or is not a ``base``.

    Examples:
        >>> from sslkeypoint.methods import MeanTeacherMethod
        >>> method_from_dict(MeanTeacherMethod(weight=2.0).to_dict(), FinetuningMethod)
        MeanTeacherMethod(weight=2.0, rampup_steps=200, ema_decay=None, confidence=0.0, unlabelled_batch_size=None, eval_teacher=True)
        >>> method_from_dict({"class": "sslkeypoint.methods.MeanTeacherMethod"}, PretrainingMethod)
        Traceback (most recent call last):
        ...
        ValueError: sslkeypoint.methods.MeanTeacherMethod is a FinetuningMethod, not a PretrainingMethod
    """
    if isinstance(data, base):
        return data
    if isinstance(data, Method):
        raise ValueError(f"{type(data).__name__} is not a {base.__name__}")
    if not isinstance(data, Mapping):
        raise ValueError(
            f"a {base.__name__} is given as a method object or its stored form {{'class': ..., 'kwargs': {{...}}}}; "
            f"got {data!r}"
        )
    method = dataclass_from_spec(data, base.__name__)
    if not isinstance(method, base):
        kind = next((k.__name__ for k in (PretrainingMethod, FinetuningMethod) if isinstance(method, k)), "method")
        raise ValueError(f"{data['class']} is a {kind}, not a {base.__name__}")
    return method

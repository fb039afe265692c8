"""The interfaces of a built training method: what the LightningModules call, in pure torch.

A :class:`~sslkeypoint.methods.PretrainingMethod` builds a :class:`PretrainObjective` and a
:class:`~sslkeypoint.methods.FinetuningMethod` a :class:`FinetuneObjective`. The LightningModules
(:mod:`sslkeypoint.lightning`) own the loop, the randomness, logging and checkpoints; an objective
owns the method's networks (momentum encoders, queues, a teacher) and its losses, and knows nothing
of Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from torch import Tensor, nn

__all__ = ["FinetuneObjective", "PretrainObjective"]


class PretrainObjective(nn.Module):
    """A pre-training method's networks and loss.

    Subclasses set :attr:`num_views` and implement :meth:`step_losses` and :meth:`export_encoder`;
    they own ``encoder`` (the network that fine-tuning starts from).

    Attributes:
        num_views: Views of each training item :meth:`step_losses` takes (class attribute).
        seeded_draws: Whether :meth:`step_losses` draws random numbers that a resumed run must draw
            again (class attribute): the LightningModule then seeds them from the run's seed, the
            process and the step.
        encoder: The encoder being pre-trained.
    """

    num_views: ClassVar[int] = 2
    seeded_draws: ClassVar[bool] = False
    encoder: nn.Module

    def step_losses(self, views: Sequence[Tensor], groups: Tensor | None = None) -> dict[str, Tensor]:
        """The step's loss: ``{"loss": total, <term>: value, ...}`` (scalars; ``"loss"`` is minimised).

        Args:
            views: :attr:`num_views` batches ``(B, C, H, W)`` of augmented views, item ``i`` of each
                from the same training item.
            groups: Optional ``(B,)`` integer ids of the items' sources (image or sequence).
        """
        raise NotImplementedError

    def step_start(self, step: int, total_steps: int) -> dict[str, float]:
        """Called before every optimiser step (e.g. a momentum update); returns scalars to log."""
        return {}

    def export_encoder(self) -> dict[str, Tensor]:
        """The encoder's weights, encoder-relative keys (detached copies)."""
        return {name: t.detach().clone() for name, t in self.encoder.state_dict().items()}

    @property
    def trains_decoder(self) -> bool:
        """Whether the method trains a decoder too (then :meth:`export_unet` has it)."""
        return False

    def export_unet(self) -> dict[str, Tensor]:
        """Encoder and decoder weights named as in :class:`~sslkeypoint.models.HeatmapUNet`
        (``encoder.*``, ``decoder.*``).

        Raises:
            ValueError: If the method trains no decoder (:attr:`trains_decoder`).
        """
        raise ValueError(f"{type(self).__name__} trains no decoder: there is no U-Net to export")

    @property
    def queue_size(self) -> int:
        """Negatives of a contrastive method's queue (0 without a queue)."""
        return 0


class FinetuneObjective(nn.Module):
    """What a fine-tuning method adds to the supervised heatmap loss; by itself, nothing.

    The base class is supervised fine-tuning. A method that learns from unlabelled images sets
    :attr:`uses_unlabelled` and implements :meth:`unlabelled_loss`; one that keeps a second
    network (a teacher) updates it in :meth:`after_step` and may predict with it
    (:meth:`predicting_network`).

    Attributes:
        uses_unlabelled: Whether training batches need unlabelled images (class attribute).
    """

    uses_unlabelled: ClassVar[bool] = False

    def reset(self, network: nn.Module) -> None:
        """Called when the network's weights were replaced (loaded) before training."""

    def unlabelled_loss(self, network: nn.Module, images: Tensor, step: int,
                        total_steps: int) -> tuple[Tensor, dict[str, Tensor | float]]:
        """The weighted loss of a batch of unlabelled images ``(B_u, C, H, W)`` and scalars to log.

        Args:
            network: The network being trained.
            images: Unlabelled images in ``[0, 1]``.
            step: Optimiser steps taken.
            total_steps: Planned optimiser steps of the run.
        """
        raise NotImplementedError(f"{type(self).__name__} does not learn from unlabelled images")

    def after_step(self, network: nn.Module, step: int, total_steps: int) -> None:
        """Called after every optimiser step."""

    def predicting_network(self, network: nn.Module) -> nn.Module:
        """The network that validation scores and checkpoints store as the model (default: ``network``)."""
        return network

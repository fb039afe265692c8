"""Self-supervised pre-training (stages 1 and 2 of SSL-FetalBioNet) as a LightningModule.

The module runs any pre-training method (:mod:`sslkeypoint.methods`): it builds the method's
objective (:class:`~sslkeypoint.ssl.PretrainObjective`: MoCo v2, DenseCL, masked reconstruction)
around the config's encoder and feeds it augmented views.

Stage 1: views of single unlabelled images; for a contrastive method the two views are two MoCo v2
augmentations (random resized crop, colour jitter, grayscale for RGB, Gaussian blur, horizontal
flip) of the same image. Stage 2: pairs of temporally adjacent frames (``t`` and ``t + Δ``) of
"gold standard" sequences (see :mod:`sslkeypoint.ssl.screening`), initialised from stage 1; each
frame gets a lighter augmentation, and for MoCo v2 queue entries from the query's own sequence are
left out of its negatives. A method of one view (reconstruction) takes the first of them.

A frame that cannot be read is dropped from its batch by the data pipeline
(:class:`~sslkeypoint.data.PretrainDataModule`: :class:`~sslkeypoint.data.InvalidSample` markers,
:class:`~sslkeypoint.data.FilteringCollate`); the module counts it with its path and reason
(``drops``), warns once per file, and fills the batch back to its size with its readable images.

Augmentation is batched on the training device inside :meth:`PretrainModule.training_step`; the
objective's :meth:`~sslkeypoint.ssl.PretrainObjective.step_start` runs before every optimiser step
(MoCo's key momentum: constant, or lightly's ``cosine_schedule`` from ``momentum`` to
``momentum_end`` over the run; ``momentum=None`` chooses the start from the run's length,
:func:`~sslkeypoint.ssl.auto_momentum`). Checkpoints hold the full state — the objective's networks
(encoders, heads, decoders, queues), optimizer and scheduler — and, under ``"sslkeypoint"``, the
library version, the config and a fingerprint of the data.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from sslkeypoint._utils import size_pair
from sslkeypoint._version import __version__
from sslkeypoint.augment import moco_v2_augmentation
from sslkeypoint.configs import PretrainConfig
from sslkeypoint.data.invalid import DropCounts, without_drops
from sslkeypoint.encoders import create_encoder
from sslkeypoint.lightning.steps import planned_steps
from sslkeypoint.losses import GroupMemoryBank
from sslkeypoint.methods import MoCoV2Method
from sslkeypoint.ssl import PretrainObjective
from sslkeypoint.ssl.densecl import DenseCL
from sslkeypoint.weights import read_weight_file

__all__ = ["MoCoPretrainModule", "PretrainModule"]


def _queue_state_keys(model: torch.nn.Module) -> frozenset[str]:
    """``state_dict()`` keys of every queue (:class:`~sslkeypoint.losses.GroupMemoryBank`) in ``model``."""
    return frozenset(
        f"{name}.{key}" if name else key
        for name, module in model.named_modules()
        if isinstance(module, GroupMemoryBank)
        for key in module.state_dict()
    )


def _statistics_buffers(model: torch.nn.Module) -> dict[str, Tensor]:
    """Every buffer of ``model`` outside its queues: the normalisation layers' running statistics."""
    queues = tuple(f"{name}." for name, module in model.named_modules() if isinstance(module, GroupMemoryBank))
    return {name: buffer for name, buffer in model.named_buffers() if not name.startswith(queues)}


def _fill_batch(data: Mapping[str, Any], size: int) -> dict[str, Any]:
    """The batch's tensors with their first dimension filled up to ``size`` by repeating its items.

    Item ``i`` of the result is item ``i mod n`` of the ``n`` given, so a batch that lost some of its
    items to unreadable files has its usual size again; other entries are kept as they are.

    Examples:
        >>> import torch
        >>> out = _fill_batch({"image": torch.arange(2.0)[:, None], "index": torch.tensor([4, 7])}, 5)
        >>> out["index"].tolist()
        [4, 7, 4, 7, 4]
    """
    tensors = {k: v for k, v in data.items() if isinstance(v, Tensor) and v.ndim >= 1}
    n = next(iter(tensors.values())).shape[0]
    if n >= size:
        return dict(data)
    take = torch.arange(size) % n
    return {k: v.index_select(0, take.to(v.device)) if k in tensors else v for k, v in data.items()}


#: Distinguishes the random state of an objective's own draws from that of the step's views.
_DRAWS_SALT = 0x5DEECE66D


def _step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one optimisation step's augmentation on one process (distinct for each pair)."""
    return (((seed * 1_000_003 + rank) << 32) + step) % (1 << 63)


def _dense_part(name: str) -> bool:
    """Whether a model ``state_dict()`` key belongs to a part only DenseCL has."""
    return name.split(".", 1)[0] in DenseCL.DENSE_PARTS


def _same_shape(a: Any, b: Any) -> bool:
    return isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape


class PretrainModule(pl.LightningModule):
    """LightningModule for every pre-training method and both stages: device-side augmentation, loss.

    Batches: the dicts of :class:`~sslkeypoint.lightning.PretrainDataModule` (stage 1 ``{"image",
    "index"}``, stage 2 ``{"image", "partner", "sequence"}``, with the drop entries of
    :class:`~sslkeypoint.data.FilteringCollate`), or plain stage 1 ``images (B, C, H, W)`` /
    ``(images, image_index (B,))`` and stage 2 ``(frame_t, frame_t_plus_delta, sequence_index
    (B,))``. The indices are the items' sources, given to the objective (MoCo v2 keeps queue
    entries of the query's own image or sequence out of its negatives).

    Unreadable files dropped from a batch are counted in :attr:`drops` (path and reason) with one
    warning per file; the batch is filled back to its size (``"num_samples"``) by repeating its
    readable items, so every step and every DDP process runs on full batches. A batch with no
    readable item is skipped in a single process; under DDP it stops the run with an error naming
    the files (the processes must run the same steps).

    Args:
        config: The run's :class:`~sslkeypoint.configs.PretrainConfig` (or its dict form, as stored in
            checkpoints).
        queue_size: A queue size that replaces the method's (a contrastive method's, after capping;
            checkpoints of sslkeypoint 0.6 stored it so); ``None`` keeps the method's.
        data_fingerprint: Fingerprint of the training data, stored in checkpoints.

    Attributes:
        config: The config.
        model: The objective the method built (:class:`~sslkeypoint.ssl.MoCoV2`,
            :class:`~sslkeypoint.ssl.DenseCL`, :class:`~sslkeypoint.ssl.MaskedReconstruction`, ...);
            its loss terms besides the total are logged as ``train_loss_<term>`` (DenseCL's
            ``train_loss_global`` and ``train_loss_dense``).
        augment: The view augmentation.
        drops: Samples seen and dropped in this process since the module was built, by reason,
            with the dropped files (:class:`~sslkeypoint.data.DropCounts`).
        drop_history: Per-epoch drop counts over every process, written by
            :class:`~sslkeypoint.lightning.callbacks.DropReport` when it is among the callbacks.
    """

    def __init__(
        self,
        config: PretrainConfig | Mapping[str, Any],
        queue_size: int | None = None,
        data_fingerprint: str | None = None,
    ) -> None:
        super().__init__()
        cfg = PretrainConfig.from_dict(dict(config)) if isinstance(config, Mapping) else config
        if queue_size is not None and isinstance(cfg.method, MoCoV2Method):
            cfg = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, queue_size=int(queue_size),
                                                                      cap_queue=False))
        self.config = cfg
        self.data_fingerprint = data_fingerprint
        self.save_hyperparameters({"config": cfg.to_dict(), "data_fingerprint": data_fingerprint})
        encoder = create_encoder(cfg.encoder, in_chans=cfg.in_chans, **cfg.encoder_kwargs)
        size = size_pair(cfg.image_size, "image_size")
        self.model: PretrainObjective = cfg.method.build(encoder, image_size=size)
        self.augment = moco_v2_augmentation(cfg.image_size, in_chans=cfg.in_chans, **cfg.augment)
        self.drops = DropCounts()
        self.drop_history: list[dict[str, Any]] = []
        self._warned: set[str] = set()

    def momentum_at(self, step: int) -> float:
        """A contrastive method's key momentum at optimiser step ``step`` of the planned run.

        The objective's ``momentum_at`` (:meth:`MoCoV2.momentum_at <sslkeypoint.ssl.MoCoV2.momentum_at>`)
        with the run's length: the attached Trainer's ``estimated_stepping_batches``; without a
        Trainer the run is taken as one step long.

        Raises:
            AttributeError: For a method without a momentum encoder.

        Examples:
            >>> from sslkeypoint.configs import PretrainConfig
            >>> from sslkeypoint.methods import MoCoV2Method
            >>> cfg = PretrainConfig(image_size=32, encoder_kwargs={"widths": [8, 16]},
            ...                      method=MoCoV2Method(queue_size=8))
            >>> PretrainModule(cfg).momentum_at(0)  # no Trainer: a one-step run
            0.99
        """
        return float(self.model.momentum_at(step, planned_steps(self)))  # type: ignore[operator]

    def _views(self, batch: Any) -> tuple[list[Tensor], Tensor | None]:
        """The objective's views and the items' groups (sources) of a batch, augmented on its device.

        The augmentation draws from a random state seeded by ``(config.seed, process rank,
        global step)`` alone: every DDP process draws its own views (one seed on every process
        would give image ``i`` of each process's batch the same crop, jitter and flip), and a
        step's views do not depend on what ran before it (a resumed run draws them again).
        """
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_step_seed(self.config.seed, self.global_rank, self.global_step))
            return self._augmented(batch)

    def _augmented(self, batch: Any) -> tuple[list[Tensor], Tensor | None]:
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            if isinstance(batch, Mapping):
                missing = [k for k in ("image", "index" if self.config.stage == 1 else "partner") if k not in batch]
                if missing:
                    raise ValueError(f"a stage-{self.config.stage} batch needs the entries {missing}; got {sorted(batch)}")
                groups = batch.get("index" if self.config.stage == 1 else "sequence")
                first = batch["image"].float()
                second = first if self.config.stage == 1 else batch["partner"].float()
            elif self.config.stage == 1:
                first, groups = (batch, None) if isinstance(batch, Tensor) else (batch[0], batch[1])
                first = second = first.float()
            else:
                first, second, groups = batch[0].float(), batch[1].float(), batch[2]
            sources = (first, second)
            return [self.augment(sources[i % 2]) for i in range(self.model.num_views)], groups

    def on_train_epoch_start(self) -> None:
        """Tell a dataset with ``set_epoch`` (``TemporalPairDataset``) the epoch, for new offsets."""
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if dataset is not None and hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def _readable(self, batch: Mapping[str, Any]) -> dict[str, Any] | None:
        """Count and report the batch's dropped files; its readable items filled to full size."""
        self.drops.update(batch)
        for path, reason, detail in batch.get("dropped", []):
            if path not in self._warned:
                self._warned.add(path)
                warnings.warn(f"pre-training skips {path}: {reason}" + (f" ({detail})" if detail else ""),
                              UserWarning, stacklevel=2)
        data = without_drops(batch)
        if data is None:
            if self._world_size() > 1:
                names = ", ".join(p for p, _, _ in batch.get("dropped", []))
                raise RuntimeError(
                    f"no file of a training batch could be read ({names}); with several processes the "
                    "step cannot be skipped: remove or repair the files (inspect the data first)"
                )
            return None
        return _fill_batch(data, int(batch.get("num_samples", 0)))

    def _world_size(self) -> int:
        try:
            return int(self.trainer.world_size)
        except RuntimeError:  # no Trainer attached
            return 1

    def _loss(self, views: list[Tensor], groups: Tensor | None) -> Tensor:
        """The objective's loss on the views; its other terms are logged as ``train_loss_<term>``.

        An objective with :attr:`~sslkeypoint.ssl.PretrainObjective.seeded_draws` (DenseCL's key
        shuffle and sampled locations, reconstruction's masks) draws from a random state seeded by
        ``(config.seed, process rank, global step)``, like the views, so a resumed run repeats it
        exactly; MoCo v2 draws its key shuffle from the global random state.
        """
        if not self.model.seeded_draws:
            return self.model.step_losses(views, groups)["loss"]
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_step_seed(self.config.seed, self.global_rank, self.global_step) ^ _DRAWS_SALT)
            terms = self.model.step_losses(views, groups)
        for name, value in terms.items():
            if name != "loss":
                self.log(f"train_loss_{name}", value.detach(), on_step=True, on_epoch=True, sync_dist=True,
                         batch_size=views[0].shape[0])
        return terms["loss"]

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        """One step: the objective's step start (MoCo's momentum), augmented views, loss (logged).

        A batch without a readable item (all its files dropped) is skipped: ``None``, no step.
        """
        if isinstance(batch, Mapping):
            batch = self._readable(batch)
            if batch is None:
                return None
        for name, value in self.model.step_start(int(self.global_step), planned_steps(self)).items():
            self.log(name, value, on_step=True, on_epoch=False)
        views, groups = self._views(batch)
        loss = self._loss(views, groups)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True,
                 batch_size=views[0].shape[0])
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def on_train_end(self) -> None:
        """Give every process the running statistics of process 0, the ones its checkpoints hold.

        The recipe runs DDP without per-step buffer broadcast (the queue is identical everywhere
        already), so batch-norm running statistics are updated from each process's own batches
        and part ways; parameters and queue stay identical through gradient averaging and the
        gathered enqueue. After training every process holds process 0's statistics, as with
        DDP's default buffer broadcast, so the module returned on every process is the saved one.
        """
        if self.trainer.world_size <= 1:
            return
        local = _statistics_buffers(self.model)
        shared = self.trainer.strategy.broadcast({k: v.detach().cpu() for k, v in local.items()}, src=0)
        with torch.no_grad():
            for name, buffer in local.items():
                buffer.copy_(shared[name])

    def configure_optimizers(self) -> Any:
        """AdamW on the query side; ReduceLROnPlateau on ``train_loss_epoch`` when configured."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.config.lr, weight_decay=self.config.weight_decay)
        if not self.config.plateau:
            return opt
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.config.plateau_factor, patience=self.config.plateau_patience
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "monitor": "train_loss_epoch", "interval": "epoch"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add provenance: library versions, config (the method as used), data fingerprint, queue size."""
        import lightly

        checkpoint["sslkeypoint"] = {
            "version": __version__,
            "lightly_version": str(lightly.__version__),
            "torch_version": str(torch.__version__),
            "stage": self.config.stage,
            "config": self.config.to_dict(),
            "data_fingerprint": self.data_fingerprint,
            "queue_size": self.model.queue_size,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Warn when resuming on data whose fingerprint differs from the checkpoint's."""
        saved = checkpoint.get("sslkeypoint", {}).get("data_fingerprint")
        if saved and self.data_fingerprint and saved != self.data_fingerprint:
            warnings.warn(
                "resuming from a checkpoint trained on different data (fingerprint "
                f"{saved[:12]}… vs {self.data_fingerprint[:12]}…)",
                UserWarning,
                stacklevel=2,
            )

    def load_initial_weights(self, path: str | PathLike[str]) -> list[str]:
        """Initialise from a stage-1 result: a Lightning checkpoint or an encoder weight file.

        From a ``.ckpt`` of the same method: its networks (MoCo's query and key encoders and
        projection heads, not the queues, whose keys belong to other data); DenseCL's dense heads
        and decoders where the checkpoint has them with the same shapes (else they keep their fresh
        initialisation). From any other file (``encoder.safetensors``): the encoder, copied into a
        key encoder too.

        Args:
            path: Checkpoint or weight file.

        Returns:
            Names of the loaded entries (relative to :attr:`model`).

        Raises:
            ValueError: If the file's tensors do not fit this model (names or shapes).
        """
        path = Path(path)
        if path.suffix == ".ckpt":
            ckpt = read_weight_file(path)
            if "state_dict" not in ckpt:
                raise ValueError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
            queue_keys = _queue_state_keys(self.model)
            sd = {
                k[len("model.") :]: v
                for k, v in ckpt["state_dict"].items()
                if k.startswith("model.") and k[len("model.") :] not in queue_keys
            }
            # DenseCL's own parts are taken where they fit and otherwise start fresh (MoCo v2 to
            # DenseCL, DenseCL to MoCo v2, another dense level).
            own = self.model.state_dict()
            sd = {k: v for k, v in sd.items() if not _dense_part(k) or (k in own and _same_shape(own[k], v))}
            result = self.model.load_state_dict(sd, strict=False)
            missing = [k for k in result.missing_keys if k not in queue_keys and not _dense_part(k)]
            if missing or result.unexpected_keys:
                raise ValueError(
                    f"{path} does not fit this model: missing {missing[:8]}, unexpected "
                    f"{list(result.unexpected_keys)[:8]}"
                )
            return sorted(sd)
        from sslkeypoint.weights import load_state_dict_file

        sd = load_state_dict_file(path)
        targets = [self.model.encoder] + [m for m in (getattr(self.model, "encoder_momentum", None),)
                                          if isinstance(m, torch.nn.Module)]
        for target in targets:
            try:
                target.load_state_dict(sd, strict=True)
            except RuntimeError as err:
                raise ValueError(f"{path} does not fit the encoder: {err}") from err
        return sorted(f"encoder.{k}" for k in sd)


#: The name of :class:`PretrainModule` in sslkeypoint 0.6 and earlier, when it ran MoCo v2 only.
MoCoPretrainModule = PretrainModule

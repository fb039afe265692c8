"""Self-supervised pre-training of an encoder with MoCo v2, in the two stages of SSL-FetalBioNet.

Stage 1: MoCo v2 on a large set of unlabelled images; the two views are two MoCo v2 augmentations
(random resized crop, colour jitter, grayscale for RGB, Gaussian blur, horizontal flip) of the same
image. AdamW lr 1e-3, weight decay 1e-3, batch 64, 200 epochs, queue 65,536.

Stage 2: MoCo v2 on pairs of temporally adjacent frames (``t`` and ``t + Δ``) from "gold standard"
sequences (see :mod:`sslkeypoint.ssl.selection`), initialised from stage 1; each frame gets a lighter
augmentation. AdamW lr 1e-4, weight decay 1e-4 with ReduceLROnPlateau on the epoch loss, queue
16,384. Queue entries from the query's own sequence are left out of its negatives.

Both stages run in :func:`run_pretraining` on a ``pytorch_lightning.Trainer`` (one device, or
``strategy="ddp"`` over GPUs and nodes; mixed precision through ``precision``). Augmentation is
batched on the training device inside :meth:`MoCoPretrainModule.training_step`; the key momentum
follows lightly's ``cosine_schedule`` from ``momentum`` to ``momentum_end`` over the run.
Checkpoints (``checkpoints/last.ckpt`` and the best by epoch loss) hold the full state — both
encoders, the heads, the queue, optimizer and scheduler — and, under ``"sslkeypoint"``, the library
version, the config and a fingerprint of the data; a run resumes from ``last.ckpt``. At the end the
query encoder is written to ``encoder.safetensors`` for fine-tuning.

Command line::

    python -m sslkeypoint.tasks.pretrain --images DIR --out runs/stage1
    python -m sslkeypoint.tasks.pretrain --stage 2 --sequences DIR --init-from runs/stage1/checkpoints/last.ckpt --out runs/stage2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor
from torch.utils.data import Dataset

from sslkeypoint._utils import size_pair
from sslkeypoint._version import __version__
from sslkeypoint.data import list_images, natural_sort_key
from sslkeypoint.ssl.moco import MoCoV2, cap_queue_size

__all__ = [
    "MoCoPretrainModule",
    "PretrainConfig",
    "PretrainResult",
    "data_fingerprint",
    "list_sequences",
    "main",
    "run_pretraining",
]

#: Lighter view augmentation for stage 2 (the two frames already differ by motion).
STAGE2_AUGMENT: dict[str, Any] = {"scale": (0.6, 1.0), "jitter": 0.2, "blur_p": 0.2}

_QUEUE_KEYS = ("criterion.memory_bank.bank", "criterion.memory_bank.bank_ptr", "queue_groups")


@dataclass
class PretrainConfig:
    """Everything a pre-training run needs besides its data; defaults are the paper's stage 1.

    Use :meth:`stage1` / :meth:`stage2` for the paper's settings of each stage, with overrides.

    Attributes:
        stage: 1 (two views of one image) or 2 (frame ``t`` vs frame ``t + Δ`` of a sequence).
        image_size: Network input ``(H, W)`` in px (an int means square); images are resized to it on loading and the
            random resized crop outputs it.
        in_chans: Input channels (1 for ultrasound).
        encoder: Name for ``sslkeypoint.encoders.create_encoder`` (``"unet"``, ``"timm:<name>"``).
        encoder_kwargs: Its keyword arguments besides ``in_chans`` (e.g. ``widths``).
        projection_dim: MoCo projection size.
        hidden_dim: Projection head hidden size (``None``: the encoder's deepest width).
        queue_size: Requested number of negatives.
        cap_queue: Cap the queue below the number of training items minus one global batch
            (:func:`~sslkeypoint.ssl.moco.cap_queue_size`).
        temperature: InfoNCE temperature.
        momentum: Key-encoder momentum at the first step.
        momentum_end: Momentum at the last step (cosine schedule).
        split_bn: Sub-batches for the key encoder on one device (shuffle-BN substitute).
        batch_size: Images (or frame pairs) per device per step.
        max_epochs: Epochs.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        plateau: Reduce the learning rate on a plateau of the epoch loss.
        plateau_factor: Factor of the reduction.
        plateau_patience: Epochs without improvement before a reduction.
        delta: Stage 2: inclusive range of the frame offset ``Δ``.
        mask_same_source: Keep queue entries that come from the query's own image (stage 1) or
            its own sequence (stage 2) out of its negatives.
        augment: Keyword arguments of ``sslkeypoint.augment.moco_v2_augmentation`` (crop ``scale``,
            ``jitter``, ``blur_p``, ``hflip_p``, ...).
        num_workers: DataLoader worker processes.
        seed: Seed of everything (weights, queue, shuffling, augmentation).
        precision: Lightning precision (``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``).
        accelerator: Lightning accelerator (``"auto"``, ``"cpu"``, ``"gpu"``).
        devices: Devices per node (int, list or ``"auto"``).
        strategy: ``"auto"`` or ``"ddp"`` (several GPUs or nodes).
        num_nodes: Number of nodes.
        log_every_n_steps: Logging interval in steps.

    Examples:
        >>> c = PretrainConfig.stage2(batch_size=32)
        >>> c.stage, c.queue_size, c.lr, c.plateau, c.batch_size
        (2, 16384, 0.0001, True, 32)
    """

    stage: int = 1
    image_size: tuple[int, int] | int = (256, 256)
    in_chans: int = 1
    encoder: str = "unet"
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    projection_dim: int = 128
    hidden_dim: int | None = None
    queue_size: int = 65536
    cap_queue: bool = True
    temperature: float = 0.2
    momentum: float = 0.999
    momentum_end: float = 1.0
    split_bn: int = 8
    batch_size: int = 64
    max_epochs: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-3
    plateau: bool = False
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    delta: tuple[int, int] = (1, 3)
    mask_same_source: bool = True
    augment: dict[str, Any] = field(default_factory=dict)
    num_workers: int = 4
    seed: int = 0
    precision: str = "32-true"
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    log_every_n_steps: int = 10

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2; got {self.stage}")
        self.image_size = size_pair(self.image_size, "image_size")
        self.delta = (int(self.delta[0]), int(self.delta[1]))
        if not 1 <= self.delta[0] <= self.delta[1]:
            raise ValueError(f"delta must satisfy 1 <= min <= max; got {self.delta}")
        for name in ("batch_size", "max_epochs", "queue_size", "in_chans", "split_bn"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not 0.0 <= self.momentum <= self.momentum_end <= 1.0:
            raise ValueError(
                f"momentum must satisfy 0 <= momentum <= momentum_end <= 1; got {self.momentum}, {self.momentum_end}"
            )

    @classmethod
    def stage1(cls, **overrides: Any) -> PretrainConfig:
        """The paper's stage 1: AdamW 1e-3 / 1e-3, batch 64, 200 epochs, queue 65,536."""
        return cls(**{"stage": 1, **overrides})

    @classmethod
    def stage2(cls, **overrides: Any) -> PretrainConfig:
        """The paper's stage 2: AdamW 1e-4 / 1e-4 + ReduceLROnPlateau, queue 16,384, lighter views."""
        defaults: dict[str, Any] = {
            "stage": 2,
            "queue_size": 16384,
            "lr": 1e-4,
            "weight_decay": 1e-4,
            "plateau": True,
            "augment": dict(STAGE2_AUGMENT),
        }
        return cls(**{**defaults, **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        """Rebuild from :func:`dataclasses.asdict` output (unknown keys raise ``ValueError``)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown PretrainConfig fields {unknown}; valid: {sorted(names)}")
        return cls(**data)


def list_sequences(root: str | PathLike[str], min_frames: int = 2) -> list[list[Path]]:
    """One sequence per sub-folder of ``root`` (natural order), its frames in natural order.

    Sub-folders with fewer than ``min_frames`` images are skipped.

    Raises:
        ValueError: If no sub-folder holds ``min_frames`` images.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"sequence folder {root} does not exist or is not a folder")
    sequences = []
    for sub in sorted((p for p in root.iterdir() if p.is_dir()), key=natural_sort_key):
        frames = list_images(sub)
        if len(frames) >= min_frames:
            sequences.append(frames)
    if not sequences:
        raise ValueError(f"no sub-folder of {root} holds {min_frames} or more images")
    return sequences


def data_fingerprint(items: Sequence[str | PathLike[str]] | Sequence[Sequence[str | PathLike[str]]]) -> str:
    """sha256 of the sorted ``(sequence, relative path, size in bytes)`` of every file.

    Paths are taken relative to their common folder, so the fingerprint survives moving the data.

    Args:
        items: Image files, or sequences of frame files.

    Returns:
        Hex digest.
    """
    entries: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        if isinstance(item, str | PathLike):
            entries.append((-1, os.fspath(item)))
        else:
            entries.extend((i, os.fspath(p)) for p in item)
    if not entries:
        raise ValueError("no files to fingerprint")
    root = os.path.commonpath([os.path.abspath(p) for _, p in entries]) if len(entries) > 1 else ""
    lines = []
    for seq, p in entries:
        rel = os.path.relpath(os.path.abspath(p), root) if root else os.path.basename(p)
        size = os.path.getsize(p) if os.path.exists(p) else -1
        lines.append(f"{seq}\t{Path(rel).as_posix()}\t{size}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


class MoCoPretrainModule(pl.LightningModule):
    """LightningModule for both MoCo v2 stages: device-side augmentation, momentum, loss.

    Batches: stage 1 ``images (B, C, H, W)`` or ``(images, image_index (B,))``; stage 2
    ``(frame_t, frame_t_plus_delta, sequence_index (B,))`` as ``TemporalPairDataset`` yields them.
    The indices (when present and ``mask_same_source``) keep queue entries of the query's own
    image or sequence out of its negatives.

    Args:
        config: The run's :class:`PretrainConfig` (or its dict form, as stored in checkpoints).
        queue_size: Queue size actually used (after capping); ``None`` uses ``config.queue_size``.
        data_fingerprint: Fingerprint of the training data, stored in checkpoints.

    Attributes:
        config: The config.
        model: The :class:`~sslkeypoint.ssl.moco.MoCoV2`.
        augment: The MoCo v2 view augmentation.
    """

    def __init__(
        self,
        config: PretrainConfig | dict[str, Any],
        queue_size: int | None = None,
        data_fingerprint: str | None = None,
    ) -> None:
        super().__init__()
        from sslkeypoint.augment import moco_v2_augmentation
        from sslkeypoint.encoders import create_encoder

        cfg = PretrainConfig.from_dict(dict(config)) if isinstance(config, dict) else config
        self.config = cfg
        self.data_fingerprint = data_fingerprint
        self.save_hyperparameters(
            {"config": asdict(cfg), "queue_size": queue_size, "data_fingerprint": data_fingerprint}
        )
        encoder = create_encoder(cfg.encoder, in_chans=cfg.in_chans, **cfg.encoder_kwargs)
        self.model = MoCoV2(
            encoder,
            projection_dim=cfg.projection_dim,
            hidden_dim=cfg.hidden_dim,
            queue_size=queue_size or cfg.queue_size,
            temperature=cfg.temperature,
            momentum=cfg.momentum,
            split_bn=cfg.split_bn,
        )
        self.augment = moco_v2_augmentation(cfg.image_size, in_chans=cfg.in_chans, **cfg.augment)

    def momentum_at(self, step: int) -> float:
        """Key momentum at ``step``: cosine from ``momentum`` to ``momentum_end`` over the run."""
        total = 1
        if self._trainer is not None:
            total = max(1, int(min(self.trainer.estimated_stepping_batches, 2**62)))
        return float(cosine_schedule(min(step, total), total, self.config.momentum, self.config.momentum_end))

    def _views(self, batch: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        """Query views, key views and optional groups of a batch, augmented on its device."""
        with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
            if self.config.stage == 1:
                x, index = (batch, None) if isinstance(batch, Tensor) else (batch[0], batch[1])
                groups = index if self.config.mask_same_source else None
                return self.augment(x.float()), self.augment(x.float()), groups
            frame_t, frame_td, seq = batch[0], batch[1], batch[2]
            groups = seq if self.config.mask_same_source else None
            return self.augment(frame_t.float()), self.augment(frame_td.float()), groups

    def on_train_epoch_start(self) -> None:
        """Tell a dataset with ``set_epoch`` (``TemporalPairDataset``) the epoch, for new offsets."""
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if dataset is not None and hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """One MoCo step: momentum update, two augmented views, InfoNCE loss (logged)."""
        m = self.momentum_at(self.global_step)
        self.model.update_momentum(m)
        query, key, groups = self._views(batch)
        loss = self.model(query, key, groups)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("momentum", m, on_step=True, on_epoch=False)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

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
        """Add provenance: library versions, config, data fingerprint, queue size."""
        import lightly

        checkpoint["sslkeypoint"] = {
            "version": __version__,
            "lightly_version": str(lightly.__version__),
            "torch_version": str(torch.__version__),
            "stage": self.config.stage,
            "config": asdict(self.config),
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

        From a ``.ckpt``: the query and key encoders and projection heads (not the queue, whose
        keys belong to other data). From any other file (``encoder.safetensors``): the encoder,
        copied into the key encoder too.

        Args:
            path: Checkpoint or weight file.

        Returns:
            Names of the loaded entries (relative to :attr:`model`).

        Raises:
            ValueError: If the file's tensors do not fit this model (names or shapes).
        """
        path = Path(path)
        if path.suffix == ".ckpt":
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
            if "state_dict" not in ckpt:
                raise ValueError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
            sd = {
                k[len("model.") :]: v
                for k, v in ckpt["state_dict"].items()
                if k.startswith("model.") and k[len("model.") :] not in _QUEUE_KEYS
            }
            result = self.model.load_state_dict(sd, strict=False)
            missing = [k for k in result.missing_keys if k not in _QUEUE_KEYS]
            if missing or result.unexpected_keys:
                raise ValueError(
                    f"{path} does not fit this model: missing {missing[:8]}, unexpected "
                    f"{list(result.unexpected_keys)[:8]}"
                )
            return sorted(sd)
        from sslkeypoint.weights import load_state_dict_file

        sd = load_state_dict_file(path)
        for target in (self.model.encoder, self.model.encoder_momentum):
            try:
                target.load_state_dict(sd, strict=True)
            except RuntimeError as err:
                raise ValueError(f"{path} does not fit the encoder: {err}") from err
        return sorted(f"encoder.{k}" for k in sd)


@dataclass
class PretrainResult:
    """What a pre-training run produced.

    Attributes:
        out_dir: Run folder.
        encoder_path: ``encoder.safetensors`` (query encoder weights, encoder-relative keys).
        last_checkpoint: ``checkpoints/last.ckpt`` (full state, for resuming).
        best_checkpoint: Best checkpoint by epoch loss (``None`` if none was monitored yet).
        queue_size: Queue size used (after capping).
        global_step: Optimizer steps done in total (including resumed ones).
        metrics: Last logged metrics (``train_loss_epoch``, ...).
        module: The trained module.
    """

    out_dir: Path
    encoder_path: Path
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    queue_size: int
    global_step: int
    metrics: dict[str, float]
    module: MoCoPretrainModule


class _WithIndex(Dataset[tuple[Tensor, int]]):
    """Items ``(image, index)`` of a dataset of images, so the queue knows each key's image."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.dataset[index], index


def _trainer_strategy(config: PretrainConfig) -> Any:
    """``"ddp"`` without per-step buffer broadcast: the queue is identical on every rank already."""
    if config.strategy == "ddp":
        from pytorch_lightning.strategies import DDPStrategy

        return DDPStrategy(broadcast_buffers=False)
    return config.strategy


def run_pretraining(
    config: PretrainConfig,
    images: str | PathLike[str] | Sequence[str | PathLike[str]] | None = None,
    sequences: str | PathLike[str] | Sequence[Sequence[str | PathLike[str]]] | None = None,
    out_dir: str | PathLike[str] = "pretrain",
    init_from: str | PathLike[str] | None = None,
    resume: bool = True,
    max_steps: int | None = None,
    progress: bool = True,
) -> PretrainResult:
    """Pre-train an encoder with MoCo v2 (stage 1 on ``images``, stage 2 on ``sequences``).

    Args:
        config: Run settings (:meth:`PretrainConfig.stage1` / :meth:`PretrainConfig.stage2`).
        images: Stage 1: an image folder (searched recursively) or a list of files.
        sequences: Stage 2: a folder with one sub-folder per sequence, or a list of frame lists
            (each in temporal order) — typically the sequences kept by
            :func:`sslkeypoint.ssl.selection.screen_sequences`.
        out_dir: Run folder: ``checkpoints/``, ``logs/`` (CSV), ``encoder.safetensors``. Use one
            folder per stage.
        init_from: Stage-1 result to start from: its ``.ckpt`` or its ``encoder.safetensors``.
            Ignored when the run resumes.
        resume: Continue from ``out_dir/checkpoints/last.ckpt`` when it exists.
        max_steps: Stop after this many optimizer steps in total (``None``: ``max_epochs``).
        progress: Show the progress bar.

    Returns:
        A :class:`PretrainResult`.

    Raises:
        ValueError: Wrong data for the stage, too few items for a batch, or ``last.ckpt`` from the
            other stage.
    """
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from torch.utils.data import DataLoader

    from sslkeypoint.data import ImageFolderDataset, TemporalPairDataset
    from sslkeypoint.weights import save_state_dict

    if (images is None) == (sequences is None):
        raise ValueError("give exactly one of images (stage 1) or sequences (stage 2)")
    if config.stage == 1 and images is None:
        raise ValueError("stage 1 trains on images; got sequences")
    if config.stage == 2 and sequences is None:
        raise ValueError("stage 2 trains on sequences of frames; got images")
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    resume_path = last if resume and last.exists() else None
    if resume_path is not None:
        saved = torch.load(resume_path, map_location="cpu", weights_only=True).get("sslkeypoint", {})
        if saved.get("stage", config.stage) != config.stage:
            raise ValueError(
                f"{resume_path} is a stage-{saved['stage']} run; this is stage {config.stage}: use "
                "another out_dir, or pass it as init_from"
            )

    pl.seed_everything(config.seed, workers=True, verbose=False)
    dataset: Dataset[Any]
    if images is not None:
        paths = list_images(Path(images)) if isinstance(images, str | PathLike) else [Path(p) for p in images]
        if not paths:
            raise ValueError(f"no image files under {images}")
        dataset = _WithIndex(ImageFolderDataset(paths, config.image_size, in_chans=config.in_chans))
        fingerprint = data_fingerprint(paths)
    else:
        assert sequences is not None
        seqs = (
            list_sequences(sequences)
            if isinstance(sequences, str | PathLike)
            else [[Path(p) for p in s] for s in sequences]
        )
        dataset = TemporalPairDataset(
            seqs, config.image_size, delta=config.delta, in_chans=config.in_chans, seed=config.seed
        )
        fingerprint = data_fingerprint(seqs)
    num_items = len(dataset)  # type: ignore[arg-type]

    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="best-{epoch:03d}",
        monitor="train_loss_epoch",
        mode="min",
        save_top_k=1,
        save_last=True,
    )
    trainer = pl.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=_trainer_strategy(config),
        precision=config.precision,  # type: ignore[arg-type]
        max_epochs=config.max_epochs,
        max_steps=-1 if max_steps is None else max_steps,
        logger=CSVLogger(out, name="logs"),
        callbacks=[checkpoint],
        enable_progress_bar=progress,
        enable_model_summary=False,
        log_every_n_steps=config.log_every_n_steps,
        default_root_dir=out,
    )
    global_batch = config.batch_size * trainer.num_devices * trainer.num_nodes
    if num_items < global_batch:
        raise ValueError(
            f"{num_items} training items are fewer than one global batch of {global_batch} "
            f"({config.batch_size} per device × {trainer.num_devices} devices × {trainer.num_nodes} nodes)"
        )
    queue = cap_queue_size(config.queue_size, num_items, global_batch) if config.cap_queue else config.queue_size
    module = MoCoPretrainModule(config, queue_size=queue, data_fingerprint=fingerprint)
    if init_from is not None and resume_path is None:
        module.load_initial_weights(init_from)
    loader = DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=config.num_workers,
        # Stage 2 sets the dataset's epoch (new offsets Δ) each epoch: workers must be re-created.
        persistent_workers=config.num_workers > 0 and config.stage == 1,
        pin_memory=torch.cuda.is_available(),
    )
    trainer.fit(module, loader, ckpt_path=resume_path, weights_only=True)
    # ModelCheckpoint saves at epoch ends; a run stopped by max_steps mid-epoch (or after the last
    # epoch-end save) must still leave its final state in last.ckpt for resuming.
    trainer.save_checkpoint(last, weights_only=False)  # the full state: resumable

    encoder_path = out / "encoder.safetensors"
    if trainer.is_global_zero:
        save_state_dict(
            module.model.export_encoder(),
            encoder_path,
            metadata={
                "sslkeypoint_version": __version__,
                "stage": str(config.stage),
                "encoder": config.encoder,
                "encoder_kwargs": json.dumps(config.encoder_kwargs),
                "in_chans": str(config.in_chans),
                "data_fingerprint": fingerprint,
                "global_step": str(trainer.global_step),
            },
        )
    best = checkpoint.best_model_path
    return PretrainResult(
        out_dir=out,
        encoder_path=encoder_path,
        last_checkpoint=last if last.exists() else None,
        best_checkpoint=Path(best) if best else None,
        queue_size=module.model.queue_size,
        global_step=trainer.global_step,
        metrics={k: float(v) for k, v in trainer.callback_metrics.items()},
        module=module,
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sslkeypoint.tasks.pretrain",
        description="MoCo v2 pre-training of an encoder (SSL-FetalBioNet stage 1 or 2).",
    )
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--images", help="stage 1: folder of unlabelled images (recursive)")
    data.add_argument("--sequences", help="stage 2: folder with one sub-folder of frames per sequence")
    p.add_argument("--stage", type=int, choices=(1, 2), default=None, help="default: 1 with --images, 2 with --sequences")
    p.add_argument("--out", default="pretrain", help="run folder (default: %(default)s)")
    p.add_argument("--init-from", default=None, help="stage-1 last.ckpt or encoder.safetensors")
    p.add_argument("--encoder", default="unet", help="create_encoder name (default: %(default)s)")
    p.add_argument("--widths", type=int, nargs="+", default=None, help="U-Net widths, e.g. 64 128 256 512")
    p.add_argument("--bottleneck-width", type=int, default=None, help="U-Net bottleneck width")
    p.add_argument("--in-chans", type=int, default=1)
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="input size in px")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--queue-size", type=int, default=None)
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--precision", default=None, help="e.g. 32-true, 16-mixed, bf16-mixed")
    p.add_argument("--accelerator", default=None)
    p.add_argument("--devices", default=None, help="int, or 'auto'")
    p.add_argument("--strategy", default=None, help="'auto' or 'ddp'")
    p.add_argument("--num-nodes", type=int, default=None)
    p.add_argument("--no-resume", action="store_true", help="start over even if last.ckpt exists")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> PretrainResult:
    """Command-line entry point (``python -m sslkeypoint.tasks.pretrain --help``)."""
    args = _parser().parse_args(argv)
    stage = args.stage or (1 if args.images else 2)
    kw: dict[str, Any] = {}
    enc_kw: dict[str, Any] = {}
    if args.widths:
        enc_kw["widths"] = tuple(args.widths)
    if args.bottleneck_width:
        enc_kw["bottleneck_width"] = args.bottleneck_width
    if enc_kw:
        kw["encoder_kwargs"] = enc_kw
    for arg, name in [
        ("encoder", "encoder"),
        ("in_chans", "in_chans"),
        ("size", "image_size"),
        ("batch_size", "batch_size"),
        ("epochs", "max_epochs"),
        ("lr", "lr"),
        ("queue_size", "queue_size"),
        ("num_workers", "num_workers"),
        ("seed", "seed"),
        ("precision", "precision"),
        ("accelerator", "accelerator"),
        ("strategy", "strategy"),
        ("num_nodes", "num_nodes"),
    ]:
        value = getattr(args, arg)
        if value is not None:
            kw[name] = tuple(value) if isinstance(value, list) else value
    if args.devices is not None:
        kw["devices"] = int(args.devices) if args.devices.isdigit() else args.devices
    config = PretrainConfig.stage1(**kw) if stage == 1 else PretrainConfig.stage2(**kw)
    result = run_pretraining(
        config,
        images=args.images,
        sequences=args.sequences,
        out_dir=args.out,
        init_from=args.init_from,
        resume=not args.no_resume,
        max_steps=args.max_steps,
        progress=not args.no_progress,
    )
    print(f"encoder written to {result.encoder_path} after {result.global_step} steps")
    return result


if __name__ == "__main__":
    main()

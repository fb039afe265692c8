"""Run both recipes under Lightning DDP on 2 CPU processes (gloo) and dump what each process saw.

Usage: ``python tests/lightning/ddp_run.py OUT DATA_JSON``, where ``DATA_JSON`` lists the
fine-tuning records (``{"train": [[path, [[x, y], ...]], ...], "val": [...], "images": [...], "unlabelled": [...]}``).
``strategy="ddp"`` on the CPU re-launches this script for process 1 (Lightning's subprocess
launcher), so every process runs the same three recipe calls: first :func:`run_pretraining`
(stage 1) into ``OUT/pretrain``, then :func:`run_finetuning` from its encoder into
``OUT/finetune``, then a mean-teacher fine-tuning (``MeanTeacherMethod``, every image as the
unlabelled pool) into ``OUT/semi``. Each process writes ``OUT/rank{r}.json`` (per-epoch validation
figures, learning rates, losses, the unlabelled images of every batch, the files it opened for
writing) and its final weights ``OUT/{finetune,pretrain,semi}_state{r}.pt``;
tests/lightning/test_ddp.py compares them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

WRITES: list[str] = []
#: Run files whose writing starts late, as on a slow shared file system: a process that reads one
#: before its writer is done (no barrier) finds it missing or incomplete.
SLOW = {"config.json", "summary.json", "encoder_init.txt", "encoder.safetensors"}
DELAY_S = 0.5


def _record_writes(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook: remember every file this process opens for writing or renames into place.

    Python-level writes only: files written from C++ or Rust (``torch.save`` to a path, safetensors)
    raise no audit event; the recipes write their run files with Python, Lightning its checkpoints
    and logs too, and safetensors is wrapped below.
    """
    if event == "os.rename" and len(args) >= 2:  # os.rename and os.replace (atomic saves)
        WRITES.append(os.fsdecode(args[1]))
        return
    if event != "open" or not args or not isinstance(args[0], str | bytes | os.PathLike):
        return
    mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
    if isinstance(mode, str):
        writing = any(c in mode for c in "wax+")
    else:
        writing = bool(int(flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    if writing:
        path = os.fsdecode(args[0])
        WRITES.append(path)
        name = Path(path).name  # the run file, or the temporary file it is written to (sslkeypoint.atomic)
        if name in SLOW or any(name.startswith(f".{slow}.") for slow in SLOW):
            time.sleep(DELAY_S)


def _wrap_safetensors() -> None:
    """safetensors writes from Rust, out of sight of the audit hook: record (and delay) its calls too."""
    import safetensors.torch

    original = safetensors.torch.save_file

    def save_file(tensors: Any, filename: Any, *args: Any, **kwargs: Any) -> Any:
        WRITES.append(os.fsdecode(filename))
        time.sleep(DELAY_S)
        return original(tensors, filename, *args, **kwargs)

    safetensors.torch.save_file = save_file


def _read_json(path: Path) -> Any:
    """The file's JSON, or why it could not be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return f"{type(err).__name__}: {err}"


class Record(pl.Callback):
    """Per training epoch, after validation: learning rate, validation samples seen, epoch loss.

    At the end of ``fit`` it saves the module's ``state_dict`` to ``state_path``.
    """

    def __init__(self, loss_key: str, state_path: Path) -> None:
        self.loss_key = loss_key
        self.state_path = state_path
        self.epochs: list[dict[str, Any]] = []
        self.val_seen = 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.val_seen = 0

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:
        if not trainer.sanity_checking and isinstance(batch, dict) and "image" in batch:
            self.val_seen += int(batch["image"].shape[0])

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = trainer.callback_metrics.get(self.loss_key)
        self.epochs.append({
            "epoch": int(trainer.current_epoch),
            "lr": float(trainer.optimizers[0].param_groups[0]["lr"]),
            "val_seen": self.val_seen,
            "loss": None if loss is None else float(loss),
        })

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        torch.save(pl_module.state_dict(), self.state_path)


class UnlabelledSeen(pl.Callback):
    """The checksum of every unlabelled image of every training batch, per epoch, in order."""

    def __init__(self) -> None:
        self.epochs: list[list[str]] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs.append([])

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int,
    ) -> None:
        self.epochs[-1].extend(_checksum(image) for image in batch["unlabelled"])


def _checksum(t: torch.Tensor) -> str:
    return hashlib.sha256(t.cpu().numpy().tobytes()).hexdigest()[:16]


def main(out: Path, data_file: Path) -> None:
    torch.set_num_threads(1)
    sys.addaudithook(_record_writes)
    _wrap_safetensors()
    from sslkeypoint import recipes
    from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
    from sslkeypoint.data import KeypointRecord
    from sslkeypoint.methods import MeanTeacherMethod, MoCoV2Method, PseudoLabelMethod
    from sslkeypoint.recipes import pretrain as pretrain_recipe

    rank = int(os.environ.get("LOCAL_RANK", "0"))  # one node: local rank = global rank
    data = json.loads(data_file.read_text())
    train = [KeypointRecord(Path(p), kp) for p, kp in data["train"]]
    val = [KeypointRecord(Path(p), kp) for p, kp in data["val"]]
    tiny = {"widths": [4, 8], "bottleneck_width": 8}
    trainer = TrainerConfig(accelerator="cpu", devices=2, strategy="ddp", deterministic=True, log_every_n_steps=1)

    # Pre-training (stage 1). run_pretraining takes no callbacks, so the module it builds records
    # its epochs, and the random state every augmentation call draws from.
    pt_record = Record("train_loss_epoch", out / f"pretrain_state{rank}.pt")
    augment_rng: list[str] = []

    class RecordRandomState(torch.nn.Module):
        def __init__(self, augment: torch.nn.Module) -> None:
            super().__init__()
            self.augment = augment

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            augment_rng.append(_checksum(torch.random.get_rng_state()))
            return self.augment(x)

    class RecordingMoCo(pretrain_recipe.PretrainModule):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.augment = RecordRandomState(self.augment)  # type: ignore[assignment]

        def on_train_epoch_end(self) -> None:
            super().on_train_epoch_end()
            pt_record.on_train_epoch_end(self.trainer, self)

        def on_fit_end(self) -> None:
            super().on_fit_end()
            pt_record.on_fit_end(self.trainer, self)

    pretrain_recipe.PretrainModule = RecordingMoCo  # type: ignore[misc]
    pt_config = PretrainConfig.stage1(
        image_size=(32, 32), encoder_kwargs=tiny, batch_size=2, max_epochs=2,
        method=MoCoV2Method(projection_dim=8, hidden_dim=8, queue_size=8, momentum=0.9), augment={"blur_p": 0.0},
    )
    pt = recipes.run_pretraining(
        pt_config, images=data["images"], out_dir=out / "pretrain", trainer=trainer, progress=False
    )
    assert torch.distributed.get_rank() == rank and torch.distributed.get_world_size() == 2

    # Fine-tuning from the pre-trained encoder (written by process 0 alone). The plateau schedule
    # halves the learning rate after every epoch without a new best (patience 0), so learning
    # rates would part if the processes saw different figures.
    ft_config = FinetuneConfig(
        input_size=(32, 32), heatmap_size=(16, 16), sigma=1.0, num_keypoints=2, keypoint_names=("A", "B"),
        encoder_kwargs=tiny, lr=3e-3, batch_size=2, max_epochs=3, lr_patience=0, lr_factor=0.5,
        init_encoder=str(pt.encoder_path),
    )
    ft_record = Record("train/loss_epoch", out / f"finetune_state{rank}.pt")
    ft = recipes.run_finetuning(
        ft_config, (train, val), out / "finetune", trainer=trainer, progress=False, callbacks=[ft_record]
    )

    # What any process finds right after the recipe returned (the next step of a script reads it).
    seen = {name: _read_json(out / "finetune" / name) for name in ("config.json", "summary.json")}

    # Mean teacher from random weights; the unlabelled pool holds every image and 5 more, of which
    # the 5 validation images are left out (14 images: 7 per process, 3 per batch).
    semi_config = dataclasses.replace(
        ft_config, init_encoder=None, method=MeanTeacherMethod(rampup_steps=1, unlabelled_batch_size=3, ema_decay=0.5),
        max_epochs=2,
    )
    semi_record = Record("train/loss_epoch", out / f"semi_state{rank}.pt")
    unlabelled_seen = UnlabelledSeen()
    semi = recipes.run_finetuning(
        semi_config, (train, val), out / "semi", trainer=trainer, progress=False,
        callbacks=[semi_record, unlabelled_seen], unlabelled=data["unlabelled"],
    )
    # Pseudo-label self-training: process 0 labels the pool between the rounds, both read the file.
    pseudo_config = dataclasses.replace(
        ft_config, init_encoder=None, max_epochs=1,
        method=PseudoLabelMethod(views=2, student_epochs=1, min_confidence=0.0, max_spread=0.5, shape_quantile=None),
    )
    pseudo_record = Record("train/loss_epoch", out / f"pseudo_state{rank}.pt")
    pseudo = recipes.run_finetuning(
        pseudo_config, (train, val), out / "pseudo", trainer=trainer, progress=False, callbacks=[pseudo_record],
        unlabelled=data["unlabelled"],
    )
    dump = {
        "rank": rank,
        "pseudo": {"result": pseudo.to_dict(), "epochs": pseudo_record.epochs},
        "finetune": {
            "val_history": ft.val_history,
            "epochs": ft_record.epochs,
            "best_epoch": ft.best_epoch,
            "result": ft.to_dict(),
            "seen": seen,
        },
        "semi": {
            "val_history": semi.val_history,
            "epochs": semi_record.epochs,
            "unlabelled": unlabelled_seen.epochs,
            "result": semi.to_dict(),
        },
        "pretrain": {
            "epochs": pt_record.epochs,
            "augment_rng": augment_rng,
            "global_step": pt.global_step,
            "queue_size": pt.queue_size,
            "metrics": pt.metrics,
        },
        "writes": WRITES,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(dump, indent=1, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

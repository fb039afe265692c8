"""Where a run executes: :class:`TrainerConfig`, passed to ``pytorch_lightning.Trainer`` and the DataLoaders."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslkeypoint.configs._form import DictForm

__all__ = ["LOGGERS", "TrainerConfig"]

#: Experiment loggers a run can add to its CSV log → the package each needs.
LOGGERS: dict[str, str] = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


@dataclass
class TrainerConfig(DictForm):
    """Where and how a run executes: passed to ``pytorch_lightning.Trainer`` and the DataLoaders.

    Attributes:
        accelerator: ``"auto"``, ``"cpu"``, ``"gpu"``, ...
        devices: Devices per node (an int, a list of indices or ``"auto"``).
        strategy: ``"auto"`` or ``"ddp"`` (several GPUs, processes or nodes).
        num_nodes: Number of nodes.
        precision: ``"32-true"``, ``"16-mixed"``, ``"bf16-mixed"``, ...
        num_workers: DataLoader worker processes.
        deterministic: Lightning's ``deterministic`` (``True`` makes a CPU run repeatable;
            several CUDA kernels have no deterministic version); ``None`` is Lightning's default.
        log_every_n_steps: Logging interval of step metrics.
        num_sanity_val_steps: Validation batches run before training to catch errors early.
        logger: An experiment logger beside the run's CSV log (``logs/``, always written):
            ``"tensorboard"``, ``"mlflow"`` or ``"wandb"`` (each needs its package installed),
            writing under the run folder; ``None`` for the CSV log alone.

    Examples:
        >>> TrainerConfig(accelerator="cpu", devices=2, strategy="ddp").devices
        2
    """

    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    num_workers: int = 0
    deterministic: bool | None = None
    log_every_n_steps: int = 10
    num_sanity_val_steps: int = 2
    logger: str | None = None

    def __post_init__(self) -> None:
        if self.logger is not None and self.logger not in LOGGERS:
            raise ValueError(f"logger must be one of {sorted(LOGGERS)} or None; got {self.logger!r}")
        if isinstance(self.devices, str) and self.devices.isdigit():
            self.devices = int(self.devices)
        if self.num_nodes < 1 or self.num_workers < 0 or self.log_every_n_steps < 1:
            raise ValueError(
                "num_nodes and log_every_n_steps must be >= 1 and num_workers >= 0; got "
                f"num_nodes={self.num_nodes}, num_workers={self.num_workers}, "
                f"log_every_n_steps={self.log_every_n_steps}"
            )

    def loggers(self, out: str | os.PathLike[str]) -> list[Any]:
        """The Lightning loggers of a run in ``out``: the CSV log (``out/logs``) and :attr:`logger`.

        Raises:
            ValueError: If the chosen logger's package is not installed (saying what to install).
        """
        from pytorch_lightning import loggers

        folder = Path(out)
        chosen: list[Any] = [loggers.CSVLogger(folder, name="logs")]
        if self.logger is None:
            return chosen
        package = LOGGERS[self.logger]
        if importlib.util.find_spec(package) is None and not (
            self.logger == "tensorboard" and importlib.util.find_spec("tensorboardX") is not None
        ):
            raise ValueError(f"logger={self.logger!r} needs the package {package!r}: pip install {package}")
        if self.logger == "tensorboard":
            chosen.append(loggers.TensorBoardLogger(folder, name="tensorboard"))
        elif self.logger == "mlflow":
            chosen.append(loggers.MLFlowLogger(experiment_name=folder.name, save_dir=str(folder / "mlruns")))
        else:
            chosen.append(loggers.WandbLogger(name=folder.name, save_dir=str(folder)))
        return chosen

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``pytorch_lightning.Trainer`` (all fields but ``num_workers`` and
        ``logger``)."""
        return {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "strategy": self.strategy,
            "num_nodes": self.num_nodes,
            "precision": self.precision,
            "deterministic": self.deterministic,
            "log_every_n_steps": self.log_every_n_steps,
            "num_sanity_val_steps": self.num_sanity_val_steps,
        }

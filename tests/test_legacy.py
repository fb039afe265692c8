"""What sslkeypoint 0.6 left on disk still loads: configs, checkpoints and run folders with flat method fields.

The fixtures (``tests/fixtures/legacy_0_6``) were written by sslkeypoint 0.6.0: a mean-teacher
fine-tuning run and a DenseCL pre-training run at the decoder level.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
from sslkeypoint.configs.legacy import upgrade_finetune_settings, upgrade_pretrain_settings
from sslkeypoint.data import KeypointRecord
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.lightning import HeatmapFinetuneModule, PretrainModule
from sslkeypoint.methods import DenseCLMethod, MeanTeacherMethod, SupervisedMethod
from sslkeypoint.recipes import run_finetuning, run_pretraining
from sslkeypoint.runs import RunFolderError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

FIXTURES = Path(__file__).parent / "fixtures" / "legacy_0_6"
TRAINER = TrainerConfig(accelerator="cpu", devices=1, deterministic=True, num_sanity_val_steps=0, log_every_n_steps=1)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The fixtures copied, so that a run can resume in them."""
    target = tmp_path / "legacy"
    shutil.copytree(FIXTURES, target)
    return target


def _records(root: Path) -> list[KeypointRecord]:
    rows = (root / "records.csv").read_text().splitlines()[1:]
    return [KeypointRecord(root / row.split(",")[0], np.array([float(v) for v in row.split(",")[1:]]).reshape(2, 2))
            for row in rows]


def test_stored_configs_read_as_methods() -> None:
    finetune = FinetuneConfig.from_dict(json.loads((FIXTURES / "mean_teacher" / "config.json").read_text()))
    assert finetune.method == MeanTeacherMethod(ema_decay=0.9, rampup_steps=2, unlabelled_batch_size=2)
    pretrain = PretrainConfig.from_dict(json.loads((FIXTURES / "densecl" / "config.json").read_text()))
    assert isinstance(pretrain.method, DenseCLMethod)
    assert (pretrain.method.weight, pretrain.method.level, pretrain.method.decoder_stride) == (0.5, "decoder", 2)
    assert (pretrain.method.queue_size, pretrain.method.projection_dim, pretrain.method.samples) == (4, 8, 8)


def test_recorded_settings_equal_this_versions() -> None:
    """A 0.6 run folder's run.json compares equal to the same run asked for now."""
    saved = json.loads((FIXTURES / "mean_teacher" / "run.json").read_text())["settings"]
    config = FinetuneConfig.from_dict(json.loads((FIXTURES / "mean_teacher" / "config.json").read_text()))
    upgraded = upgrade_finetune_settings(saved)
    assert upgraded["method"] == config.to_dict()["method"]
    assert {k: v for k, v in upgraded.items() if k != "codec"} == config.run_settings()
    saved = json.loads((FIXTURES / "densecl" / "run.json").read_text())["settings"]
    config_p = PretrainConfig.from_dict(json.loads((FIXTURES / "densecl" / "config.json").read_text()))
    assert {k: v for k, v in upgrade_pretrain_settings(saved).items() if k != "init_from"} == config_p.to_dict()
    assert upgrade_finetune_settings({"lr": 1.0})["method"] == SupervisedMethod().to_dict()


def test_a_mean_teacher_checkpoint_of_0_6_loads_and_predicts() -> None:
    path = FIXTURES / "mean_teacher" / "checkpoints" / "last.ckpt"
    module = HeatmapFinetuneModule.load_from_checkpoint(path, weights_only=True, map_location="cpu").eval()
    assert isinstance(module.config.method, MeanTeacherMethod) and module.teacher is not None
    saved = torch.load(path, weights_only=True)["state_dict"]
    # 0.6 saved the validated teacher as model.* and the network as student.*: both back in place.
    for key, value in saved.items():
        if key.startswith("model."):
            torch.testing.assert_close(module.objective.teacher.network.state_dict()[key[6:]], value)
        elif key.startswith("student."):
            torch.testing.assert_close(module.model.state_dict()[key[8:]], value)
    predictor = KeypointPredictor.from_checkpoint(path)
    images = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(predictor.model(images), module(images))
    assert predictor.keypoint_names == ("A", "B")


def test_a_densecl_checkpoint_of_0_6_loads() -> None:
    module = PretrainModule.load_from_checkpoint(FIXTURES / "densecl" / "checkpoints" / "last.ckpt",
                                                 weights_only=True, map_location="cpu")
    assert isinstance(module.config.method, DenseCLMethod) and module.model.queue_size == 4
    assert module.model.trains_decoder


def test_a_0_6_mean_teacher_run_folder_resumes(copy: Path) -> None:
    records = _records(copy)
    config = FinetuneConfig.from_dict(json.loads((copy / "mean_teacher" / "config.json").read_text()))
    before = torch.load(copy / "mean_teacher" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    result = run_finetuning(config, (records[:8], records[8:]), copy / "mean_teacher", unlabelled=[r.path for r in records[:8]],
                            trainer=TRAINER, progress=False, max_epochs=2)
    assert result.epochs == 2 and result.global_step == 2 * before  # resumed from epoch 1, not started over
    # Another method in the same folder is refused, naming the difference.
    with pytest.raises(RunFolderError, match="method"):
        run_finetuning(FinetuneConfig.from_dict({**config.to_dict(), "method": SupervisedMethod().to_dict()}),
                       (records[:8], records[8:]), copy / "mean_teacher", trainer=TRAINER, progress=False)


def test_a_0_6_pretraining_run_folder_resumes(copy: Path) -> None:
    config = PretrainConfig.from_dict(json.loads((copy / "densecl" / "config.json").read_text()))
    # One more epoch (max_epochs may change when a run resumes): 2 steps of 4 images each.
    result = run_pretraining(dataclasses.replace(config, max_epochs=2), images=copy / "images",
                             out_dir=copy / "densecl", trainer=TRAINER, progress=False)
    assert result.global_step == 4 and result.unet_path is not None and result.unet_path.is_file()

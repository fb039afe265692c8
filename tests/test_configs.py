"""Tests of sslkeypoint.configs: the paper's defaults, round trips, validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.measures import AngleMeasure, DistanceMeasure
from sslkeypoint.methods import MoCoV2Method


def test_config_defaults_are_the_paper() -> None:
    cfg = FinetuneConfig()
    assert cfg.input_size == (256, 256) and cfg.heatmap_size == (64, 64) and cfg.sigma == 2.0
    assert cfg.lr == 1e-5 and cfg.batch_size == 8 and cfg.max_epochs == 1000
    assert cfg.val_fraction == 0.2 and cfg.loss == "mse" and cfg.heatmap_stride == 4


def test_config_round_trip_and_errors() -> None:
    cfg = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), encoder_kwargs={"widths": (8, 16)},
                         measures={"d": DistanceMeasure(0, 2, pixel_spacing=0.1)})
    again = FinetuneConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.measures == {"d": DistanceMeasure(0, 2, pixel_spacing=0.1)}
    with pytest.raises(ValueError, match="unknown FinetuneConfig fields"):
        FinetuneConfig.from_dict({"lr": 1.0, "learning_rate": 2.0})
    with pytest.raises(ValueError, match="integer multiple"):
        FinetuneConfig(input_size=(256, 256), heatmap_size=(60, 64))
    with pytest.raises(ValueError, match="measure 'aop' uses landmarks"):
        FinetuneConfig(num_keypoints=3, measures={"aop": AngleMeasure(0, 1, 3)})
    with pytest.raises(ValueError, match="keypoint_names"):
        FinetuneConfig(num_keypoints=3, keypoint_names=("a", "b"))


def test_config_defaults_are_the_papers() -> None:
    s1, s2 = PretrainConfig.stage1(), PretrainConfig.stage2()
    assert (s1.lr, s1.weight_decay, s1.batch_size, s1.max_epochs, s1.method.queue_size) == (1e-3, 1e-3, 64, 200, 65536)
    assert (s1.image_size, s1.method.temperature, s1.plateau) == ((256, 256), 0.2, False)
    # Momentum: chosen from the run length (MoCo v2's 0.999 for the paper's long runs), constant.
    assert (s1.method.momentum, s1.method.momentum_end) == (None, None)
    with pytest.raises(ValueError, match="momentum"):
        MoCoV2Method(momentum=0.999, momentum_end=0.99)
    assert (s2.stage, s2.lr, s2.weight_decay, s2.method.queue_size, s2.plateau) == (2, 1e-4, 1e-4, 16384, True)
    assert PretrainConfig.from_dict({"stage": 2, "delta": [1, 5]}).delta == (1, 5)
    with pytest.raises(ValueError, match="unknown PretrainConfig fields"):
        PretrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ValueError, match="stage must be 1 or 2"):
        PretrainConfig(stage=3)
    with pytest.raises(ValueError, match="delta"):
        PretrainConfig(delta=(0, 2))


def test_trainer_config_and_codec_of_a_config() -> None:
    t = TrainerConfig(devices="2", strategy="ddp")
    assert t.devices == 2 and t.trainer_kwargs()["strategy"] == "ddp" and "num_workers" not in t.trainer_kwargs()
    assert TrainerConfig.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    with pytest.raises(ValueError, match="unknown TrainerConfig fields"):
        TrainerConfig.from_dict({"gpus": 2})
    with pytest.raises(ValueError, match="num_workers"):
        TrainerConfig(num_workers=-1)
    cfg = FinetuneConfig(input_size=(128, 128), heatmap_size=(32, 32), sigma=1.5, refine="quarter", blur_kernel=5)
    assert cfg.codec() == HeatmapCodec((128, 128), (32, 32), 1.5, "quarter", 5)
    with pytest.raises(ValueError, match="refine"):
        FinetuneConfig(refine="fancy")
    assert PretrainConfig.from_dict(PretrainConfig.stage2().to_dict()) == PretrainConfig.stage2()


def test_trainer_loggers_always_keep_the_csv_log_and_name_a_missing_package(tmp_path) -> None:
    import importlib.util

    from pytorch_lightning.loggers import CSVLogger

    from sslkeypoint.configs import TrainerConfig

    (only,) = TrainerConfig().loggers(tmp_path)
    assert isinstance(only, CSVLogger) and Path(only.log_dir).parent == tmp_path / "logs"
    with pytest.raises(ValueError, match="logger must be one of"):
        TrainerConfig(logger="neptune")
    for name in ("tensorboard", "mlflow", "wandb"):
        if importlib.util.find_spec(name) is None and (name != "tensorboard" or importlib.util.find_spec("tensorboardX") is None):
            with pytest.raises(ValueError, match=f"pip install {name}"):
                TrainerConfig(logger=name).loggers(tmp_path)
        else:
            assert len(TrainerConfig(logger=name).loggers(tmp_path)) == 2

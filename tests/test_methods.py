"""Tests of sslkeypoint.methods: methods as typed configs, their stored form, their checks, what they build."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch

from sslkeypoint.configs import FinetuneConfig, PretrainConfig
from sslkeypoint.configs.legacy import upgrade_pretrain_dict
from sslkeypoint.encoders import UNetEncoder
from sslkeypoint.lightning import HeatmapFinetuneModule, PretrainModule
from sslkeypoint.methods import (
    DenseCLMethod,
    FinetuningMethod,
    MeanTeacherMethod,
    MoCoV2Method,
    PretrainingMethod,
    PseudoLabelMethod,
    ReconstructionMethod,
    SupervisedMethod,
    method_from_dict,
)
from sslkeypoint.ssl import DenseCL, FinetuneObjective, MaskedReconstruction, MeanTeacher, MoCoV2

TINY = {"widths": [4, 8], "bottleneck_width": 8}
ALL = [MoCoV2Method(queue_size=8), DenseCLMethod(level="decoder", samples=None), ReconstructionMethod(noise_std=0.1),
       SupervisedMethod(), MeanTeacherMethod(ema_decay=0.5, eval_teacher=False),
       PseudoLabelMethod(teacher=MeanTeacherMethod(weight=2.0), rounds=2, shape_quantile=None)]


@pytest.mark.parametrize("method", ALL, ids=lambda m: m.name)
def test_methods_round_trip_through_json(method) -> None:
    base = PretrainingMethod if isinstance(method, PretrainingMethod) else FinetuningMethod
    stored = json.loads(json.dumps(method.to_dict()))
    assert method_from_dict(stored, base) == method
    assert method_from_dict(method, base) is method


def test_configs_carry_their_method() -> None:
    pre = PretrainConfig(method=DenseCLMethod(weight=0.25))
    assert PretrainConfig.from_dict(json.loads(json.dumps(pre.to_dict()))) == pre
    fine = FinetuneConfig(method=PseudoLabelMethod(rounds=2))
    again = FinetuneConfig.from_dict(json.loads(json.dumps(fine.to_dict())))
    assert again == fine and again.method.teacher == SupervisedMethod()
    assert FinetuneConfig().method == SupervisedMethod() and isinstance(PretrainConfig().method, MoCoV2Method)


def test_the_wrong_kind_of_method_is_refused() -> None:
    with pytest.raises(ValueError, match="is a PretrainingMethod, not a FinetuningMethod"):
        FinetuneConfig(method=MoCoV2Method().to_dict())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="MeanTeacherMethod is not a PretrainingMethod"):
        PretrainConfig(method=MeanTeacherMethod())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot import"):
        FinetuneConfig(method={"class": "sslkeypoint.methods.NoSuchMethod"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="teacher of pseudo-label self-training must be another method"):
        PseudoLabelMethod(teacher=PseudoLabelMethod())


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: MoCoV2Method(queue_size=0), "queue_size"),
        (lambda: MoCoV2Method(temperature=0.0), "temperature"),
        (lambda: MoCoV2Method(momentum=0.999, momentum_end=0.99), "momentum"),
        (lambda: DenseCLMethod(weight=1.5), "weight"),
        (lambda: DenseCLMethod(level="head"), "level"),
        (lambda: ReconstructionMethod(mask_ratio=1.0), "mask_ratio"),
        (lambda: ReconstructionMethod(mask_ratio=0.0, noise_std=0.0), "noise_std > 0"),
        (lambda: MeanTeacherMethod(confidence=1.5), "confidence"),
        (lambda: PseudoLabelMethod(rounds=0), "rounds"),
        (lambda: PseudoLabelMethod(max_spread=0.0), "max_spread"),
        (lambda: PseudoLabelMethod(student_init="best"), "student_init"),
        (lambda: PseudoLabelMethod(labelled_share=1.0), "labelled_share"),
    ],
)
def test_bad_method_settings_are_refused(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_methods_build_their_objectives() -> None:
    enc = UNetEncoder(in_chans=1, **TINY)
    assert type(MoCoV2Method(queue_size=8).build(enc, image_size=(16, 16))) is MoCoV2
    dense = DenseCLMethod(queue_size=8, level="decoder", decoder_stride=2).build(UNetEncoder(1, **TINY), image_size=(16, 16))
    assert isinstance(dense, DenseCL) and dense.trains_decoder
    recon = ReconstructionMethod(decoder_stride=2, patch_size=4).build(UNetEncoder(1, **TINY), image_size=(16, 16))
    assert isinstance(recon, MaskedReconstruction) and recon.num_views == 1
    net = torch.nn.Conv2d(1, 2, 1)
    assert type(SupervisedMethod().build(net, heatmap_stride=4, augment_kwargs={})) is FinetuneObjective
    assert isinstance(MeanTeacherMethod().build(net, heatmap_stride=4, augment_kwargs={}), MeanTeacher)
    with pytest.raises(ValueError, match="runs in rounds"):
        PseudoLabelMethod().build(net, heatmap_stride=4, augment_kwargs={})


def test_the_queue_is_capped_from_the_data(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sslkeypoint.ssl.moco"):
        capped = MoCoV2Method(queue_size=4096).resolved(num_items=100, global_batch=8)
    assert "capped to 92" in caplog.text
    assert capped == MoCoV2Method(queue_size=92, cap_queue=False)
    assert MoCoV2Method(queue_size=4096, cap_queue=False).resolved(100, 8).queue_size == 4096
    assert ReconstructionMethod().resolved(100, 8) == ReconstructionMethod()


def test_the_lightning_modules_compose_the_built_method() -> None:
    cfg = PretrainConfig(image_size=16, encoder_kwargs=TINY, method=ReconstructionMethod(decoder_stride=2, patch_size=4))
    module = PretrainModule(cfg)
    assert isinstance(module.model, MaskedReconstruction)
    # A queue size given to the module (checkpoints of 0.6 stored it so) replaces the method's.
    moco = PretrainModule(PretrainConfig(image_size=16, encoder_kwargs=TINY, method=MoCoV2Method(queue_size=64)),
                          queue_size=12)
    assert moco.model.queue_size == 12 and moco.config.method.queue_size == 12
    ft = FinetuneConfig(input_size=(16, 16), heatmap_size=(8, 8), num_keypoints=2, encoder_kwargs=TINY,
                        method=MeanTeacherMethod(ema_decay=0.5))
    finetune = HeatmapFinetuneModule(ft)
    assert isinstance(finetune.objective, MeanTeacher) and finetune.teacher is finetune.objective.teacher
    assert finetune.teacher_decay == 0.5
    plain = HeatmapFinetuneModule(dataclasses.replace(ft, method=SupervisedMethod()))
    assert plain.teacher is None and plain.teacher_decay is None and plain.predicting_network is plain.model


def test_describe_names_what_differs_from_the_defaults() -> None:
    assert MoCoV2Method(queue_size=8).describe() == "moco_v2(queue_size=8)"
    assert PseudoLabelMethod(teacher=MeanTeacherMethod()).describe() == "pseudo_labels(teacher=mean_teacher())"


def test_legacy_pretrain_fields_become_the_method_they_describe() -> None:
    assert PretrainConfig.from_dict({"queue_size": 8, "split_bn": 2}).method == MoCoV2Method(queue_size=8, split_bn=2)
    dense = PretrainConfig.from_dict({"dense_weight": 0.5, "dense_level": "decoder", "dense_samples": None}).method
    assert dense == DenseCLMethod(weight=0.5, level="decoder", samples=None)
    # dense_weight 0 was plain MoCo v2; the inert dense fields are dropped.
    assert upgrade_pretrain_dict({"dense_weight": 0.0, "dense_level": "encoder"})["method"]["kwargs"] == {}
    with pytest.raises(ValueError, match="both 'method' and the former method fields"):
        PretrainConfig.from_dict({"method": MoCoV2Method().to_dict(), "queue_size": 8})

"""Named starting points for the configs: ``cpu`` (trains in minutes on a laptop) and ``paper``.

The configs' own defaults are the SSL-FetalBioNet paper's schedule (256-px input, U-Net widths
64–512, fine-tuning with Adam 1e-5 for up to 1000 epochs): right on a GPU, hours on a CPU. The
``cpu`` profile is a smaller network and a schedule that moves: 128-px input, 32×32 heatmaps,
U-Net widths 16–128, fine-tuning with Adam 1e-3 and keypoint augmentation for up to 40 epochs,
pre-training for 10 epochs with a MoCo queue of 4,096. It is what ``python -m sslkeypoint`` starts
from unless ``--profile paper`` is given; every field can still be set one by one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROFILES", "profile_defaults"]

_CPU_NETWORK: dict[str, Any] = {"encoder_kwargs": {"widths": [16, 32, 64, 128], "bottleneck_width": 256}}

#: Profile name → config kind (``"finetune"``, ``"pretrain"``, ``"pretrain_stage2"``) → fields.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "finetune": {
            "input_size": [128, 128], "heatmap_size": [32, 32], "sigma": 2.0, **_CPU_NETWORK,
            "lr": 1e-3, "batch_size": 8, "max_epochs": 40, "early_stopping_patience": 10, "lr_patience": 5,
            "augment": True,
        },
        "pretrain": {
            "image_size": [128, 128], **_CPU_NETWORK, "batch_size": 32, "max_epochs": 10,
            "method": {"class": "sslkeypoint.methods.MoCoV2Method", "kwargs": {"queue_size": 4096, "split_bn": 4}},
        },
        "pretrain_stage2": {
            "image_size": [128, 128], **_CPU_NETWORK, "batch_size": 16, "max_epochs": 5,
            "method": {"class": "sslkeypoint.methods.MoCoV2Method", "kwargs": {"queue_size": 1024, "split_bn": 4}},
        },
    },
    "paper": {"finetune": {}, "pretrain": {}, "pretrain_stage2": {}},
}


def profile_defaults(profile: str, kind: str) -> dict[str, Any]:
    """The fields a profile sets for one kind of config (a copy).

    Examples:
        >>> profile_defaults("cpu", "finetune")["lr"], profile_defaults("paper", "finetune")
        (0.001, {})
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}; got {profile!r}")
    import copy

    return copy.deepcopy(PROFILES[profile][kind])

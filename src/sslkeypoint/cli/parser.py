"""The parsers of ``python -m sslkeypoint``, generated from the configs with jsonargparse.

Each command has its own parser, built only when that command runs (``python -m sslkeypoint
--help`` imports no model code). Every field of :class:`~sslkeypoint.configs.PretrainConfig` /
:class:`~sslkeypoint.configs.FinetuneConfig` is an option of the same name (``--max_epochs 30``),
its help the field's documentation; the machine is ``--trainer.*``
(:class:`~sslkeypoint.configs.TrainerConfig`). ``--config FILE`` reads a YAML or JSON file of the
same keys (``--print_config`` writes one), options after it override it. Methods and measures are
objects in the config, given by class and arguments::

    method: {class_path: MeanTeacherMethod, init_args: {weight: 1.0}}
    measures:
      aop: {class_path: AngleMeasure, init_args: {vertex: 0, first: 1, second: 2}}

(a short class name is looked up in :mod:`sslkeypoint.methods` / :mod:`sslkeypoint.measures`; a
dotted path names a class of your own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser

__all__ = ["COMMANDS", "build_parser", "config_fields"]

#: Command → one line of what it does (the order of ``python -m sslkeypoint --help``).
COMMANDS: dict[str, str] = {
    "select": "choose which images to label next (coverage of what they show, then where a model is unsure)",
    "pretrain": "self-supervised pre-training of an encoder or a whole U-Net on unlabelled images or videos",
    "finetune": "train a heatmap keypoint model on labelled images (COCO, DeepLabCut, LabelMe, CSV, ...)",
    "evaluate": "score a model on labelled images: errors per landmark and measure, SDR, missing rate (px, mm)",
    "predict": "landmarks and measures of new images in their own pixels (and mm), as CSV; overlays optional",
    "export": "an ONNX (or TorchScript) model that deploys without this library, its description inside",
}

_RECORDS_HELP = (
    "labelled images: a records file (COCO keypoints JSON, DeepLabCut CollectedData CSV, the project's CSV or "
    "JSON, a LabelMe JSON or a folder of them, or with the 'formats' extra anything sleap-io reads), recognised "
    "by its content"
)
_MODEL_HELP = (
    "the model: a fine-tuning run folder (its best checkpoint), a .ckpt file, or a predictor folder "
    "(predictor.json + model.safetensors)"
)


def config_fields(cls: type) -> list[str]:
    """The field names of a config dataclass."""
    return [f.name for f in dataclasses.fields(cls)]


def _parser(command: str, description: str) -> ArgumentParser:
    parser = ArgumentParser(
        prog=f"python -m sslkeypoint {command}", description=description, exit_on_error=False,
        default_meta=False,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a YAML or JSON file of these options "
                        "(--print_config writes one); options given after it override it")
    return parser


def _progress(parser: ArgumentParser) -> None:
    parser.add_argument("--progress", type=bool | None, default=None,
                        help="progress bars (default: only when the output is a terminal)")


def _run_options(parser: ArgumentParser) -> None:
    parser.add_argument("--out", type=str, required=True, help="the run folder (created; a run there is resumed)")
    parser.add_argument("--resume", type=bool, default=True, help="continue the run in --out; false starts the "
                        "folder over (the files a run wrote there are replaced, nothing else)")
    parser.add_argument("--max_steps", type=int | None, default=None, help="stop after this many optimiser steps")
    parser.add_argument("--profile", type=str, default="cpu", choices=["cpu", "paper"],
                        help="starting values of the settings: cpu (a small network and a schedule that trains in "
                        "minutes on a CPU) or paper (the SSL-FetalBioNet GPU schedule); set any field after it")
    _progress(parser)


def _defaults(kind: str, profile: str) -> dict[str, Any]:
    from sslkeypoint.configs import PretrainConfig, profile_defaults

    base: dict[str, Any] = PretrainConfig.stage2().to_dict() if kind == "pretrain_stage2" else {}
    return {**base, **profile_defaults(profile, kind)}


def _select(parser: ArgumentParser) -> None:
    from sslkeypoint.selection import STRATEGIES

    parser.add_argument("--images", type=str, required=True, help="folder of unlabelled images (searched recursively)")
    parser.add_argument("--budget", type=int, required=True, help="how many images to choose")
    parser.add_argument("--out", type=str, required=True, help="the CSV to write (rank,path,group,cluster,score,reason); "
                        "the contact sheet of the chosen images goes beside it (same name, .png)")
    parser.add_argument("--strategy", type=str, default="coverage", choices=list(STRATEGIES),
                        help="random; coverage (typical clusters of the features); kcenter (farthest first); "
                        "uncertainty (where --model's predictions disagree across augmented views)")
    parser.add_argument("--encoder", type=str | None, default=None, help="features from this encoder: a "
                        "pre-training run's encoder.safetensors or a fine-tuning checkpoint (default: thumbnails)")
    parser.add_argument("--labelled", type=str | None, default=None, help="images labelled already: a text file (one "
                        "path per line) or a CSV whose first column is the path; not chosen again, counted as covered")
    parser.add_argument("--groups", type=str | None, default=None, help="CSV of path,group: near-duplicate images "
                        "(frames of one video, one subject) share a group, chosen once while others remain")
    parser.add_argument("--model", type=str | None, default=None, help="a fine-tuning checkpoint, for --strategy "
                        "uncertainty")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random order, the clustering and the views")
    parser.add_argument("--views", type=int, default=8, help="augmented views per image for --strategy uncertainty")
    _progress(parser)


def _pretrain(parser: ArgumentParser, kind: str, profile: str) -> None:
    from sslkeypoint.configs import PretrainConfig, TrainerConfig

    parser.add_argument("--images", type=str | None, default=None,
                        help="stage 1: folder of unlabelled images (searched recursively)")
    parser.add_argument("--sequences", type=str | None, default=None,
                        help="stage 2: folder with one sub-folder of frames per video (adjacent frames are pairs)")
    parser.add_argument("--init_from", type=str | None, default=None,
                        help="start from a stage-1 run: its last.ckpt or encoder.safetensors")
    _run_options(parser)
    parser.add_class_arguments(PretrainConfig, skip={"method"}, sub_configs=False, instantiate=False)
    parser.add_argument("--method", type=str | dict | None, default=None,
                        help="the pre-training method (sslkeypoint.methods): MoCoV2Method (default), DenseCLMethod or "
                        "ReconstructionMethod, as a name or {class_path: ..., init_args: {...}}")
    parser.add_class_arguments(TrainerConfig, "trainer", sub_configs=False, instantiate=False)
    parser.set_defaults(_defaults(kind, profile))


def _finetune(parser: ArgumentParser, profile: str) -> None:
    from sslkeypoint.configs import FinetuneConfig, TrainerConfig

    parser.add_argument("--records", type=str, required=True, help=_RECORDS_HELP)
    parser.add_argument("--format", type=str | None, default=None,
                        choices=[None, "csv", "json", "coco", "deeplabcut", "labelme", "sleap"],
                        help="read --records as this format instead of recognising it")
    parser.add_argument("--val_records", type=str | None, default=None, help="explicit validation records (else "
                        "val_fraction of the records, whole groups on one side when the records have groups)")
    parser.add_argument("--unlabelled", type=str | None, default=None, help="folder of unlabelled images, for a "
                        "method that learns from them (MeanTeacherMethod, PseudoLabelMethod)")
    _run_options(parser)
    parser.add_class_arguments(FinetuneConfig, skip={"method", "measures", "num_keypoints"}, sub_configs=False,
                               instantiate=False)
    parser.add_argument("--method", type=str | dict | None, default=None,
                        help="the fine-tuning method (sslkeypoint.methods): SupervisedMethod (default), "
                        "MeanTeacherMethod or PseudoLabelMethod, as a name or {class_path: ..., init_args: {...}}")
    parser.add_argument("--measures", type=dict | None, default=None,
                        help="named measures scored in validation and given by predict, e.g. {aop: {class_path: "
                        "AngleMeasure, init_args: {vertex: 0, first: 1, second: 2}}} (sslkeypoint.measures)")
    parser.add_class_arguments(TrainerConfig, "trainer", sub_configs=False, instantiate=False)
    parser.set_defaults({**_defaults("finetune", profile), "trainer.deterministic": True})


def _evaluate(parser: ArgumentParser) -> None:
    parser.add_argument("--model", type=str, required=True, help=_MODEL_HELP)
    parser.add_argument("--records", type=str, required=True, help=_RECORDS_HELP)
    parser.add_argument("--format", type=str | None, default=None, help="read --records as this format")
    parser.add_argument("--out", type=str | None, default=None, help="folder for metrics.json, per_image.csv, "
                        "table.txt and errors.png")
    parser.add_argument("--sdr_radii", type=list[float], default=[5.0, 10.0, 20.0, 40.0],
                        help="radii of the success detection rate, px (the same numbers in mm for images with a "
                        "pixel size)")
    _progress(parser)


def _predict(parser: ArgumentParser) -> None:
    parser.add_argument("--model", type=str, required=True, help=_MODEL_HELP)
    parser.add_argument("--images", type=str, required=True, help="an image file, or a folder (searched recursively)")
    parser.add_argument("--out", type=str, required=True, help="the CSV to write: file, <landmark>_x, _y, _score in "
                        "each image's own pixels, then each measure (in mm for lengths when pixel sizes are known)")
    parser.add_argument("--pixel_size", type=str | None, default=None, help="pixel size in mm: one number for every "
                        "image, or a CSV of filename,pixel_size_mm")
    parser.add_argument("--overlays", type=str | None, default=None, help="also draw the predictions and measures on "
                        "each image, as PNG files in this folder")
    parser.add_argument("--batch_size", type=int, default=16, help="images per forward pass")
    _progress(parser)


def _export(parser: ArgumentParser) -> None:
    parser.add_argument("--model", type=str, required=True, help=_MODEL_HELP)
    parser.add_argument("--out", type=str, required=True, help="the file to write (.onnx, or .pt for TorchScript)")
    parser.add_argument("--original_pixels", type=bool, default=True, help="ONNX: the graph takes an image at its "
                        "own size and gives keypoints in its pixels (resize inside); false: a resized input and "
                        "keypoints in input pixels")
    parser.add_argument("--check_images", type=str | None, default=None, help="a folder of images: run the exported "
                        "model on them with onnxruntime and compare with the model's own predictions")


def build_parser(command: str, *, profile: str = "cpu", stage2: bool = False) -> ArgumentParser:
    """The parser of one command of ``python -m sslkeypoint``.

    Args:
        command: One of :data:`COMMANDS`.
        profile: The starting values of the configs (``"cpu"`` or ``"paper"``; see
            :mod:`sslkeypoint.configs.profiles`).
        stage2: ``pretrain`` only: start from the stage-2 values (videos).

    Raises:
        ValueError: On an unknown command.
    """
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; the commands are {', '.join(COMMANDS)}")
    parser = _parser(command, COMMANDS[command])
    if command == "select":
        _select(parser)
    elif command == "pretrain":
        _pretrain(parser, "pretrain_stage2" if stage2 else "pretrain", profile)
    elif command == "finetune":
        _finetune(parser, profile)
    elif command == "evaluate":
        _evaluate(parser)
    elif command == "predict":
        _predict(parser)
    else:
        _export(parser)
    return parser


def usage() -> str:
    """The text of ``python -m sslkeypoint --help`` (no model code imported)."""
    width = max(len(c) for c in COMMANDS)
    lines = [
        "usage: python -m sslkeypoint COMMAND [options]   (python -m sslkeypoint COMMAND --help for its options)",
        "",
        "Self-supervised pre-training and heatmap keypoint detection: label few images, learn from many.",
        "",
        "commands:",
        *(f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items()),
        "",
        "Every command reads --config FILE (YAML or JSON) and writes one with --print_config.",
        "A mistake in the input ends with one line 'error: ...' and exit status 2; --debug (anywhere on",
        "the line) also prints where it was raised.",
    ]
    return "\n".join(lines)


def first_value(argv: Sequence[str], option: str) -> str | None:
    """The value of ``--option X`` / ``--option=X`` in ``argv`` (the last one given), or ``None``."""
    value = None
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(option + "="):
            value = arg.split("=", 1)[1]
    return value

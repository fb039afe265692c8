"""The command line, ``python -m sslkeypoint pretrain|finetune|select``, generated from the config dataclasses.

Every field of :class:`~sslkeypoint.configs.PretrainConfig` / :class:`~sslkeypoint.configs.FinetuneConfig`
and of :class:`~sslkeypoint.configs.TrainerConfig` is an option of the same name
(``max_epochs`` → ``--max-epochs``): numbers and strings as they are, pairs and lists as several
values (``--input-size 256 256``), switches as ``--augment`` / ``--no-augment``, dicts (encoder
arguments, measures) as JSON. ``--config FILE.json`` reads fields from a file first; options
override it. An option left out keeps the config's default, so the help lists every setting with
its documented default and nothing is copied field by field.

``select`` chooses which images to label next (:func:`~sslkeypoint.selection.select_images`) and
writes the ordered list (CSV) and a contact sheet of the chosen images.

Typical use::

    python -m sslkeypoint pretrain --images frames/ --out runs/stage1 --image-size 128 128 \\
        --encoder-kwargs '{"widths": [16, 32, 64, 128], "bottleneck_width": 256}'
    python -m sslkeypoint finetune --records labels.csv --out runs/ft \\
        --init-encoder runs/stage1/encoder.safetensors \\
        --measures '{"aop": {"class": "sslkeypoint.measures.AngleMeasure",
                              "kwargs": {"vertex": 0, "first": 1, "second": 2}}}'
    python -m sslkeypoint select --images frames/ --budget 50 --encoder runs/stage1/encoder.safetensors \
        --out to_label.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig

__all__ = ["add_config_arguments", "build_parser", "config_from_arguments", "main"]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected JSON, got {text!r} ({err.msg})") from None


def _devices(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _parts(annotation: Any) -> list[Any]:
    """The members of a union annotation (``None`` dropped), else ``[annotation]``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _argument(annotation: Any) -> dict[str, Any]:
    """argparse keyword arguments for a field of this type."""
    parts = _parts(annotation)
    if len(parts) > 1:
        sequences = [p for p in parts if typing.get_origin(p) in (tuple, list)]
        if sequences and typing.get_origin(sequences[0]) is tuple and all(p in (int, float) for p in parts if p not in sequences):
            return {**_argument(sequences[0]), "nargs": "+"}  # a pair, or one number meaning both
        if all(p in (int, str) or typing.get_origin(p) is list for p in parts):
            return {"type": _devices, "metavar": "VALUE"}
        return {"type": _json, "metavar": "JSON"}
    (kind,) = parts
    origin = typing.get_origin(kind)
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if kind in (int, float, str):
        return {"type": kind}
    if origin in (tuple, list):
        args = [a for a in typing.get_args(kind) if a is not Ellipsis]
        item = args[0] if args else str
        nargs: Any = len(args) if origin is tuple and Ellipsis not in typing.get_args(kind) else "+"
        return {"type": item if item in (int, float, str) else str, "nargs": nargs}
    return {"type": _json, "metavar": "JSON"}


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, title: str, skip: Sequence[str] = ()) -> None:
    """Add one option per field of the dataclass ``cls`` (default ``None``: keep the config's default).

    Args:
        parser: The parser.
        cls: A config dataclass.
        title: Title of the option group in ``--help``.
        skip: Fields not to expose.
    """
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        if f.default is not dataclasses.MISSING:
            default: Any = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "required"
        group.add_argument(_flag(f.name), dest=f.name, default=None, help=f"default: {default!r}", **_argument(hints[f.name]))


def config_from_arguments(cls: type, args: argparse.Namespace, base: dict[str, Any] | None = None) -> Any:
    """Build ``cls`` from ``base`` (e.g. a ``--config`` file) overridden by the options given.

    Raises:
        ValueError: From the config's own checks, or on unknown fields in ``base``.
    """
    data = dict(base or {})
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if isinstance(value, list):
            scalar_too = any(p in (int, float) for p in _parts(hints[f.name]))
            value = value[0] if len(value) == 1 and scalar_too else tuple(value)
        if value is not None:
            data[f.name] = value
    return cls.from_dict(data)  # type: ignore[attr-defined]


def _read_config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of config fields; got {type(data).__name__}")
    return data


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m sslkeypoint`` with its ``pretrain``, ``finetune`` and ``select`` commands."""
    parser = argparse.ArgumentParser(
        prog="python -m sslkeypoint",
        description="Self-supervised pre-training, heatmap keypoint fine-tuning, and choosing which images to label.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    pre = sub.add_parser("pretrain", help="self-supervised pre-training (stage 1 on images, stage 2 on videos)",
                         description="Self-supervised pre-training of an encoder, or of a whole U-Net (SSL-FetalBioNet "
                         "stage 1 or 2). The method is MoCo v2 unless --method gives another "
                         "(sslkeypoint.methods: DenseCLMethod, ReconstructionMethod), as "
                         "'{\"class\": \"sslkeypoint.methods.ReconstructionMethod\", \"kwargs\": {}}'.")
    data = pre.add_mutually_exclusive_group(required=True)
    data.add_argument("--images", type=Path, help="stage 1: folder of unlabelled images (searched recursively)")
    data.add_argument("--sequences", type=Path, help="stage 2: folder with one sub-folder of frames per video")
    pre.add_argument("--out", type=Path, required=True, help="run folder")
    pre.add_argument("--init-from", type=Path, help="stage-1 last.ckpt or encoder.safetensors to start from")
    pre.add_argument("--config", type=Path, help="JSON file of PretrainConfig fields (options override it)")
    _run_options(pre)
    add_config_arguments(pre, PretrainConfig, "pre-training (PretrainConfig; --stage defaults to 1 with "
                         "--images and 2 with --sequences)")
    add_config_arguments(pre, TrainerConfig, "machine (TrainerConfig)")

    ft = sub.add_parser(
        "finetune", help="heatmap fine-tuning on labelled images",
        description="Fine-tune a heatmap U-Net on labelled images (stage 3 of SSL-FetalBioNet). Records file: "
        "CSV with a header, first column the image path, then x1,y1,x2,y2,... or one '(x, y)' column per "
        "landmark; or JSON [{\"path\": ..., \"keypoints\": [[x, y], ...]}, ...]. Coordinates in original "
        "image pixels.",
    )
    ft.add_argument("--records", type=Path, required=True, help="records file (.csv or .json)")
    ft.add_argument("--val-records", type=Path, help="explicit validation records (else the val_fraction split)")
    ft.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, logs, summary.json)")
    ft.add_argument("--config", type=Path, help="JSON file of FinetuneConfig fields (options override it)")
    _run_options(ft)
    add_config_arguments(ft, FinetuneConfig, "fine-tuning (FinetuneConfig; num_keypoints and keypoint_names "
                         "default to the records file's)")
    add_config_arguments(ft, TrainerConfig, "machine (TrainerConfig)")

    from sslkeypoint.selection import STRATEGIES

    sel = sub.add_parser(
        "select", help="choose which images to label next",
        description="Choose which unlabelled images to label next, in order, with the reason for each; writes "
        "the list (CSV: rank,path,group,cluster,score,reason) and a contact sheet of the chosen images (PNG "
        "beside it).",
    )
    sel.add_argument("--images", type=Path, required=True, help="folder of unlabelled images (searched recursively)")
    sel.add_argument("--budget", type=int, required=True, help="how many images to choose")
    sel.add_argument("--out", type=Path, required=True, help="the CSV to write (the contact sheet: same name, .png)")
    sel.add_argument("--strategy", choices=STRATEGIES, default="coverage",
                     help="random; coverage (typical clusters of the features, default); kcenter (farthest first); "
                          "uncertainty (where --model's predictions disagree across augmented views)")
    sel.add_argument("--encoder", type=Path, help="features from this encoder: a pre-training run's "
                     "encoder.safetensors or a fine-tuning checkpoint (default: image thumbnails)")
    sel.add_argument("--labelled", type=Path, help="images labelled already: a text file (one path per line) or a CSV "
                     "whose first column is the path; they are not chosen again and count as covered")
    sel.add_argument("--groups", type=Path, help="CSV of path,group: near-duplicate images (frames of one video, one "
                     "subject) share a group, which is chosen once while others remain")
    sel.add_argument("--model", type=Path, help="a fine-tuning checkpoint, for --strategy uncertainty")
    sel.add_argument("--seed", type=int, default=0, help="seed of the random order, the clustering and the views")
    sel.add_argument("--views", type=int, default=8, help="augmented views per image for --strategy uncertainty")
    sel.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-steps", type=int, help="stop after this many optimiser steps in total")
    parser.add_argument("--no-resume", action="store_true", help="start the run folder over: the files a run wrote there are replaced (without it, a "
                        "run resumes, and a folder holding a run with other settings or data is refused)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _trainer(args: argparse.Namespace, **defaults: Any) -> TrainerConfig:
    base = {k: v for k, v in defaults.items() if getattr(args, k, None) is None}
    return config_from_arguments(TrainerConfig, args, base)  # type: ignore[no-any-return]


def _pretrain(args: argparse.Namespace) -> int:
    from sslkeypoint.recipes import run_pretraining

    base = _read_config_file(args.config)
    base.setdefault("stage", 1 if args.images is not None else 2)
    defaults = PretrainConfig.stage2().to_dict() if base["stage"] == 2 else {}
    config = config_from_arguments(PretrainConfig, args, {**defaults, **base})
    result = run_pretraining(
        config,
        images=args.images,
        sequences=args.sequences,
        out_dir=args.out,
        init_from=args.init_from,
        trainer=_trainer(args),
        resume=not args.no_resume,
        max_steps=args.max_steps,
        progress=not args.no_progress,
    )
    print(f"encoder written to {result.encoder_path} after {result.global_step} steps")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from sslkeypoint.data import read_records
    from sslkeypoint.recipes import run_finetuning

    records, names = read_records(args.records)
    if not records:
        raise ValueError(f"{args.records}: no records")
    base = _read_config_file(args.config)
    base.setdefault("num_keypoints", records[0].num_keypoints)
    if names is not None:
        base.setdefault("keypoint_names", list(names))
    config = config_from_arguments(FinetuneConfig, args, base)
    source: Any = records
    if args.val_records is not None:
        source = (records, read_records(args.val_records)[0])
    result = run_finetuning(
        config,
        source,
        args.out,
        trainer=_trainer(args, deterministic=True),
        resume=not args.no_resume,
        max_steps=args.max_steps,
        progress=not args.no_progress,
    )
    print(json.dumps({"best_checkpoint": str(result.best_checkpoint), "best_metrics": result.best_metrics}, indent=2))
    return 0


def _listed(path: Path, images: Path) -> list[Path]:
    """The image files a list file names (one per line, or a CSV's first column; a header is skipped).

    Relative paths are found under ``images`` first, then beside the list file.
    """
    import csv

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    rows = [row for row in csv.reader(path.read_text().splitlines()) if row and row[0].strip()]
    if rows and rows[0][0].strip().lower() in ("path", "filename", "file", "image"):
        rows = rows[1:]
    out = []
    for row in rows:
        name = Path(row[0].strip())
        if not name.is_absolute():
            name = images / name if (images / name).exists() else path.parent / name
        out.append(name)
    return out


def _groups(path: Path, images: Path, files: Sequence[Path]) -> list[str]:
    """One group per image file from a ``path,group`` CSV; every image must have one."""
    import csv

    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if rows and rows[0][0].strip().lower() in ("path", "filename", "file", "image"):
        rows = rows[1:]
    table: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        if len(row) < 2:
            raise ValueError(f"{path} row {number}: expected path,group; got {row}")
        name = Path(row[0].strip())
        table[str((images / name if not name.is_absolute() else name).resolve())] = row[1].strip()
    missing = [f for f in files if str(f.resolve()) not in table]
    if missing:
        raise ValueError(f"{path} gives no group for {len(missing)} images, e.g. {missing[0]}")
    return [table[str(f.resolve())] for f in files]


def _select(args: argparse.Namespace) -> int:
    from sslkeypoint.data import list_images
    from sslkeypoint.selection import contact_sheet, select_images

    if not args.images.is_dir():
        raise FileNotFoundError(f"--images {args.images}: not a folder of images")
    files = list_images(args.images)
    if not files:
        raise ValueError(f"--images {args.images}: no image files")
    labelled = _listed(args.labelled, args.images) if args.labelled is not None else []
    groups = _groups(args.groups, args.images, files) if args.groups is not None else None
    selection = select_images(files, args.budget, strategy=args.strategy, groups=groups, labelled=labelled,
                              encoder=args.encoder, model=args.model, seed=args.seed, views=args.views,
                              progress=not args.no_progress)
    csv_path = selection.write_csv(args.out)
    sheet = contact_sheet(selection, csv_path.with_suffix(".png")) if len(selection) else None
    print(f"{len(selection)} of {selection.candidates} images chosen ({args.strategy}"
          + (f", features: {selection.features}" if selection.features else "") + f"): {csv_path}"
          + (f", contact sheet {sheet}" if sheet else ""))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m sslkeypoint`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    A bad records or config file, or a run folder that holds another run, ends with a one-line
    error (exit status 2), not a traceback. A run stopped by ``SIGTERM`` or ``SIGINT`` exits with
    status 143 or 130 after saying what was saved (:class:`~sslkeypoint.runs.RunInterrupted`).
    """
    args = build_parser().parse_args(argv)
    commands = {"pretrain": _pretrain, "finetune": _finetune, "select": _select}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

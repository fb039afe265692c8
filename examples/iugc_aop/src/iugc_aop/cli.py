"""Command line of the IUGC example: ``python -m iugc_aop <command> [options]``.

Each command is a :class:`Command` (a name, a function that adds its options to an argparse
sub-parser and a function that runs it) registered with :func:`register`; :func:`main` builds the
parser from the registry. A new command is one more ``register(Command(...))`` call in the module
that implements it, listed in :data:`COMMAND_MODULES` so that it is imported.

Commands that read data take ``--data DIR`` (the IUGC 2025 root: ``Training/``, ``Validation/``,
``Testing/``); without it they use synthetic data in the same layout, written once to
``--synthetic-dir`` (see :func:`resolve_data_root`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iugc_aop.synth import SynthConfig, SynthResult

__all__ = [
    "COMMAND_MODULES",
    "Command",
    "add_data_arguments",
    "build_parser",
    "commands",
    "main",
    "register",
    "resolve_data_root",
]

#: Modules whose import registers commands (in this order in ``--help``).
COMMAND_MODULES: list[str] = ["iugc_aop.cli", "iugc_aop.predict", "iugc_aop.commands"]

_REGISTRY: dict[str, Command] = {}


@dataclass(frozen=True)
class Command:
    """One sub-command.

    Attributes:
        name: What follows ``python -m iugc_aop``.
        help: One line shown in ``--help``.
        configure: Adds the command's options to its sub-parser.
        run: Runs the command with the parsed options; returns the exit status.
        aliases: Other names for the command.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    aliases: tuple[str, ...] = ()


def register(command: Command) -> Command:
    """Add a command to the command line (a later registration of the same name replaces it)."""
    _REGISTRY[command.name] = command
    return command


def commands() -> dict[str, Command]:
    """The registered commands, after importing :data:`COMMAND_MODULES`."""
    for module in COMMAND_MODULES:
        importlib.import_module(module)
    return dict(_REGISTRY)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser with one sub-parser per registered command."""
    parser = argparse.ArgumentParser(
        prog="python -m iugc_aop",
        description="Angle of Progression on IUGC 2025 transperineal ultrasound (sslkeypoint "
        "worked example).",
        epilog="A mistake in the input ends with one line 'error: ...' and exit status 2; --debug (anywhere "
        "on the line) also prints where it was raised.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for cmd in commands().values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help, aliases=list(cmd.aliases))
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the chosen command; returns the exit status.

    Bad input ends with a one-line ``error: ...`` on stderr and status 2, not a traceback: a
    malformed data folder, a folder that holds files the command will not overwrite (synthetic
    data, a submission, a run or stage folder made with other settings or data), an unusable
    weight file, a missing input, a full or read-only disk
    (:func:`sslkeypoint.cli.boundary.run_command`); ``--debug``, anywhere on the line, prints the
    traceback too. A training run stopped by ``SIGTERM`` or ``SIGINT`` exits with
    143 or 130 after saying what was saved (:class:`sslkeypoint.runs.RunInterrupted`).
    """
    from sslkeypoint.cli import DEBUG_FLAG
    from sslkeypoint.cli.boundary import run_command

    given = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in given
    args = build_parser().parse_args([a for a in given if a != DEBUG_FLAG])
    if hasattr(args, "no_progress") and not sys.stderr.isatty():
        args.no_progress = True  # progress bars only on a terminal: they fill redirected logs
    return run_command(lambda: args._run(args), debug=debug, program="python -m iugc_aop")


# --------------------------------------------------------------------------------------------
# Shared options
# --------------------------------------------------------------------------------------------

SIZES = ("smoke", "quick", "full")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data``, ``--synthetic-dir``, ``--synthetic-size``, ``--seed`` for data-reading commands."""
    g = parser.add_argument_group("data")
    g.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="IUGC 2025 root folder (Training/, Validation/, Testing/) or PSFHS folder "
                   "(images/ + masks/, or image_mha/ + label_mha/); default: synthetic IUGC-format data")
    g.add_argument("--synthetic-dir", type=Path, default=Path("iugc_synthetic"), metavar="DIR",
                   help="where synthetic data is written when --data is not given "
                   "(reused when already there; a folder holding other files is refused; "
                   "default: %(default)s)")
    g.add_argument("--synthetic-size", choices=SIZES, default="quick",
                   help="size of the synthetic data (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    g.add_argument("--no-progress", action="store_true", help="hide progress bars (shown only on a terminal)")


def resolve_data_root(args: argparse.Namespace) -> Path:
    """The data root of a command: ``--data``, or synthetic data written on first use.

    Synthetic data in ``--synthetic-dir`` is reused when its ``synthetic_truth.json`` records the
    same size and seed; otherwise it is (re)written, with its ``contact_sheet.png``. A folder that
    holds files the generator did not write is never written into.

    Raises:
        iugc_aop.synth.write.SyntheticFolderError: If ``--synthetic-dir`` holds files but no
            synthetic data set (nothing is written; :func:`main` prints it and exits with 2).
    """
    if args.data is not None:
        return Path(args.data)
    from iugc_aop.synth import SynthConfig
    from iugc_aop.synth.write import check_synthetic_folder, holds_synthetic_iugc

    out = Path(args.synthetic_dir)
    config = SynthConfig.preset(args.synthetic_size)
    if not holds_synthetic_iugc(out, config, args.seed):
        again = {"complete": "rewriting", "interrupted": "rewriting (after an interrupted run)"}
        state = check_synthetic_folder(out)
        print(f"{again.get(state, 'writing')} synthetic IUGC-format data ({args.synthetic_size}, "
              f"seed {args.seed}) to {out}", file=sys.stderr)
        _write_synthetic(out, config, args.seed, progress=not args.no_progress,
                         workers=_default_workers(), sheet=True)
    return out


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _write_synthetic(
    out: Path, config: SynthConfig, seed: int, *, progress: bool, workers: int, sheet: bool
) -> tuple[SynthResult, Path | None]:
    """Write synthetic data, then (``sheet``) draw ``contact_sheet.png`` at its root."""
    from iugc_aop.synth import write_synthetic_iugc

    res = write_synthetic_iugc(out, config, seed=seed, progress=progress, workers=workers)
    if not sheet:
        return res, None
    from iugc_aop.plotting import contact_sheet

    return res, contact_sheet(res.root, res.root / "contact_sheet.png")


# --------------------------------------------------------------------------------------------
# synth
# --------------------------------------------------------------------------------------------


def _configure_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="root folder to write: new, empty, or synthetic data written before "
                   "(a folder holding other files is refused)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    p.add_argument("--size", choices=SIZES, default="quick",
                   help="preset size (default: %(default)s); the count options override it")
    counts = p.add_argument_group("counts (SynthConfig fields; default: the preset's)")
    for flag, field, what in (("train", "train", "labelled training images"), ("val", "validation", "validation images"),
                              ("test", "testing", "testing images"), ("sequences", "sequences", "unlabelled videos"),
                              ("frames", "frames", "frames per video"), ("references", "references", "ExampleN.jpg images"),
                              ("duplicates", "test_duplicates", "duplicated testing images")):
        counts.add_argument(f"--{flag}", dest=f"count_{field}", type=int, default=None, metavar="N", help=what)
    p.add_argument("--workers", type=int, default=_default_workers(),
                   help="rendering processes (default: %(default)s)")
    p.add_argument("--no-contact-sheet", action="store_true", help="skip contact_sheet.png")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (shown only on a terminal)")


def _run_synth(args: argparse.Namespace) -> int:
    from iugc_aop.synth import SynthConfig

    overrides = {key[len("count_"):]: value for key, value in vars(args).items()
                 if key.startswith("count_") and value is not None}
    try:
        config = SynthConfig.preset(args.size, **overrides)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res, sheet = _write_synthetic(args.out, config, args.seed, progress=not args.no_progress,
                                  workers=args.workers, sheet=not args.no_contact_sheet)
    print(f"wrote {res.images} images ({res.png} PNG inside .jpg) to {res.root} "
          f"in {res.seconds:.1f} s")
    if sheet is not None:
        print(f"contact sheet: {sheet}")
    return 0


register(Command("synth", "write synthetic data in the IUGC 2025 layout", _configure_synth,
                 _run_synth))


# --------------------------------------------------------------------------------------------
# inspect
# --------------------------------------------------------------------------------------------


def _configure_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, metavar="DIR", help="IUGC 2025 or PSFHS root folder")
    p.add_argument("--parts", nargs="+", default=None,
                   choices=("train", "unlabeled", "validation", "testing"),
                   help="parts to read (default: all)")
    p.add_argument("--no-image-check", action="store_true",
                   help="do not decode images (only hash them for duplicates)")
    p.add_argument("--decode-frames", action="store_true",
                   help="decode every unlabelled frame completely, as pre-training reads it "
                   "(implied by --strict)")
    p.add_argument("--strict", action="store_true",
                   help="also decode every unlabelled frame; exit with status 1 when any error or "
                   "warning is found")
    p.add_argument("--contact-sheet", type=Path, default=None, metavar="PNG",
                   help="also draw a contact sheet")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (shown only on a terminal)")


def _run_inspect(args: argparse.Namespace) -> int:
    from iugc_aop.formats import PARTS, is_psfhs, read_iugc

    if is_psfhs(args.data):  # the example's split of PSFHS: every mask measured, groups, testing cases
        from iugc_aop.stages.common import load_dataset

        ds = load_dataset(args.data, progress=not args.no_progress)
    else:
        ds = read_iugc(args.data, parts=args.parts or PARTS, check_images=not args.no_image_check,
                       check_frames=args.decode_frames or (args.strict and not args.no_image_check),
                       progress=not args.no_progress)
    print(ds.summary())
    if args.contact_sheet is not None:
        from iugc_aop.plotting import contact_sheet

        print(f"contact sheet: {contact_sheet(ds, args.contact_sheet)}")
    serious = [p for p in ds.problems if p.severity in ("error", "warning")]
    return 1 if args.strict and serious else 0


register(Command("inspect", "read a data folder and report what was found and any problems",
                 _configure_inspect, _run_inspect, aliases=("check-data",)))

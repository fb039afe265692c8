"""The command line, ``python -m sslkeypoint COMMAND``: select, pretrain, finetune, evaluate, predict, export.

Options are generated from the configs with jsonargparse (:mod:`sslkeypoint.cli.parser`); each
command reads ``--config FILE.yaml`` (or JSON) and writes its whole configuration with
``--print_config``. Typical use, from a labelling tool's COCO export to a deployable model::

    python -m sslkeypoint finetune --records coco.json --out runs/ft \\
        --measures '{span: {class_path: DistanceMeasure, init_args: {first: 0, second: 1}}}'
    python -m sslkeypoint evaluate --model runs/ft --records test.json --out runs/ft/test
    python -m sslkeypoint predict --model runs/ft --images new/ --out predictions.csv
    python -m sslkeypoint export --model runs/ft --out model.onnx --check_images new/

Option names take underscores or dashes (``--max_epochs`` or ``--max-epochs``); switches take
``true`` / ``false`` or ``--no-NAME``. Settings start from the ``cpu`` profile (a small network that trains in minutes on a CPU);
``--profile paper`` starts from the SSL-FetalBioNet GPU schedule (:mod:`sslkeypoint.configs.profiles`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from sslkeypoint.cli.parser import COMMANDS, build_parser, first_value, usage

__all__ = ["COMMANDS", "DEBUG_FLAG", "build_parser", "main", "normalise"]

#: Anywhere on a command line: print the traceback of an ordinary error too.
DEBUG_FLAG = "--debug"


#: Switches that ``--no-NAME`` turns off (``--NAME false``).
_SWITCHES = frozenset({"progress", "resume", "augment", "init_decoder", "original_pixels", "plateau"})


def normalise(argv: Sequence[str]) -> list[str]:
    """Options as the parser spells them: dashes inside a name become underscores (``--max-epochs``
    is ``--max_epochs``) and ``--no-progress`` is ``--progress=false``; values are left alone.

    Examples:
        >>> normalise(["--max-epochs", "3", "--no-progress", "--records=a-b.csv"])
        ['--max_epochs', '3', '--progress=false', '--records=a-b.csv']
    """
    out = []
    for arg in argv:
        if not arg.startswith("--") or len(arg) == 2:
            out.append(arg)
            continue
        name, eq, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if not eq and name.startswith("no_") and name[3:] in _SWITCHES:
            out.append(f"--{name[3:]}=false")
        else:
            out.append(f"--{name}{eq}{value}")
    return out


def _parse(command: str, argv: list[str]):  # type: ignore[no-untyped-def]
    """Parse ``argv`` with the command's parser, rebuilt when the profile or the stage (from a config
    file, say) changes the starting values."""
    profile = first_value(argv, "--profile") or "cpu"
    parser = build_parser(command, profile=profile if profile in ("cpu", "paper") else "cpu")
    cfg = parser.parse_args(argv)
    stage2 = command == "pretrain" and cfg.get("sequences") is not None
    chosen = cfg.get("profile", "cpu")
    if stage2 or chosen != profile:
        cfg = build_parser(command, profile=chosen, stage2=stage2).parse_args(argv)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m sslkeypoint`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    An ordinary mistake (a bad option, a missing or malformed file, a run folder that holds another
    run, a full or read-only disk) ends with a one-line ``error:`` and exit status 2, not a
    traceback (:func:`~sslkeypoint.cli.boundary.run_command`); ``--debug``, anywhere on the line,
    prints the traceback too. A run stopped by
    ``SIGTERM`` or ``SIGINT`` exits with status 143 or 130 after saying what was saved
    (:class:`~sslkeypoint.runs.RunInterrupted`).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    args = [a for a in args if a != DEBUG_FLAG]
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from sslkeypoint._version import __version__

        print(f"sslkeypoint {__version__}")
        return 0
    command = args[0]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; the commands are {', '.join(COMMANDS)} "
              "(python -m sslkeypoint --help)", file=sys.stderr)
        return 2
    from jsonargparse import ArgumentError

    from sslkeypoint.cli.boundary import run_command
    from sslkeypoint.cli.commands import RUNNERS

    def parse_and_run() -> int:
        try:
            cfg = _parse(command, normalise(args[1:]))
        except SystemExit as stop:  # --help, --print_config
            return int(stop.code or 0)
        except ArgumentError as err:
            message = re.sub(r'Parser key "([\w.]+)":', r"--\1:", " ".join(str(err).split()))
            config = first_value(normalise(args[1:]), "--config")
            if config is not None and ("parsing config" in message or "is not accepted" in message):
                message = f"--config {config}: " + message.replace('"<unicode string>"', config)
            print(f"error: {message} (python -m sslkeypoint {command} --help)", file=sys.stderr)
            return 2
        return RUNNERS[command](cfg)

    return run_command(parse_and_run, debug=debug)

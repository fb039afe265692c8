"""The command line: ``python -m hc18_biometry demo`` and ``python -m hc18_biometry predict``.

Both run behind the library's error boundary (:func:`sslkeypoint.cli.boundary.run_command`): a
mistake in the input is one line ``error: ...`` and exit status 2, ``--debug`` anywhere on the
line prints the traceback too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def _labels(text: str) -> int | None:
    if text == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a label budget is a whole number >= 1 or 'all'; got {text!r}")
    return value


def _demo(args: argparse.Namespace) -> int:
    from hc18_biometry.demo import run_demo

    run_demo(args.data, args.out, labels=args.labels, profile=args.profile, methods=args.methods, seed=args.seed,
             progress=not args.no_progress, say=lambda line: print(line, flush=True))
    return 0


def _predict(args: argparse.Namespace) -> int:
    from hc18_biometry.predict import predict_folder

    out = predict_folder(args.model, args.images, args.pixel_size, args.out, progress=not args.no_progress)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of both commands."""
    from hc18_biometry.pipeline import METHODS, PROFILES, RECOMMENDED

    parser = argparse.ArgumentParser(prog="python -m hc18_biometry", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="choose labels, pre-train, fine-tune, evaluate by subject, report, save the model")
    demo.add_argument("--data", required=True, help="HC18 folder (images/ + masks/ + labels.csv, or the challenge's layout)")
    demo.add_argument("--labels", type=_labels, default=50, help="labelled training images, or 'all' (default 50)")
    demo.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="sizes and schedule (default quick)")
    demo.add_argument("--out", required=True, help="output folder (report.md, metrics.json, model/)")
    demo.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=["unet", RECOMMENDED],
                      help=f"fine-tuning methods (default: unet {RECOMMENDED})")
    demo.add_argument("--seed", type=int, default=0, help="seed of the choice of labels and of training")
    demo.set_defaults(_run=_demo)
    pred = sub.add_parser("predict", help="HC, BPD and OFD in mm for every image of a folder")
    pred.add_argument("--model", required=True, help="the demo's OUT/model (or a fine-tuning checkpoint)")
    pred.add_argument("--images", required=True, help="folder of images")
    pred.add_argument("--pixel-size", required=True, help="CSV filename,pixel_size_mm")
    pred.add_argument("--out", required=True, help="CSV to write: filename,hc_mm,bpd_mm,ofd_mm")
    pred.set_defaults(_run=_predict)
    for p in (demo, pred):
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the command; returns the exit status."""
    from sslkeypoint.cli import DEBUG_FLAG
    from sslkeypoint.cli.boundary import run_command

    given = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in given
    args = build_parser().parse_args([a for a in given if a != DEBUG_FLAG])
    if not sys.stderr.isatty():
        args.no_progress = True  # progress bars only on a terminal: they fill redirected logs
    return run_command(lambda: args._run(args), debug=debug, program="python -m hc18_biometry")

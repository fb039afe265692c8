"""Pipeline commands of ``python -m iugc_aop``: pretrain, select, pretrain-temporal, finetune, evaluate, demo.

Every command takes ``--work DIR`` (the run folder, also spelled ``--out``), ``--profile``
(:mod:`iugc_aop.profiles`), the data options of :func:`iugc_aop.cli.add_data_arguments` and the
Lightning pass-through options ``--accelerator``, ``--devices``, ``--strategy``, ``--precision``.
Without ``--data`` a command uses the data recorded in ``WORK/run.json`` by an earlier command of
the same run, else synthetic data (see :func:`iugc_aop.cli.resolve_data_root`). Stages skip work
already done; ``--force`` redoes it.

Typical session::

    python -m iugc_aop demo --profile quick --out runs/demo
    python -m iugc_aop pretrain --data /data/IUGC2025 --work runs/iugc --profile paper \\
        --accelerator gpu --devices 4 --strategy ddp
    python -m iugc_aop select --work runs/iugc
    python -m iugc_aop pretrain-temporal --work runs/iugc
    python -m iugc_aop finetune --work runs/iugc --variant all
    python -m iugc_aop evaluate --work runs/iugc
    python -m iugc_aop evaluate --work runs/iugc --submission runs/iugc/submission
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from iugc_aop.cli import Command, add_data_arguments, register, resolve_data_root

__all__ = ["add_run_arguments", "data_root_for", "label_budget", "trainer_options"]


def label_budget(text: str) -> int | str:
    """A label budget as the command line takes it: a whole number >= 1, or ``"all"``.

    Examples:
        >>> label_budget("50"), label_budget("ALL")
        (50, 'all')
        >>> label_budget("-3")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: a label budget is a whole number >= 1 or 'all'; got '-3'
    """
    word = text.strip().lower()
    if word == "all":
        return "all"
    try:
        value = int(word)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a label budget is a whole number >= 1 or 'all'; got {text!r}")
    return value


def add_run_arguments(parser: argparse.ArgumentParser, *, data: bool = True) -> None:
    """``--work/--out``, ``--profile``, ``--force`` and the Lightning pass-through options."""
    from iugc_aop.profiles import PROFILES

    if data:
        add_data_arguments(parser)
    g = parser.add_argument_group("run")
    g.add_argument("--work", "--out", dest="work", type=Path, default=Path("iugc_run"), metavar="DIR",
                   help="run folder: every stage writes below it (default: %(default)s)")
    g.add_argument("--profile", choices=sorted(PROFILES), default="quick",
                   help="sizes, epochs and learning rates (default: %(default)s): paper = the published "
                   "recipe for a GPU, quick = 2 CPU cores in minutes, smoke = seconds")
    g.add_argument("--force", action="store_true", help="redo stages that are already done")
    t = parser.add_argument_group("Lightning")
    t.add_argument("--accelerator", default="auto", help="auto, cpu, gpu (default: %(default)s)")
    t.add_argument("--devices", default="auto", help="devices per node: auto or a number (default: %(default)s)")
    t.add_argument("--strategy", default="auto", help="auto or ddp for several GPUs (default: %(default)s)")
    t.add_argument("--precision", default="32-true", help="32-true, 16-mixed, bf16-mixed (default: %(default)s)")


def trainer_options(args: argparse.Namespace, profile: Any) -> Any:
    """The profile's :class:`~sslkeypoint.configs.TrainerConfig` with the command line's device settings."""
    import dataclasses

    devices: Any = args.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    return dataclasses.replace(profile.trainer, accelerator=args.accelerator, devices=devices,
                               strategy=args.strategy, precision=args.precision)


def data_root_for(args: argparse.Namespace) -> Path:
    """``--data``, else the data recorded in ``WORK/run.json``, else synthetic data.

    The layout is checked at once (one :class:`~iugc_aop.formats.IUGCLayoutError` listing what is
    missing) and the choice is recorded in ``WORK/run.json`` for the next command of the run
    (replaced atomically). An unreadable ``WORK/run.json`` is replaced when ``--data`` is given,
    and named otherwise.
    """
    from iugc_aop.stages import load_dataset
    from sslkeypoint.atomic import write_text_atomic

    record = Path(args.work) / "run.json"
    try:
        saved: dict[str, Any] = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
        if not isinstance(saved, dict):
            raise ValueError(f"it holds a JSON {type(saved).__name__}, not an object")
    except (OSError, ValueError) as exc:
        if args.data is None:
            raise ValueError(f"{record} is unreadable ({exc}): give --data, which records the data folder in it "
                             "again") from exc
        saved = {}
    if args.data is not None:
        root = Path(args.data)
    elif saved.get("data_root") and Path(saved["data_root"]).is_dir():
        root = Path(saved["data_root"])
    else:
        root = resolve_data_root(args)
    load_dataset(root)
    record.parent.mkdir(parents=True, exist_ok=True)
    saved["data_root"] = str(root)
    write_text_atomic(record, json.dumps(saved, indent=2))
    return root


def _start(args: argparse.Namespace) -> tuple[Any, Path]:
    from iugc_aop.profiles import get_profile
    from iugc_aop.stages.common import data_is_real

    root = data_root_for(args)
    profile = get_profile(args.profile, real=data_is_real(root))
    print(profile.describe(), file=sys.stderr)
    print(f"data: {root}\nrun folder: {args.work}", file=sys.stderr)
    return profile, root


def _done_note(skipped: bool) -> str:
    return " (already done; --force redoes it)" if skipped else ""


# --------------------------------------------------------------------------------------------
# pretrain / select / pretrain-temporal
# --------------------------------------------------------------------------------------------


def _run_pretrain(args: argparse.Namespace) -> int:
    from iugc_aop.stages import stage_pretrain

    profile, root = _start(args)
    r = stage_pretrain(root, args.work, profile, pretraining=args.pretraining, seed=args.seed, force=args.force,
                       progress=not args.no_progress, trainer=trainer_options(args, profile))
    print(f"stage 1 ({args.pretraining}): {r.items} images, {r.global_step} steps, loss {r.final_loss}, encoder "
          f"{r.encoder_path}" + _done_note(r.skipped))
    return 0


def _configure_pretrain(p: argparse.ArgumentParser) -> None:
    from iugc_aop.variants import PRETRAININGS

    add_run_arguments(p)
    p.add_argument("--pretraining", choices=list(PRETRAININGS), default="moco",
                   help="the pre-training method (default: moco, the paper's MoCo v2); see iugc_aop.variants")


def _run_select(args: argparse.Namespace) -> int:
    from iugc_aop.formats.truth import load_truth, screening_scores
    from iugc_aop.stages import stage_select

    profile, root = _start(args)
    r = stage_select(root, args.work, profile, encoder_path=args.encoder, force=args.force,
                     progress=not args.no_progress)
    print(f"kept {len(r.kept)} of {len(r.names)} sequences (frame cut {r.threshold:.4f}): {', '.join(r.kept)}"
          + _done_note(r.skipped))
    truth = load_truth(root)
    if truth is not None:
        scores = screening_scores(truth, r.names, r.kept)
        print(f"against synthetic_truth.json: precision {scores['precision']:.2f}, recall {scores['recall']:.2f}")
    print(f"selection: {r.json_path}\nplot: {r.plot_path}")
    return 0


def _configure_select(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument("--encoder", type=Path, default=None, metavar="FILE",
                   help="extractor weights (default: WORK/stage1/encoder.safetensors)")


def _configure_temporal(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument("--sequences", choices=("selected", "all"), default="selected",
                   help="train on the screened sequences or on all of them (default: %(default)s)")
    p.add_argument("--init-from", type=Path, default=None, metavar="FILE",
                   help="stage-1 checkpoint or encoder (default: WORK/stage1/checkpoints/last.ckpt)")


def _run_temporal(args: argparse.Namespace) -> int:
    from iugc_aop.stages import stage_pretrain_temporal

    profile, root = _start(args)
    r = stage_pretrain_temporal(root, args.work, profile, sequences=args.sequences, init_from=args.init_from,
                                seed=args.seed, force=args.force, progress=not args.no_progress,
                                trainer=trainer_options(args, profile))
    print(f"stage 2: {r.items} frame pairs, {r.global_step} steps, loss {r.final_loss}, encoder {r.encoder_path}"
          + _done_note(r.skipped))
    return 0


# --------------------------------------------------------------------------------------------
# finetune / evaluate
# --------------------------------------------------------------------------------------------


def _variant_choices() -> list[str]:
    from iugc_aop.variants import VARIANTS

    return [*VARIANTS, "all"]


def _configure_finetune(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument("--variant", choices=_variant_choices(), default="ssl_unet",
                   help="which model to train (default: %(default)s; 'all' trains every row of the report)")
    p.add_argument("--labels", "--label-budget", dest="label_budget", type=label_budget, default=None, metavar="N",
                   help="labelled training cases to use: a whole number >= 1, or 'all' (default: the profile's)")


def _variants(name: str) -> list[str]:
    from iugc_aop.variants import VARIANTS

    return list(VARIANTS) if name == "all" else [name]


def _run_finetune(args: argparse.Namespace) -> int:
    from iugc_aop.stages import stage_finetune

    profile, root = _start(args)
    budget: Any = "profile" if args.label_budget is None else None if args.label_budget == "all" else args.label_budget
    for name in _variants(args.variant):
        r = stage_finetune(name, root, args.work, profile, label_budget=budget, seed=args.seed, force=args.force,
                           progress=not args.no_progress, trainer=trainer_options(args, profile))
        mre = r.best_metrics.get("val/mre_px")
        print(f"{name}: {r.labelled} labelled images, {r.epochs} epochs, best hold-out MRE "
              f"{mre if mre is None else round(mre, 2)} px, checkpoint {r.checkpoint}" + _done_note(r.skipped))
    return 0


def _configure_evaluate(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)
    p.add_argument("--variant", choices=_variant_choices(), default="all",
                   help="variant to evaluate (default: every fine-tuned one)")
    p.add_argument("--submission", type=Path, default=None, metavar="DIR",
                   help="evaluate a challenge submission folder (model.py) through the challenge "
                   "interface instead, on Validation and Testing")
    p.add_argument("--device", default="cpu", help="inference device (default: %(default)s)")
    p.add_argument("--no-report", action="store_true", help="do not (re)write WORK/report.md and metrics.json")


def _run_evaluate(args: argparse.Namespace) -> int:
    from iugc_aop.stages import load_dataset, stage_evaluate
    from iugc_aop.variants import VARIANTS

    profile, root = _start(args)
    if args.submission is not None:
        from iugc_aop.submission import evaluate_submission

        ds = load_dataset(root, ("validation", "testing"))
        result: dict[str, Any] = {}
        for split in ("validation", "testing"):
            m = dict(evaluate_submission(args.submission, ds.split(split), progress=not args.no_progress))
            m.pop("predictions", None)
            result[split] = m
            print(f"{split}: MRE {m['mre_px']:.4f} px, AoP MAE {m['aop_mae_deg']:.4f}°, "
                  f"{m['count']} images, {m.get('ms_per_image', float('nan')):.1f} ms/image")
        out = Path(args.work) / "eval" / "submission.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        from sslkeypoint.atomic import write_text_atomic

        write_text_atomic(out, json.dumps({"submission": str(args.submission), "metrics": result}, indent=2,
                                          default=str))
        print(f"metrics: {out}")
        return 0
    names = _variants(args.variant)
    if args.variant == "all":
        names = [n for n in VARIANTS if (Path(args.work) / "finetune" / n / "stage.json").is_file()]
        if not names:
            print(f"error: no fine-tuned variant in {args.work}; run 'finetune' first", file=sys.stderr)
            return 2
    evals = {}
    for name in names:
        r = stage_evaluate(name, root, args.work, profile, device=args.device, force=args.force,
                           progress=not args.no_progress)
        evals[name] = r
        for split, m in r.metrics.items():
            print(f"{name} {split}: MRE {m['mre_px']:.2f} px, AoP MAE {m['aop_mae_deg']:.2f}°")
    if not args.no_report:
        from iugc_aop.report import write_report

        rep = write_report(args.work, profile, root, evals, seed=args.seed)
        print(f"report: {rep.report}\nmetrics: {rep.metrics_json}")
    return 0


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _configure_demo(p: argparse.ArgumentParser) -> None:
    from iugc_aop.profiles import get_profile
    from iugc_aop.variants import DEMO_VARIANTS

    add_run_arguments(p)
    real = get_profile("quick", real=True)
    p.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                   help=f"variants to train and report (default: the profile's — the {len(DEMO_VARIANTS)} of "
                        f"iugc_aop.variants.DEMO_VARIANTS ({' '.join(DEMO_VARIANTS)}) on synthetic data, "
                        f"{' '.join(real.variants)} on real images — and its recommended one)")
    p.add_argument("--labels", "--label-budget", dest="label_budget", type=label_budget, default=None, metavar="N",
                   help="labelled training cases used by fine-tuning: a whole number >= 1, or 'all' (default: the "
                        "profile's)")
    p.add_argument("--select", choices=_selections(), default=None,
                   help="how the labelled cases are chosen (their labels are then revealed): random, or the library's "
                        "selection (coverage, kcenter, coverage_uncertainty); default: the profile's")


def _selections() -> tuple[str, ...]:
    from iugc_aop.stages import SELECTIONS

    return SELECTIONS


def _run_demo(args: argparse.Namespace) -> int:
    from iugc_aop.demo import run_demo
    from iugc_aop.profiles import get_profile
    from iugc_aop.variants import VARIANTS

    if args.variants:
        unknown = [v for v in args.variants if v not in VARIANTS]
        if unknown:
            print(f"error: unknown variant(s) {unknown}; expected some of {list(VARIANTS)}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    budget: Any = "profile" if args.label_budget is None else None if args.label_budget == "all" else args.label_budget
    r = run_demo(args.work, args.profile, args.data, seed=args.seed, variants=args.variants,
                 label_budget=budget, select=args.select, force=args.force, progress=not args.no_progress,
                 trainer=trainer_options(args, get_profile(args.profile)))
    print()
    print(f"{'variant':<24}{'MRE px':>10}{'AoP MAE °':>12}   (Testing split, original pixels)")
    for name, m in r.headline.items():
        print(f"{name:<24}{m['mre_px']:>10.2f}{m['aop_mae_deg']:>12.2f}")
    print()
    print(r.verdict.replace("**", ""))
    print(f"\ndemo finished in {time.perf_counter() - start:.0f} s (load average at the end "
          f"{r.load.get('end', [float('nan')])[0]:.2f})")
    print(f"challenge folders: {r.out_dir / 'submissions'}/<variant>")
    if r.submission_dir is not None:
        print(f"submission (recommended variant): {r.submission_dir}")
    print(f"report: {r.report}")
    return 0


register(Command("pretrain", "stage 1: pre-training on unlabelled frames and training images",
                 _configure_pretrain, _run_pretrain))
register(Command("select", "screen unlabelled sequences against the ExampleN.jpg reference images",
                 _configure_select, _run_select))
register(Command("pretrain-temporal", "stage 2: MoCo v2 on adjacent frames of the screened sequences",
                 _configure_temporal, _run_temporal))
register(Command("finetune", "stage 3: heatmap fine-tuning of one variant (or all)", _configure_finetune,
                 _run_finetune))
register(Command("evaluate", "Validation/Testing metrics and the report (or evaluate a submission folder)",
                 _configure_evaluate, _run_evaluate))
register(Command("demo", "everything in one run: stages, the variants, submissions, report",
                 _configure_demo, _run_demo))

"""Heatmap ensembles on real images: the label-efficiency runs of several methods, averaged.

Does averaging the heatmaps of networks fine-tuned by different methods on the *same* labelled
cases lower the landmark error? ``bench_label_efficiency.py`` fine-tunes every method on one
labelled draw per budget and seed, so an ensemble of its runs of one (budget, seed) uses no more
labels than any of them. For each ensemble (``--ensembles``, methods joined by ``+``), budget and
seed, the member runs are found in the same ``--work`` folder (and trained there when missing,
with the same options), combined with :meth:`sslkeypoint.inference.KeypointPredictor.ensemble`
(:class:`sslkeypoint.models.HeatmapEnsemble`: mean heatmap, decoded once) and evaluated on the
PSFHS testing split like single runs (:func:`iugc_aop.stages.evaluate_records`). The members are
evaluated alone too, so the table has each ensemble's paired difference to ``unet`` (and its
members' rows to compare with). A prediction costs one forward pass per member.

The default ensembles: ``unet+semi_unet`` (training from scratch and the mean teacher, no
pre-training), ``semi_unet+ssl_semi_unet`` (the two mean teachers) and every method the grid trains at
every budget. The table's rows and columns are those of ``bench_label_efficiency.py``; the JSON
(``benchmarks/results/ensemble.json``) can be merged with its results.

Usage::

    python benchmarks/bench_ensemble.py --data ../shared/data/psfhs --work runs/label_eff
    python benchmarks/bench_ensemble.py --work runs/label_eff --ensembles unet+semi_unet --budgets 50 all
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench_label_efficiency import (
    DEFAULT_BUDGETS,
    RESULTS,
    add_run_arguments,
    device_name,
    finetune,
    prepare,
    report,
)

DEFAULT_ENSEMBLES = ("unet+semi_unet", "semi_unet+ssl_semi_unet",
                     "unet+ssl_unet+dense_unet+dense_dec_unet+semi_unet+ssl_semi_unet")


def _members(ensemble: str) -> list[str]:
    methods = ensemble.split("+")
    from iugc_aop.variants import VARIANTS

    unknown = [m for m in methods if m not in VARIANTS]
    if len(methods) < 2 or unknown or len(set(methods)) != len(methods):
        raise SystemExit(f"--ensembles {ensemble!r}: give two or more different methods joined by '+', "
                         f"from {', '.join(VARIANTS)}" + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    return methods


def run(args: argparse.Namespace) -> dict[str, Any]:
    from iugc_aop.stages import evaluate_records
    from sslkeypoint.inference import KeypointPredictor

    ensembles = {e: _members(e) for e in args.ensembles}
    args.methods = list(dict.fromkeys(m for members in ensembles.values() for m in members))
    profile, ds, encoders, _ = prepare(args)
    testing = ds.testing
    runs: list[dict[str, Any]] = []
    for budget_text in args.budgets:
        for seed in range(args.seeds):
            predictors: dict[str, Any] = {}
            labelled: dict[str, int] = {}
            for method in args.methods:
                ft = finetune(args, profile, encoders, method, budget_text, seed)
                predictors[method] = KeypointPredictor.from_checkpoint(ft.checkpoint)
                labelled[method] = ft.labelled
            combined = {m: [m] for m in args.methods} | ensembles
            for name, members in combined.items():
                counts = {labelled[m] for m in members}
                if len(counts) != 1:
                    raise SystemExit(f"{name} at {budget_text} labels, seed {seed}: the members were fine-tuned "
                                     f"on different numbers of labelled cases {sorted(counts)}")
                t = time.perf_counter()
                predictor = KeypointPredictor.ensemble([predictors[m] for m in members])
                metrics, _ = evaluate_records(predictor, testing, progress=False)
                entry = {"method": name, "members": members, "budget": budget_text, "labelled": counts.pop(),
                         "seed": seed, "mre_px": metrics["mre_px"], "aop_mae_deg": metrics["aop_mae_deg"],
                         "per_landmark_px": metrics["per_landmark_px"], "spread_ratio": metrics["spread_ratio"],
                         "seconds": round(time.perf_counter() - t, 1)}
                runs.append(entry)
                print(f"{name:<44} n{budget_text:<4} s{seed}  MRE {entry['mre_px']:6.2f} px  "
                      f"AoP {entry['aop_mae_deg']:6.2f}°  ({entry['seconds']:.0f} s)", flush=True)
    return {"runs": runs, "ensembles": ensembles, "profile": profile.to_dict(), "device": device_name(),
            "training_cases": len(ds.train), "testing_cases": len(testing)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_arguments(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budgets", nargs="+", default=list(DEFAULT_BUDGETS))
    p.add_argument("--ensembles", nargs="+", default=list(DEFAULT_ENSEMBLES), metavar="A+B[+C...]",
                   help="methods whose runs on the same labels are averaged")
    p.add_argument("--json", type=Path, default=RESULTS / "ensemble.json")
    args = p.parse_args()
    t0 = time.perf_counter()
    result = run(args)
    report(result, time.perf_counter() - t0, args.json, seeds=args.seeds, budgets=args.budgets)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

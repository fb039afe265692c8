"""Heatmap ensembles on real images: the label-efficiency runs with all labels, averaged.

Does averaging the heatmaps of several fine-tuned networks lower the landmark error, and by how
much against the spread of single runs? For each method, the all-label runs of
``bench_label_efficiency.py`` (seeds ``0 .. n-1``, found in the same ``--work`` folder and trained
there when missing, with the same options) are combined with
:meth:`sslkeypoint.inference.KeypointPredictor.ensemble` (:class:`sslkeypoint.models.HeatmapEnsemble`:
mean heatmap, decoded once) and evaluated on the PSFHS testing split like single runs
(:func:`iugc_aop.stages.evaluate_records`).

For every ensemble size ``k`` the table gives the mean ± sd over all ``C(n, k)`` subsets of the
seeds (``k = 1``: the single runs). Subsets of one seed list share members, so their sd
understates the spread of independent ensembles; with ``k = n`` there is one subset and no sd.

Only the budget ``all`` is measured: there every seed fine-tunes on the same labelled cases
(each with its own 8:2 split for validation), so an ensemble uses no more labels than one run. At
smaller budgets each seed draws other cases, and an ensemble of seeds would see their union.

A prediction costs ``k`` forward passes of the network.

Usage::

    python benchmarks/bench_ensemble.py --data ../shared/data/psfhs --work runs/label_eff --methods semi scratch
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model
from bench_label_efficiency import METHODS, RESULTS, add_run_arguments, finetune, prepare


def _figures(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"mre_px": metrics["mre_px"], "aop_mae_deg": metrics["aop_mae_deg"],
            "per_landmark_px": metrics["per_landmark_px"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from iugc_aop.stages import evaluate_records
    from sslkeypoint.inference import KeypointPredictor

    profile, ds, encoders, _ = prepare(args)
    testing = ds.testing
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        predictors = []
        for seed in range(args.seeds):
            ft = finetune(args, profile, encoders, method, "all", seed)
            predictors.append(KeypointPredictor.from_checkpoint(ft.checkpoint))
        for k in range(1, args.seeds + 1):
            for members in itertools.combinations(range(args.seeds), k):
                t = time.perf_counter()
                predictor = KeypointPredictor.ensemble([predictors[i] for i in members])
                metrics, _ = evaluate_records(predictor, testing, progress=False)
                row = {"method": method, "size": k, "seeds": list(members), **_figures(metrics),
                       "seconds": round(time.perf_counter() - t, 1)}
                rows.append(row)
                print(f"{method:<10} seeds {list(members)!s:<10} MRE {row['mre_px']:5.2f} px  "
                      f"AoP {row['aop_mae_deg']:5.2f}°  ({row['seconds']:.0f} s)", flush=True)
    return {"rows": rows, "profile": profile.to_dict(), "testing_cases": len(testing)}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sd over the subsets of each method and ensemble size."""
    table = []
    for method in dict.fromkeys(r["method"] for r in rows):
        for k in sorted({r["size"] for r in rows if r["method"] == method}):
            group = [r for r in rows if r["method"] == method and r["size"] == k]
            entry: dict[str, Any] = {"method": method, "size": k, "subsets": len(group)}
            for key, sd in (("mre_px", "mre_sd_px"), ("aop_mae_deg", "aop_sd_deg")):
                values = np.array([r[key] for r in group])
                entry[key] = float(values.mean())
                entry[sd] = float(values.std(ddof=1)) if len(values) > 1 else None
            for name in group[0]["per_landmark_px"]:
                entry[f"{name}_px"] = float(np.mean([r["per_landmark_px"][name] for r in group]))
            table.append(entry)
    return table


def markdown(table: list[dict[str, Any]]) -> str:
    def pm(mean: float, sd: float | None) -> str:
        return f"{mean:.2f}" if sd is None else f"{mean:.2f} ± {sd:.2f}"

    lines = ["| method | networks | subsets | MRE px | AoP MAE ° | PS1 px | PS2 px | FH1 px |",
             "|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['method']} | {r['size']} | {r['subsets']} | {pm(r['mre_px'], r['mre_sd_px'])} | "
                     f"{pm(r['aop_mae_deg'], r['aop_sd_deg'])} | {r['PS1_px']:.2f} | {r['PS2_px']:.2f} | "
                     f"{r['FH1_px']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_arguments(p)
    p.add_argument("--seeds", type=int, default=3, help="all-label runs per method (seeds 0 .. n-1)")
    p.add_argument("--methods", nargs="+", default=["scratch", "semi"], choices=list(METHODS))
    p.add_argument("--json", type=Path, default=RESULTS / "ensemble.json")
    args = p.parse_args()
    if args.seeds < 2:
        raise SystemExit("--seeds must be at least 2: an ensemble needs two runs")
    t0 = time.perf_counter()
    result = run(args)
    seconds = time.perf_counter() - t0
    table = summarise(result["rows"])
    print()
    print(markdown(table))
    print(f"\n{seconds / 60:.1f} min on {cpu_model()} ({os.cpu_count()} cores)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({**result, "table": table, "seconds": round(seconds, 1), "cpu": cpu_model(),
                                     "cores": os.cpu_count(), "seeds": args.seeds, "methods": args.methods},
                                    indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

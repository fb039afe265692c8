"""Label efficiency on HC18: head-circumference error against the number of labelled images.

The sibling of ``bench_label_efficiency.py`` for the second real task, built on the HC18 example
(:mod:`hc18_biometry.pipeline`) exactly as its demo runs:

* the demo's fixed testing split, a fifth of the subjects (:func:`hc18_biometry.pipeline.testing_split`);
* for every seed and label budget, ``N`` training images drawn at random (one permutation per
  seed, so the budgets of a seed are nested), split 8:2 by subject for validation, fine-tuned
  from scratch (``unet``) and with pseudo-label self-training on the unlabelled pool (every other
  training image plus HC18's ``unlabelled/``; ``pseudo_unet``, the recommended recipe);
* each best checkpoint measures the testing images: the challenge's score (mean absolute HC
  difference in mm against the data set's HC), BPD and OFD errors (mm), landmark error (mm).

The table gives mean ± sd over seeds and each row's label-saving factor against the scratch curve
(:func:`sslkeypoint.metrics.label_saving_factor`). ``--rule wrong`` names the ends of the long
axis by "the lower end first" (:data:`hc18_biometry.landmarks.WRONG_RULE`), whose cut runs through
most HC18 heads, to measure what a wrong naming rule costs (``axis_ends_mm``: the mean error of
the four ends of the axes); ``--directions`` changes the number of direction points. Finished runs
are reused (``score.json`` in each run folder), so an interrupted
benchmark continues where it stopped.

Usage::

    python benchmarks/bench_label_efficiency_hc18.py                          # the full grid (hours on 2 cores)
    python benchmarks/bench_label_efficiency_hc18.py --budgets 25 50 100 200 all --methods unet --seeds 3
    python benchmarks/bench_label_efficiency_hc18.py --budgets 50 --methods unet --rule wrong --tag wrong_rule
    python benchmarks/bench_label_efficiency_hc18.py --merge results/a.json results/b.json   # one table
    python benchmarks/bench_label_efficiency_hc18.py --no-train        # the table of the runs finished so far
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import cpu_model

RESULTS = Path(__file__).parent / "results"
SCRATCH = "unet"


def _runs(args: argparse.Namespace) -> list[dict[str, Any]]:
    from hc18_biometry.data import read_cases, read_unlabelled
    from hc18_biometry.landmarks import RIGHT_RULE, WRONG_RULE, head_records
    from hc18_biometry.pipeline import PROFILES, finetune, score, testing_split

    profile = PROFILES[args.profile]
    if args.directions:
        profile = dataclasses.replace(profile, directions=args.directions)
    rule = WRONG_RULE if args.rule == "wrong" else RIGHT_RULE
    cases = read_cases(args.data)
    train, test = testing_split(head_records(cases, profile.directions, rule))
    pool = [Path(r.path) for r in train] + read_unlabelled(args.data).images
    print(f"{len(train)} training, {len(test)} testing images; pool {len(pool)}; profile {profile.name}, "
          f"{profile.directions} direction points, rule {args.rule}", flush=True)
    runs = []
    for seed in range(args.seeds):
        order = np.random.default_rng(1000 + seed).permutation(len(train))
        for budget in args.budgets:
            n = len(train) if budget == "all" else int(budget)
            labelled = [train[i] for i in order[:n]]
            for method in args.methods:
                folder = args.work / args.tag / method / f"n{budget}" / f"s{seed}"
                saved = folder / "score.json"
                if saved.is_file():
                    runs.append(json.loads(saved.read_text()))
                    continue
                if args.no_train:
                    continue
                start = time.monotonic()
                result = finetune(labelled, pool, folder / "run", profile, method, seed)
                ckpt = result.best_checkpoint or result.last_checkpoint
                summary = score(ckpt, test).summary()
                run = {"tag": args.tag, "method": method, "budget": budget, "labels": n, "seed": seed,
                       "rule": args.rule, "directions": profile.directions, "seconds": round(time.monotonic() - start, 1),
                       "best_epoch": result.best_epoch, **summary}
                folder.mkdir(parents=True, exist_ok=True)
                saved.write_text(json.dumps(run, indent=2))
                print(f"{args.tag} {method} n={budget} seed {seed}: HC {summary['hc_mae_mm']:.2f} mm, "
                      f"BPD {summary['bpd_mae_mm']:.2f}, OFD {summary['ofd_mae_mm']:.2f} ({run['seconds']:.0f} s)",
                      flush=True)
                runs.append(run)
    return runs


def _rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± sd over seeds per (tag, method, budget), with the label-saving factor."""
    from sslkeypoint.metrics import label_saving_factor

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["tag"], r["method"], str(r["budget"])), []).append(r)
    scratch = {int(np.mean([r["labels"] for r in g])): float(np.mean([r["hc_mae_mm"] for r in g]))
               for (tag, method, _), g in groups.items() if method == SCRATCH and tag == "main"}
    rows = []
    for (tag, method, budget), g in sorted(groups.items(), key=lambda kv: (kv[0][0] != "main", kv[0][1] != SCRATCH,
                                                                          kv[0][1], int(np.mean([r["labels"] for r in kv[1]])))):
        row: dict[str, Any] = {"tag": tag, "method": method, "budget": budget, "seeds": len(g),
                               "labels": int(np.mean([r["labels"] for r in g]))}
        for key in ("hc_mae_mm", "hc_median_mm", "bpd_mae_mm", "ofd_mae_mm", "mre_mm", "axis_ends_mm", "seconds"):
            values = np.array([r[key] for r in g], dtype=float)
            row[key] = float(values.mean())
            row[key.replace("_mm", "") + "_sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        if len(scratch) >= 2:
            saving = label_saving_factor(list(scratch), list(scratch.values()), row["labels"], row["hc_mae_mm"])
            row["saving"] = str(saving)
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    header = ("run", "labels", "HC error (mm)", "HC median", "BPD error", "OFD error", "landmarks", "axis ends", "saving")
    lines = [header]
    for r in rows:
        name = r["method"] + ("" if r["tag"] == "main" else f" [{r['tag']}]")
        lines.append((name, r["budget"], f"{r['hc_mae_mm']:.2f} ± {r['hc_mae_sd']:.2f}", f"{r['hc_median_mm']:.2f}",
                      f"{r['bpd_mae_mm']:.2f} ± {r['bpd_mae_sd']:.2f}", f"{r['ofd_mae_mm']:.2f} ± {r['ofd_mae_sd']:.2f}",
                      f"{r['mre_mm']:.2f}", f"{r['axis_ends_mm']:.2f}", r.get("saving", "–")))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    body = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    return "\n".join([rule, body[0], rule, *body[1:], rule])


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for (tag, method) in sorted({(r["tag"], r["method"]) for r in rows}):
        pts = sorted((r["labels"], r["hc_mae_mm"], r["hc_mae_sd"]) for r in rows if (r["tag"], r["method"]) == (tag, method))
        x, y, sd = (np.array(v, dtype=float) for v in zip(*pts, strict=True))
        label = method + ("" if tag == "main" else f" [{tag}]")
        ax.errorbar(x, y, yerr=np.nan_to_num(sd), fmt="o-" if len(x) > 1 else "o", capsize=3, label=label)
    ax.axhline(2.0, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ticks = sorted({r["labels"] for r in rows})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images")
    ax.set_ylabel("mean |HC predicted − HC given| (mm)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "hc18")
    parser.add_argument("--work", type=Path, default=Path("runs/label_eff_hc18"))
    parser.add_argument("--budgets", nargs="+", default=["25", "50", "100", "200", "all"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=[SCRATCH, "pseudo_unet"])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--directions", type=int, default=None, help="outline points in fixed directions (default: the profile's)")
    parser.add_argument("--rule", choices=("right", "wrong"), default="right")
    parser.add_argument("--tag", default="main", help="name of this set of runs in the table")
    parser.add_argument("--out", type=Path, default=RESULTS / "label_efficiency_hc18.json")
    parser.add_argument("--figure", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "_static" / "label_efficiency_hc18.png")
    parser.add_argument("--merge", nargs="+", type=Path, help="only merge these result files into one table")
    parser.add_argument("--no-train", action="store_true", help="only collect the runs already finished in --work")
    args = parser.parse_args()
    if args.merge:
        runs = [run for path in args.merge for run in json.loads(path.read_text())["runs"]]
    else:
        runs = _runs(args)
        if args.out.is_file():  # keep the runs of other invocations already in the file
            key = lambda r: (r["tag"], r["method"], str(r["budget"]), r["seed"])  # noqa: E731
            done = {key(r) for r in runs}
            runs = [r for r in json.loads(args.out.read_text())["runs"] if key(r) not in done] + runs
    rows = _rows(runs)
    print(_table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"device": f"{cpu_model()} ({os.cpu_count()} cores)", "runs": runs,
                                    "rows": [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                                              for k, v in r.items()} for r in rows]}, indent=2))
    _plot(rows, args.figure)
    print(f"wrote {args.out} and {args.figure}")


if __name__ == "__main__":
    main()

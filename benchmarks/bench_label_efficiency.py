"""Label efficiency on real images: PSFHS, landmark error against the number of labelled cases.

The question the library exists to answer: with few labelled images and many unlabelled ones,
which recipe gives the best landmarks, and how many labels does it save? On the PSFHS images
(``../shared/data/psfhs``: 1,058 real transperineal ultrasound frames; PS1, PS2, FH1 derived from
the expert masks with the 2023 challenge's rule, see :mod:`iugc_aop.formats.psfhs`):

* a fixed testing split of about 20 % of the similarity groups
  (:func:`iugc_aop.stages.load_dataset`: group split with seed 0) — near-duplicate frames never
  straddle training and testing;
* pre-training once on every image of the training groups, masks unused, for every method that
  starts from one: the example's pre-trainings (:data:`iugc_aop.variants.PRETRAININGS`: MoCo v2
  with the real-image ``quick`` profile, 128-px input, U-Net widths 16–128, momentum chosen from the
  run length, no horizontal flip; DenseCL; masked reconstruction of the whole U-Net), optionally
  on more unlabelled images of the same modality (``--extra-unlabelled``, e.g. HC18's);
* for every seed and label budget: ``N`` labelled cases drawn from the training groups
  (:func:`iugc_aop.stages.labelled_subset`, nested across budgets for one seed), split 8:2 by
  group for validation (early stopping, best checkpoint), and fine-tuned by each method — a
  variant of the example's one table (:data:`iugc_aop.variants.VARIANTS`: ``unet`` trains from
  scratch, ``ssl_unet`` from MoCo v2, ``semi_unet`` is the mean teacher, ``pseudo_unet``
  pseudo-label self-training, ``recon_unet`` starts from masked reconstruction, ...) with
  :func:`iugc_aop.stages.stage_finetune`;
* each run's best checkpoint is evaluated on the testing split through the library predictor
  (:func:`iugc_aop.stages.evaluate_records`): MRE and per-landmark error in the 256×256 images'
  pixels, AoP MAE in degrees, and the spread ratio of every landmark (collapse check).

Results: a table (mean ± sd over seeds, and each method's paired difference to ``unet`` — training
from scratch — on the same labels: mean ± sd over seeds, and the seeds where it is better in both
MRE and AoP error),
``benchmarks/results/label_efficiency.json`` (every
run's figures) and a plot of error against labels (log x, seed spread drawn). The budget ``all``
uses every training case. Runs already done are reused (the example's stage cache), so an
interrupted benchmark continues where it stopped.

Usage::

    python benchmarks/bench_label_efficiency.py                       # the full grid (many hours on 2 cores)
    python benchmarks/bench_label_efficiency.py --budgets 50 200 --methods unet ssl_unet semi_unet pseudo_unet
    python benchmarks/bench_label_efficiency.py --data ../shared/data/psfhs --work runs/label_eff --seeds 3
    python benchmarks/bench_label_efficiency.py --merge part1.json part2.json   # one table from several runs
    python benchmarks/bench_label_efficiency.py --budgets all --methods unet --input-size 256   # 256 -> 64 px
    python benchmarks/bench_label_efficiency.py --budgets 50 --methods unet --input-size 128 --heatmap-size 64 --sigma 4
    python benchmarks/bench_label_efficiency.py --methods recon_unet --extra-unlabelled ../shared/data/hc18/images \
        ../shared/data/hc18/unlabelled --pretrain-tag hc18     # pre-training with HC18's images added
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

#: The method every other is compared with: training from scratch on randomly chosen labels.
SCRATCH = "unet"
DEFAULT_BUDGETS = ("25", "50", "100", "200", "all")
RESULTS = Path(__file__).parent / "results"


def _pretrain(root: Path, work: Path, profile: Any, name: str, progress: bool, extra: list[Path],
              tag: str | None) -> Path:
    """The weights of the pre-training ``name`` (a key of the example's PRETRAININGS), trained once.

    The encoder file, or for a pre-training of the decoder too its ``unet.safetensors``.
    """
    from iugc_aop.stages import stage_pretrain
    from iugc_aop.variants import get_pretraining

    pre = get_pretraining(name)
    folder = pre.folder + (f"_{tag}" if tag else "")
    res = stage_pretrain(root, work, profile, pretraining=name, extra_images=extra, name=folder, progress=progress)
    chance = f", chance ln({res.queue_size}+1) = {math.log(res.queue_size + 1):.2f}" if res.queue_size else ""
    print(f"{folder}: {res.global_step} steps, final loss {res.final_loss}{chance}, {res.seconds:.0f} s", flush=True)
    return res.out_dir / ("unet.safetensors" if pre.trains_decoder else "encoder.safetensors")


def _images(folders: list[Path]) -> list[Path]:
    """Every image file under the folders (searched recursively)."""
    from sslkeypoint.data import list_images

    return [p for folder in folders for p in list_images(folder)]


def _overridden(profile: Any, input_size: int | None, heatmap_size: int | None, epochs: int | None,
                workers: int | None, sigma: float | None = None) -> Any:
    """``profile`` with the command line's changes: square network input and heatmap size (every
    stage), the targets' σ in heatmap pixels, fine-tuning epochs, loader workers (``None``: the
    profile's)."""
    if input_size is not None:
        size = (input_size, input_size)
        heatmap = heatmap_size or input_size // 4
        profile = profile.with_overrides(
            pretrain=dataclasses.replace(profile.pretrain, image_size=size),
            pretrain_temporal=dataclasses.replace(profile.pretrain_temporal, image_size=size),
            finetune=dataclasses.replace(profile.finetune, input_size=size, heatmap_size=(heatmap, heatmap)))
    elif heatmap_size is not None:
        raise SystemExit("--heatmap-size needs --input-size")
    if sigma is not None:
        profile = profile.with_overrides(finetune=dataclasses.replace(profile.finetune, sigma=sigma))
    if epochs is not None:
        profile = profile.with_overrides(finetune=dataclasses.replace(profile.finetune, max_epochs=epochs))
    if workers is not None:
        profile = profile.with_overrides(trainer=dataclasses.replace(profile.trainer, num_workers=workers))
    return profile


def device_name() -> str:
    """The accelerator the runs use: the GPU's name, or the CPU's model and cores."""
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else _cpu()


def _cpu() -> str:
    """This machine's processor model and cores."""
    return f"{cpu_model()} ({os.cpu_count()} cores)"


def prepare(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Path], float]:
    """The profile (with the command line's changes), the data set, and the pre-trained weights
    every method in ``args.methods`` needs (trained once; reused from ``args.work``), with the
    seconds pre-training took."""
    import torch

    from iugc_aop.profiles import get_profile
    from iugc_aop.stages import load_dataset

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    profile = _overridden(get_profile(args.profile, real=True), args.input_size, args.heatmap_size, args.epochs,
                          args.workers, args.sigma)
    ds = load_dataset(Path(args.data))
    print(f"{len(ds.train)} training cases, {len(ds.testing)} testing cases "
          f"({ds.report.get('groups', {})})", flush=True)
    from iugc_aop.variants import get_variant

    encoders: dict[str, Path] = {}
    t0 = time.perf_counter()
    extra = _images(args.extra_unlabelled)
    for name in dict.fromkeys(get_variant(m).pretraining for m in args.methods):
        if name is not None:
            encoders[name] = _pretrain(Path(args.data), Path(args.work), profile, name, args.progress, extra,
                                       args.pretrain_tag)
    return profile, ds, encoders, time.perf_counter() - t0


def run_name(method: str, budget_text: str, seed: int, select: str = "random", tag: str | None = None) -> str:
    """The run folder of one method, budget, seed and selection (``{method}_n{budget}_s{seed}`` for random labels)."""
    parts = [method] + ([f"pre-{tag}"] if tag else []) + ([select] if select != "random" else [])
    return "_".join(parts) + f"_n{budget_text}_s{seed}"


def finetune(args: argparse.Namespace, profile: Any, encoders: dict[str, Path], method: str, budget_text: str,
             seed: int, labelled: list[Any] | None = None, select: str = "random") -> Any:
    """Fine-tune (or reuse) one run of ``method`` in ``args.work``; its stage result.

    ``labelled``: the labelled cases chosen by a selection strategy (``None``: a random draw of the
    budget with the seed).
    """
    from iugc_aop.stages import stage_finetune
    from iugc_aop.variants import get_variant

    budget = None if budget_text == "all" else int(budget_text)
    pretraining = get_variant(method).pretraining
    init = encoders[pretraining] if pretraining is not None else None
    tag = args.pretrain_tag if pretraining is not None else None
    return stage_finetune(method, Path(args.data), Path(args.work), profile, label_budget=budget, seed=seed,
                          init_encoder=init, labelled_cases=labelled, name=run_name(method, budget_text, seed, select, tag),
                          progress=args.progress)


def _select_features(args: argparse.Namespace, profile: Any) -> Path | str | None:
    """The encoder weights that describe the cases when labels are chosen, or ``"thumbnails"``.

    ``--select-features`` names a pre-training of the example (trained once and reused, as for the
    methods) or ``thumbnails``.
    """
    if args.select == ["random"]:
        return None
    if args.select_features == "thumbnails":
        return "thumbnails"
    from iugc_aop.stages import stage_pretrain

    res = stage_pretrain(Path(args.data), Path(args.work), profile, pretraining=args.select_features,
                         progress=args.progress)
    return res.encoder_path


def run(args: argparse.Namespace) -> dict[str, Any]:
    from iugc_aop.stages import choose_labelled, evaluate_records
    from iugc_aop.variants import get_variant
    from sslkeypoint.inference import KeypointPredictor

    profile, ds, encoders, pretrain_seconds = prepare(args)
    testing = ds.testing
    features = _select_features(args, profile)
    runs: list[dict[str, Any]] = []
    for budget_text in args.budgets:  # budget by budget: an interrupted run has whole rows
        for seed in range(args.seeds):
            for select in args.select:
                labelled = None
                if select != "random" and budget_text != "all":
                    choice = choose_labelled(Path(args.data), Path(args.work), profile, int(budget_text),
                                             strategy=select, seed=seed, encoder=features, progress=args.progress)
                    labelled = choice.records
                for method in args.methods:
                    if budget_text == "all" and select != "random":
                        continue  # every case is labelled: nothing to choose
                    tag = select if select == "random" or args.select_features == "moco" else \
                        f"{select}-{args.select_features}"
                    name = run_name(method, budget_text, seed, tag)
                    t = time.perf_counter()
                    ft = finetune(args, profile, encoders, method, budget_text, seed, labelled, tag)
                    predictor = KeypointPredictor.from_checkpoint(ft.checkpoint)
                    metrics, _ = evaluate_records(predictor, testing, progress=False)
                    entry = {
                        "method": method, "budget": budget_text, "labelled": ft.labelled, "seed": seed,
                        "select": tag, "mre_px": metrics["mre_px"], "aop_mae_deg": metrics["aop_mae_deg"],
                        "per_landmark_px": metrics["per_landmark_px"], "spread_ratio": metrics["spread_ratio"],
                        "best_epoch": ft.best_epoch, "epochs": ft.epochs, "seconds": round(ft.seconds, 1),
                        "wall_seconds": round(time.perf_counter() - t, 1), "reused": ft.skipped,
                        **({"select_features": args.select_features} if select != "random" else {}),
                        **({"pseudo_labels": ft.pseudo_labels} if ft.pseudo_labels else {}),
                        **({"pretrain_tag": args.pretrain_tag} if args.pretrain_tag and get_variant(method).ssl else {}),
                    }
                    runs.append(entry)
                    per = entry["per_landmark_px"]
                    print(f"{name:<34} MRE {entry['mre_px']:6.2f} px  AoP {entry['aop_mae_deg']:6.2f}°  "
                          f"PS1/PS2/FH1 {per['PS1']:.1f}/{per['PS2']:.1f}/{per['FH1']:.1f}  "
                          f"({entry['seconds']:.0f} s{', reused' if ft.skipped else ''})", flush=True)
    return {"runs": runs, "pretrain_seconds": round(pretrain_seconds, 1), "profile": profile.to_dict(),
            "device": device_name(),
            "training_cases": len(ds.train), "testing_cases": len(testing)}


def row_name(run: dict[str, Any]) -> str:
    """The table row of a run: its method, and how its labels were chosen and its pre-training data
    when they are not the default (random labels, the data set's own images)."""
    name = run["method"]
    if run.get("select", "random") != "random":
        name += f" [{run['select']}]"
    if run.get("pretrain_tag"):
        name += f" (pre-trained +{run['pretrain_tag']})"
    return name


def _stat(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else math.nan


def scratch_curve(runs: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Training from scratch on random labels: mean labelled count and mean ``key`` per budget."""
    budgets = sorted({r["budget"] for r in runs if row_name(r) == SCRATCH},
                     key=lambda b: math.inf if b == "all" else int(b))
    labels, errors = [], []
    for budget in budgets:
        rs = [r for r in runs if row_name(r) == SCRATCH and r["budget"] == budget]
        labels.append(float(np.mean([r["labelled"] for r in rs])))
        errors.append(float(np.mean([r[key] for r in rs])))
    return labels, errors


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± sd over seeds for every row (method, label choice, pre-training data) and budget, the
    paired difference to training from scratch on the same labels, and the label-saving factor
    against training from scratch on random labels (MRE and AoP error)."""
    from iugc_aop.variants import VARIANTS
    from sslkeypoint.metrics import label_saving_factor

    table: list[dict[str, Any]] = []
    # The table's methods in their order, then any other rows (e.g. ensembles) in order of appearance.
    order = list(VARIANTS) + [m for m in dict.fromkeys(r["method"] for r in runs) if m not in VARIANTS]
    names = sorted(dict.fromkeys(row_name(r) for r in runs),
                   key=lambda n: (order.index(n.split(" ")[0]) if n.split(" ")[0] in order else len(order), n))
    curves = {key: scratch_curve(runs, key) for key in ("mre_px", "aop_mae_deg")}
    for name in names:
        budgets = sorted({r["budget"] for r in runs if row_name(r) == name},
                         key=lambda b: math.inf if b == "all" else int(b))
        for budget in budgets:
            rs = [r for r in runs if row_name(r) == name and r["budget"] == budget]
            row: dict[str, Any] = {"method": name, "budget": budget, "seeds": len(rs),
                                   "select": rs[0].get("select", "random"),
                                   "labelled": int(np.mean([r["labelled"] for r in rs]))}
            row["mre_px"], row["mre_sd"] = _stat([r["mre_px"] for r in rs])
            row["aop_mae_deg"], row["aop_sd"] = _stat([r["aop_mae_deg"] for r in rs])
            for landmark in ("PS1", "PS2", "FH1"):
                row[f"{landmark}_px"], row[f"{landmark}_sd"] = _stat([r["per_landmark_px"][landmark] for r in rs])
            row["min_spread_ratio"] = float(min(min(r["spread_ratio"].values()) for r in rs))
            row.update(_paired_to_scratch(runs, rs))
            for key, short in (("mre_px", "mre"), ("aop_mae_deg", "aop")):
                labels, errors = curves[key]
                if len(labels) >= 2:
                    saving = label_saving_factor(labels, errors, row["labelled"], row[key])
                    row[f"saving_{short}"], row[f"saving_{short}_bound"] = saving.factor, saving.bound
            table.append(row)
    return table


def _paired_to_scratch(runs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Differences to training from scratch (:data:`SCRATCH`), seed by seed, negative = better.

    A method is paired with training from scratch on the same labels (same budget, seed and label
    choice); training from scratch on chosen labels with training from scratch on the random draw
    of the same seed. ``d_mre_px`` / ``d_aop_deg`` (mean and sd over the paired seeds), and
    ``wins``: the seeds where both the MRE and the AoP error are lower, out of ``paired``.
    """
    if not rows:
        return {}
    first = rows[0]
    select, budget = first.get("select", "random"), first["budget"]
    if first["method"] == SCRATCH and not first.get("pretrain_tag"):
        if select == "random":
            return {}
        select = "random"  # the labels chosen against the random draw
    scratch = {r["seed"]: r for r in runs if r["method"] == SCRATCH and r["budget"] == budget
               and r.get("select", "random") == select and not r.get("pretrain_tag")}
    pairs = [(r, scratch[r["seed"]]) for r in rows if r["seed"] in scratch]
    if not pairs:
        return {}
    d_mre = np.array([r["mre_px"] - s["mre_px"] for r, s in pairs])
    d_aop = np.array([r["aop_mae_deg"] - s["aop_mae_deg"] for r, s in pairs])

    def sd(v: np.ndarray) -> float:
        return float(v.std(ddof=1)) if len(v) > 1 else math.nan

    return {"d_mre_px": float(d_mre.mean()), "d_mre_sd": sd(d_mre), "d_aop_deg": float(d_aop.mean()),
            "d_aop_sd": sd(d_aop), "wins": int(((d_mre < 0) & (d_aop < 0)).sum()), "paired": len(pairs)}


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| method | labels | seeds | MRE px | AoP MAE ° | PS1 px | PS2 px | FH1 px | lowest spread ratio "
             "| Δ MRE px vs scratch | Δ AoP ° vs scratch | wins | label saving MRE / AoP |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def pm(r: dict[str, Any], key: str, sd: str) -> str:
        return f"{r[key]:.2f} ± {r[sd]:.2f}" if math.isfinite(r[sd]) else f"{r[key]:.2f}"

    def saving(r: dict[str, Any]) -> str:
        if "saving_mre" not in r:
            return "–"
        return (f"{r['saving_mre_bound']}{r['saving_mre']:.2f}× / {r['saving_aop_bound']}{r['saving_aop']:.2f}×")

    for r in table:
        lines.append(f"| {r['method']} | {r['budget']} ({r['labelled']}) | {r['seeds']} | {pm(r, 'mre_px', 'mre_sd')} | "
                     f"{pm(r, 'aop_mae_deg', 'aop_sd')} | {pm(r, 'PS1_px', 'PS1_sd')} | {pm(r, 'PS2_px', 'PS2_sd')} | "
                     f"{pm(r, 'FH1_px', 'FH1_sd')} | {r['min_spread_ratio']:.2f} | "
                     + (f"{pm(r, 'd_mre_px', 'd_mre_sd')} | {pm(r, 'd_aop_deg', 'd_aop_sd')} | {r['wins']}/{r['paired']} | "
                        if "paired" in r else "– | – | – | ")
                     + f"{saving(r)} |")
    return "\n".join(lines)


def report(result: dict[str, Any], seconds: float, path: Path, **settings: Any) -> list[dict[str, Any]]:
    """Print the table of ``result["runs"]`` and the time taken, and write the JSON to ``path``
    (the result, its table, the seconds, the machine and the command line's ``settings``)."""
    table = summarise(result["runs"])
    print()
    print(markdown(table))
    print(f"\n{seconds / 60:.1f} min on {result.get('device', _cpu())}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, "table": table, "seconds": round(seconds, 1), "cpu": cpu_model(),
                                "cores": os.cpu_count(), **settings, "load_end": os.getloadavg()}, indent=2))
    return table


def plot(table: list[dict[str, Any]], path: Path, rows: list[str] | None = None) -> None:
    """Error against labels (log scale) per row of the table, and the label-saving factors.

    Left: landmark error; middle: AoP error (mean ± sd over seeds); right: each row's label-saving
    factor (MRE, filled; AoP, hatched) at each budget, against training from scratch on random
    labels (1 = no label saved; an arrow marks a bound, beyond the scratch curve). ``rows`` picks
    the table rows drawn (default: all).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = rows or list(dict.fromkeys(r["method"] for r in table))
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for name in names:
        picked = [r for r in table if r["method"] == name]
        if not picked:
            continue
        xs = [r["labelled"] for r in picked]
        for ax, key, sd in ((axes[0], "mre_px", "mre_sd"), (axes[1], "aop_mae_deg", "aop_sd")):
            ys = np.array([r[key] for r in picked])
            es = np.nan_to_num(np.array([r[sd] for r in picked]))
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name)
            ax.fill_between(xs, ys - es, ys + es, alpha=0.12)
    axes[0].set(xscale="log", xlabel="labelled cases", ylabel="MRE (px, 256×256)", title="landmark error")
    axes[1].set(xscale="log", xlabel="labelled cases", ylabel="AoP MAE (°)", title="Angle of Progression error")
    ticks = sorted({r["labelled"] for r in table})
    for ax in axes[:2]:
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    # Label-saving factors: one group of bars per budget, one bar pair per row.
    others = [n for n in names if n != SCRATCH]
    budgets = sorted({r["budget"] for r in table if r["method"] in others and "saving_mre" in r},
                     key=lambda b: math.inf if b == "all" else int(b))
    width = 0.8 / max(1, len(others))
    for i, name in enumerate(others):
        labelled = False  # the legend names each row once, at its first bar
        for j, budget in enumerate(budgets):
            row = next((r for r in table if r["method"] == name and r["budget"] == budget and "saving_mre" in r), None)
            if row is None:
                continue
            x = j + (i - (len(others) - 1) / 2) * width
            colour = f"C{(names.index(name)) % 10}"
            axes[2].bar(x - width / 4, row["saving_mre"], width / 2, color=colour, label=None if labelled else name)
            labelled = True
            axes[2].bar(x + width / 4, row["saving_aop"], width / 2, color=colour, alpha=0.45, hatch="//")
            for dx, bound, value in ((-width / 4, row["saving_mre_bound"], row["saving_mre"]),
                                     (width / 4, row["saving_aop_bound"], row["saving_aop"])):
                if bound:
                    axes[2].annotate("↑" if bound == ">" else "↓", (x + dx, value), ha="center", fontsize=8)
    axes[2].axhline(1.0, color="black", linewidth=0.8)
    axes[2].set_xticks(range(len(budgets)), budgets)
    axes[2].set(xlabel="labels of the method (budget)", ylabel="label-saving factor (MRE filled, AoP hatched)",
                title="labels saved against scratch on random labels", yscale="log")
    factors = [0.25, 0.5, 1, 2, 4, 8]
    axes[2].set_yticks(factors, [f"{f:g}×" for f in factors])
    axes[2].minorticks_off()
    if others:
        axes[2].legend(fontsize=7)
    fig.suptitle("PSFHS testing split (mean ± sd over seeds)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _selections() -> tuple[str, ...]:
    from iugc_aop.stages import SELECTIONS

    return SELECTIONS


def _variant_names() -> list[str]:
    from iugc_aop.variants import VARIANTS

    return list(VARIANTS)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say which runs are meant: data, work folder, profile and its changes.

    Shared with ``bench_ensemble.py``, which combines the runs this benchmark leaves in ``--work``.
    """
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "psfhs")
    p.add_argument("--work", type=Path, default=Path("runs/label_efficiency"))
    p.add_argument("--profile", default="quick")
    p.add_argument("--input-size", type=int, default=None, metavar="PX",
                   help="square network input of every stage (default: the profile's, 128 for quick)")
    p.add_argument("--heatmap-size", type=int, default=None, metavar="PX",
                   help="square heatmap size (default with --input-size: a quarter of it)")
    p.add_argument("--sigma", type=float, default=None, metavar="PX",
                   help="σ of the Gaussian targets in heatmap pixels (default: the profile's, 2; with a finer "
                        "heatmap, scale it to keep the same width in input pixels)")
    p.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: the profile's, 40 for quick)")
    p.add_argument("--workers", type=int, default=None, help="data-loader workers (default: the profile's)")
    p.add_argument("--extra-unlabelled", nargs="+", type=Path, default=[], metavar="DIR",
                   help="more unlabelled images for pre-training (e.g. another data set of the same modality)")
    p.add_argument("--pretrain-tag", default=None,
                   help="name of this pre-training data (folder stage1_<name>_<tag>; needed with --extra-unlabelled)")
    p.add_argument("--progress", action="store_true")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_arguments(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budgets", nargs="+", default=list(DEFAULT_BUDGETS))
    p.add_argument("--methods", nargs="+", default=["unet", "ssl_unet", "dense_unet", "semi_unet", "ssl_semi_unet"],
                   choices=_variant_names(), metavar="VARIANT",
                   help="variants of the example's table (iugc_aop.variants.VARIANTS)")
    p.add_argument("--select", nargs="+", default=["random"], choices=_selections(),
                   help="how the labelled cases are chosen (iugc_aop.stages.SELECTIONS): random, or the library's "
                        "selection; each a row of the table")
    p.add_argument("--select-features", default="moco",
                   help="what describes the cases for choosing them: a pre-training of the example (trained once) "
                        "or 'thumbnails' (default: moco; another one is named in the rows, e.g. coverage-thumbnails)")
    p.add_argument("--json", type=Path, default=RESULTS / "label_efficiency.json")
    p.add_argument("--figure", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "_static"
                   / "label_efficiency.png")
    p.add_argument("--merge", nargs="+", type=Path, default=[], metavar="JSON",
                   help="only combine the runs of earlier result files (no training) into one table")
    p.add_argument("--plot-rows", nargs="+", default=None, metavar="ROW",
                   help="the table rows drawn in the figure (default: all)")
    args = p.parse_args()
    if args.extra_unlabelled and not args.pretrain_tag:
        p.error("--extra-unlabelled needs --pretrain-tag (the pre-training data is part of the run's name)")
    t0 = time.perf_counter()
    if args.merge:
        parts = [json.loads(f.read_text()) for f in args.merge]
        result = {**parts[0], "runs": [r for part in parts for r in part["runs"]],
                  "pretrain_seconds": sum(part.get("pretrain_seconds", 0.0) for part in parts),
                  "merged_from": [f.name for f in args.merge]}
        seconds = sum(part.get("seconds", 0.0) for part in parts)
    else:
        result = run(args)
        seconds = time.perf_counter() - t0
    table = report(result, seconds, args.json, seeds=args.seeds, budgets=args.budgets, methods=args.methods)
    plot(table, args.figure, args.plot_rows)
    print(f"wrote {args.json} and {args.figure}")


if __name__ == "__main__":
    main()

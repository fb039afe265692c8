"""The evaluation report of a pipeline run: ``report.md``, ``metrics.json`` and ``figures/``.

:func:`write_report` turns the results of the stages (:mod:`iugc_aop.stages`) into

* ``metrics.json`` — variant name → its Testing-split metrics (``mre_px``, ``aop_mae_deg``,
  ``per_landmark_px``, ``heatmap_mse``, ``heatmap_mae``, ``missing_rate``, ``ms_per_image``, ...),
  with the Validation metrics under the variant's ``"validation"`` key. For every variant with an
  exported challenge folder the landmark and AoP metrics are those of the folder evaluated
  through the challenge interface (``"source": "submission"``), with the library predictor's
  numbers kept under ``"library_predictor"`` for comparison;
* ``figures/`` — predictions against the ground truth with the AoP drawn on Testing images, the
  worst cases, training curves (from the CSV logs), error histograms and the screening scores;
* ``report.md`` — the table of the paper's Table 2 on this data and budget, a plain statement of
  whether SSL helps here and by how much, the profile, the stage times and the machine load.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iugc_aop.profiles import Profile
from iugc_aop.report_figures import (
    csv_log,
    error_histograms,
    image_grid,
    landmark_points,
    loss_rebound,
    read_rows,
    series,
    training_curves,
)
from iugc_aop.variants import VARIANTS
from sslkeypoint.atomic import atomic_path, write_text_atomic
from sslkeypoint.ssl import PseudoLabelStats

__all__ = ["ReportResult", "cpu_model", "recommended_verdict", "ssl_verdict", "write_report"]



@dataclass
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        report: ``report.md``.
        metrics_json: ``metrics.json``.
        figures: Figure name → PNG path.
        metrics: The content of ``metrics.json``.
        verdict: The SSL statement of the report (one paragraph).
    """

    report: Path
    metrics_json: Path
    figures: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    verdict: str = ""


def cpu_model() -> str:
    """The processor's model name (``lscpu``), or the platform's best guess."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5, check=False).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def _fmt(value: Any, digits: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(v):
        return "–"
    return f"{v:.{digits}f}"


def _sci(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{v:.2e}" if math.isfinite(v) else "–"


def ssl_verdict(metrics: Mapping[str, Mapping[str, Any]], labelled: int | None, test_count: int | None,
                two_stage: bool = True) -> str:
    """One plain paragraph: does SSL help at this budget, and by how much (Testing split).

    Compares ``ssl_unet`` with ``unet`` (and, when present, ``ssl_unet_starter_codec`` with
    ``unet_starter``). ``two_stage``: whether stage 2 ran (else the SSL encoder is stage 1's).

    Examples:
        >>> m = {"unet": {"mre_px": 20.0, "aop_mae_deg": 8.0}, "ssl_unet": {"mre_px": 15.0, "aop_mae_deg": 6.0}}
        >>> ssl_verdict(m, 60, 100).startswith("**SSL helps**")
        True
    """
    if "ssl_unet" not in metrics or "unet" not in metrics:
        return "The SSL comparison needs both the `unet` and `ssl_unet` rows."
    a, b = metrics["unet"], metrics["ssl_unet"]
    d_mre = float(b["mre_px"]) - float(a["mre_px"])
    d_aop = float(b["aop_mae_deg"]) - float(a["aop_mae_deg"])
    rel_mre = 100.0 * d_mre / float(a["mre_px"]) if float(a["mre_px"]) else math.nan
    rel_aop = 100.0 * d_aop / float(a["aop_mae_deg"]) if float(a["aop_mae_deg"]) else math.nan
    if d_mre < 0 and d_aop < 0:
        head = "**SSL helps**"
    elif d_mre > 0 and d_aop > 0:
        head = "**SSL does not help**"
    else:
        head = "**SSL gives a mixed result**"
    budget = f"{labelled} labelled images" if labelled else "this label budget"
    text = (
        f"{head} at {budget} in this run: on the Testing split ({test_count or '?'} images) the U-Net "
        f"with {'two-stage SSL' if two_stage else 'SSL (stage 1 only)'} has an MRE of {_fmt(b['mre_px'])} px against {_fmt(a['mre_px'])} px without "
        f"it ({d_mre:+.2f} px, {rel_mre:+.1f} %) and an AoP MAE of {_fmt(b['aop_mae_deg'])}° against "
        f"{_fmt(a['aop_mae_deg'])}° ({d_aop:+.2f}°, {rel_aop:+.1f} %)."
    )
    if "ssl_unet_starter_codec" in metrics and "unet_starter" in metrics:
        c, d = metrics["unet_starter"], metrics["ssl_unet_starter_codec"]
        text += (
            f" With the starter's codec the same comparison gives {_fmt(d['mre_px'])} px vs "
            f"{_fmt(c['mre_px'])} px ({float(d['mre_px']) - float(c['mre_px']):+.2f} px) and "
            f"{_fmt(d['aop_mae_deg'])}° vs {_fmt(c['aop_mae_deg'])}° "
            f"({float(d['aop_mae_deg']) - float(c['aop_mae_deg']):+.2f}°)."
        )
    text += (
        " This is one seed and one short schedule; differences of a few percent are within the "
        "run-to-run spread. `benchmarks/bench_iugc.py` repeats the comparison over several seeds and "
        "label budgets."
    )
    return text


def recommended_verdict(metrics: Mapping[str, Mapping[str, Any]], recommended: str | None) -> str | None:
    """One sentence on the recommended variant against ``unet`` (training from scratch on the same
    labels), on the Testing split; ``None`` when there is nothing to compare (no recommended variant,
    it is ``unet`` or ``ssl_unet`` — the SSL paragraph's pair — or a row is missing).

    Examples:
        >>> m = {"unet": {"mre_px": 10.0, "aop_mae_deg": 9.0}, "pseudo_unet": {"mre_px": 8.0, "aop_mae_deg": 7.2}}
        >>> print(recommended_verdict(m, "pseudo_unet"))  # doctest: +ELLIPSIS
        `pseudo_unet`, exported to `submission/`, has an MRE of 8.00 px and an AoP MAE of 7.20° on the ...
        against 10.00 px and 9.00° from scratch on the same labels (`unet`): -2.00 px (-20.0 %) and -1.80° (-20.0 %). ...
        >>> recommended_verdict(m, "unet") is None
        True
    """
    if recommended in (None, "unet", "ssl_unet") or recommended not in metrics or "unet" not in metrics:
        return None
    a, b = metrics["unet"], metrics[recommended]
    changes = []
    for key, unit in (("mre_px", " px"), ("aop_mae_deg", "°")):
        x, y = float(a[key]), float(b[key])
        changes.append(f"{y - x:+.2f}{unit}" + (f" ({100.0 * (y - x) / x:+.1f} %)" if x else ""))
    return (f"`{recommended}`, exported to `submission/`, has an MRE of {float(b['mre_px']):.2f} px and an AoP MAE "
            f"of {float(b['aop_mae_deg']):.2f}° on the Testing split, against {float(a['mre_px']):.2f} px and "
            f"{float(a['aop_mae_deg']):.2f}° from scratch on the same labels (`unet`): {changes[0]} and {changes[1]}. "
            "One seed: the label-efficiency benchmark (docs: \"Label efficiency on real images\") measures the "
            "same comparison over several label draws.")


def _ssl_context(run: Path, pretrain: Sequence[Any], finetunes: Mapping[str, Any]) -> str:
    """How far pre-training got (loss vs chance) and how fast each U-Net converged."""
    parts: list[str] = []
    flags: list[str] = []
    for stage in pretrain:
        queue = int(stage.queue_size or 0)
        if stage.final_loss is not None and queue:
            parts.append(f"{stage.stage} ended at an InfoNCE loss of {stage.final_loss:.2f} (chance level "
                         f"ln({queue}+1) = {math.log(queue + 1):.2f}) after {stage.global_step} steps")
            xs, ys = series(csv_log(Path(stage.out_dir)), "train_loss_epoch")
            rebound = loss_rebound(xs, ys, math.log(queue + 1))
            if rebound:
                flags.append(f"{stage.stage}: {rebound}")
    text = ""
    if parts:
        text += " Pre-training was short: " + "; ".join(parts) + "."
    if flags:
        text += (" **Flag:** " + "; ".join(flags) + " — the encoder saved at the end is likely worse than at its "
                 "lowest epoch (too high a learning rate, or too little data for the queue).")
    early = {}
    for name in ("unet", "ssl_unet"):
        if name in finetunes:
            xs, ys = series(csv_log(run / "finetune" / name), "val/mre_px")
            if len(ys) >= 5:
                early[name] = (int(xs[4]), ys[4])
    if len(early) == 2:
        (e, a), (_, b) = early["unet"], early["ssl_unet"]
        text += (f" Where SSL does show is the start of fine-tuning: after {e + 1} epochs the hold-out MRE is "
                 f"{b:.1f} px with the SSL encoder and {a:.1f} px without (see the training curves).")
    return text


# --------------------------------------------------------------------------------------------
# metrics.json and report.md
# --------------------------------------------------------------------------------------------


def _testing_entry(ev: Any) -> dict[str, Any]:
    test = dict(ev.metrics.get("testing", {}))
    entry = {**test, "ms_per_image": ev.ms_per_image, "source": "library predictor",
             "checkpoint": str(ev.checkpoint)}
    if "validation" in ev.metrics:
        entry["validation"] = dict(ev.metrics["validation"])
    return entry


_KEYPOINT_KEYS = ("count", "evaluated", "missing", "failed", "missing_rate", "failure_rate", "mre_px", "mre_std_px",
                  "mre_median_px", "per_landmark_px", "per_landmark_std_px", "sdr", "aop_mae_deg", "aop_std_deg",
                  "aop_median_deg", "aop_count", "aop_missing", "aop_failed")


def _merge_submission(entry: dict[str, Any], sub: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                      submission_dir: Path | None) -> dict[str, Any]:
    library = {k: entry[k] for k in ("mre_px", "aop_mae_deg", "per_landmark_px") if k in entry}
    merged = dict(entry)
    for k in _KEYPOINT_KEYS:
        if k in sub:
            merged[k] = sub[k]
    merged["source"] = "submission"
    merged["submission_dir"] = str(submission_dir) if submission_dir else None
    merged["submission_ms_per_image"] = sub.get("ms_per_image")
    merged["library_predictor"] = library
    diff = abs(float(sub["mre_px"]) - float(library.get("mre_px", math.nan)))
    merged["mre_difference_px"] = diff
    # Largest landmark-coordinate difference between the two, image by image.
    by_path = {r["path"]: r for r in rows}
    worst = 0.0
    for p in sub.get("predictions", []):
        r = by_path.get(p["path"])
        if r is None:
            continue
        mine = landmark_points(r, False)
        for (x, y), (u, v) in zip(p["keypoints"], mine):
            worst = max(worst, abs(float(x) - u), abs(float(y) - v))
    merged["max_coordinate_difference_px"] = worst
    merged["agrees_within_1e-4_px"] = bool(diff <= 1e-4)
    return merged


def _load_text(load: Mapping[str, Sequence[float]] | None) -> str:
    if not load:
        return "not recorded"
    parts = [f"{k}: {', '.join(f'{v:.2f}' for v in vals)}" for k, vals in load.items()]
    return "; ".join(parts) + " (1, 5, 15-minute load averages)"


def write_report(
    out_dir: str | os.PathLike[str],
    profile: Profile,
    data_root: str | os.PathLike[str],
    evaluations: Mapping[str, Any],
    *,
    finetunes: Mapping[str, Any] | None = None,
    pretrain: Sequence[Any] = (),
    selection: Any = None,
    selection_truth: Mapping[str, Any] | None = None,
    submissions: Mapping[str, Mapping[str, Any]] | None = None,
    recommended: str | None = None,
    stage_seconds: Mapping[str, float] | None = None,
    stage_cpu_seconds: Mapping[str, float] | None = None,
    load: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    labels: Any = None,
) -> ReportResult:
    """Write ``report.md``, ``metrics.json`` and ``figures/`` into ``out_dir``.

    Args:
        out_dir: The run folder (holds the stage folders).
        profile: The run's profile (stated in the report).
        data_root: The data used.
        evaluations: Variant → :class:`~iugc_aop.stages.EvaluationResult`, in table order.
        finetunes: Variant → :class:`~iugc_aop.stages.FinetuneStageResult`.
        pretrain: The stage-1 / stage-2 :class:`~iugc_aop.stages.PretrainStageResult`.
        selection: The :class:`~iugc_aop.stages.SelectionResult`.
        selection_truth: On synthetic data, :func:`iugc_aop.formats.truth.screening_scores` of the
            selection (precision and recall of the good sequences).
        submissions: Variant → :func:`iugc_aop.submission.evaluate_submission` output of its
            challenge folder ``out_dir/submissions/<variant>`` on Testing (replaces its landmark
            metrics; the library predictor's are kept).
        recommended: The variant exported to ``out_dir/submission/`` (stated in the report).
        stage_seconds: Stage → wall seconds.
        stage_cpu_seconds: Stage → CPU seconds of this process (all its threads): less affected by
            other jobs on a shared machine than wall time.
        load: ``{"start": [...], "end": [...]}`` load averages.
        seed: The run's seed.
        labels: The :class:`~iugc_aop.stages.LabelChoice` of the labelled cases (stated in the
            report; its contact sheet is one of the figures).

    Returns:
        A :class:`ReportResult`.
    """
    out = Path(out_dir)
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    finetunes = dict(finetunes or {})
    rows_test = {name: read_rows(ev.predictions.get("testing", Path("-"))) for name, ev in evaluations.items()}

    metrics: dict[str, dict[str, Any]] = {}
    submissions = dict(submissions or {})
    for name, ev in evaluations.items():
        entry = _testing_entry(ev)
        if name in submissions:
            entry = _merge_submission(entry, submissions[name], rows_test.get(name, []), out / "submissions" / name)
        metrics[name] = entry
    metrics_path = out / "metrics.json"
    write_text_atomic(metrics_path, json.dumps(metrics, indent=2, default=str))

    # Figures
    figures: dict[str, Path] = {}
    focus = recommended if recommended in rows_test else ("ssl_unet" if "ssl_unet" in rows_test else next(iter(rows_test), None))
    if focus is not None and rows_test[focus]:
        rows = rows_test[focus]
        p = image_grid(rows[:6], figdir / "test_predictions.png",
                        f"{focus} on Testing: prediction (filled, AoP drawn) vs ground truth (green rings)")
        if p:
            figures["test_predictions"] = p
        worst = sorted(rows, key=lambda r: -float(r["mre_px"]))[:6]
        p = image_grid(worst, figdir / "worst_cases.png", f"{focus}: the Testing images with the largest MRE")
        if p:
            figures["worst_cases"] = p
    p = training_curves(out, list(evaluations), figdir / "training_curves.png", pretrain)
    if p:
        figures["training_curves"] = p
    p = error_histograms(rows_test, figdir / "error_histograms.png")
    if p:
        figures["error_histograms"] = p
    if labels is not None and labels.out_dir is not None and (labels.out_dir / "selection.png").is_file():
        dst = figdir / "labelled_cases.png"
        with atomic_path(dst) as tmp:
            shutil.copyfile(labels.out_dir / "selection.png", tmp)
        figures["labelled_cases"] = dst
    if selection is not None and Path(selection.plot_path).is_file():
        dst = figdir / "screening_scores.png"
        with atomic_path(dst) as tmp:
            shutil.copyfile(selection.plot_path, tmp)
        figures["screening_scores"] = dst

    # Text
    labelled = next((ft.labelled for ft in finetunes.values()), None)
    test_count = next((int(m.get("count", 0)) for m in metrics.values()), None)
    two_stage = any(s.stage == "stage2" for s in pretrain)
    verdict = ssl_verdict(metrics, labelled, test_count, two_stage) + _ssl_context(out, pretrain, finetunes)
    rec_text = recommended_verdict(metrics, recommended)
    if not two_stage:
        verdict += (" These data have no unlabelled sequences, so there was no screening and no stage 2: "
                    "the SSL variants start from the stage-1 encoder.")
    lines: list[str] = [
        "# IUGC Angle of Progression: pipeline report",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M:%S')} · data `{data_root}` · profile `{profile.name}` · "
        f"seed {seed} · labelled training images used: {labelled if labelled is not None else 'all'}"
        + (f", chosen by `{labels.strategy}` from {labels.groups} similarity groups" if labels is not None else "")
        + ".",
        "",
        "## Does self-supervised pre-training help here?",
        "",
        verdict,
        "",
        *(["## The recommended variant", "", rec_text, ""] if rec_text else []),
        "## Testing split (the report's Table 2)",
        "",
        "Errors in the original images' pixels (512×512 for IUGC). Heatmap MSE / MAE compare each "
        "network's heatmaps with the targets of its own codec. Inference: median wall time of one "
        "image through the predictor (decode, resize, network, heatmap decode), batch size 1, CPU.",
        "",
        "| variant | heatmap MSE | heatmap MAE | MRE px | PS1 px | PS2 px | FH1 px | AoP MAE ° | missing rate | ms/image |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in metrics.items():
        per = m.get("per_landmark_px", {}) or {}
        lines.append(
            f"| `{name}` | {_sci(m.get('heatmap_mse'))} | {_sci(m.get('heatmap_mae'))} | {_fmt(m.get('mre_px'))} | "
            f"{_fmt(per.get('PS1'))} | {_fmt(per.get('PS2'))} | {_fmt(per.get('FH1'))} | "
            f"{_fmt(m.get('aop_mae_deg'))} | {_fmt(m.get('missing_rate'), 3)} | {_fmt(m.get('ms_per_image'), 1)} |"
        )
    lines += ["", "Variants:", ""]
    titles = {n: VARIANTS[n].title if two_stage else VARIANTS[n].title.replace("two-stage SSL", "stage-1 SSL")
              for n in metrics if n in VARIANTS}
    lines += [f"* `{n}` — {title}." for n, title in titles.items()]
    lines += [
        "",
        "The ResNet encoder is randomly initialised (no pretrained weights are downloaded). The "
        "starter-codec rows train on Gaussians centred on the truncated heatmap pixel and decode "
        "with argmax and `x·W/w` scaling, mapped back to the original with `x·W/W_in`, as the IUGC "
        "starter code does; the other rows use the exact pixel-centre codec with DARK refinement.",
    ]
    validation = [(name, m.get("validation") or {}) for name, m in metrics.items()]
    if any(isinstance(v.get("mre_px"), int | float) and math.isfinite(v["mre_px"]) for _, v in validation):
        lines += ["", "## Validation split", "",
                  "| variant | MRE px | PS1 px | PS2 px | FH1 px | AoP MAE ° |", "|---|---|---|---|---|---|"]
        for name, v in validation:
            per = v.get("per_landmark_px", {}) or {}
            lines.append(f"| `{name}` | {_fmt(v.get('mre_px'))} | {_fmt(per.get('PS1'))} | {_fmt(per.get('PS2'))} | "
                         f"{_fmt(per.get('FH1'))} | {_fmt(v.get('aop_mae_deg'))} |")
    exported = [n for n, m in metrics.items() if m.get("source") == "submission"]
    if exported:
        lines += [
            "", "## The challenge submissions", "",
            "Every variant's checkpoint is exported as a challenge folder (`submissions/<variant>/`) and "
            "its Testing metrics above are those of the folder evaluated through the challenge interface "
            "(`model().load(dir)`, then `predict(PIL RGB image)` per image). The library predictor on the "
            "same checkpoint gives:", "",
            "| variant | submission MRE px | library MRE px | largest coordinate difference px | agree within 1e-4 px |",
            "|---|---|---|---|---|",
        ]
        for n in exported:
            m = metrics[n]
            lib = m["library_predictor"]
            lines.append(f"| `{n}` | {_fmt(m['mre_px'], 4)} | {_fmt(lib.get('mre_px'), 4)} | "
                         f"{m['max_coordinate_difference_px']:.2e} | {'yes' if m['agrees_within_1e-4_px'] else 'no'} |")
        if recommended is not None:
            lines += ["", f"`submission/` holds the recommended variant, `{recommended}` (chosen by the "
                      f"profile `{profile.name}`, not by these Testing figures)."]
    lines += ["", "## Stages", ""]
    if selection is not None:
        pr = ""
        if selection_truth is not None:
            pr = (f" Against the synthetic ground truth: precision {_fmt(selection_truth['precision'])}, recall "
                  f"{_fmt(selection_truth['recall'])} (share of kept sequences that are good standard-plane sequences, "
                  "and share of good ones kept).")
        lines += [
            f"* Screening: {len(selection.kept)} of {len(selection.names)} sequences kept "
            f"(frame cut {selection.threshold:.4f} cosine similarity to the nearest reference, "
            f"{profile.screening.criterion()}, rule `{profile.screening.rule}`); the extractor is the "
            "stage-1 encoder, since the paper's ImageNet ResNet50 cannot be downloaded here." + pr,
        ]
    for s in pretrain:
        lines.append(f"* {s.stage}: {s.items} training items, {s.global_step} steps, final InfoNCE loss "
                     f"{_fmt(s.final_loss, 3)}{' (already done)' if s.skipped else ''}.")
    for name, ft in finetunes.items():
        lines.append(f"* fine-tuning `{name}`: {ft.labelled} labelled images (8:2 hold-out split), "
                     f"{ft.epochs} epochs, best epoch {ft.best_epoch}, hold-out MRE "
                     f"{_fmt(ft.best_metrics.get('val/mre_px'))} px.")
        for counts in ft.pseudo_labels:
            lines.append(f"  Pseudo-labels of round {counts.get('round', '?')}: "
                         f"{PseudoLabelStats.from_dict(counts).describe()} (a landmark counted under the first "
                         "test it failed).")
    lines += ["", "## Profile", "", "```", profile.describe(), "```", ""]
    lines += [
        "## Time and machine",
        "",
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores visible; load average {_load_text(load)}. "
        "The machine may be shared: wall times grow with the load.",
        "",
    ]
    if stage_seconds:
        cpu = dict(stage_cpu_seconds or {})
        lines += [
            "Wall seconds grow with whatever else runs on the machine; CPU seconds (this process, all its "
            "threads) much less so: compare runs by CPU seconds.", "",
            "| stage | wall s | CPU s |", "|---|---|---|",
        ]
        lines += [f"| {k} | {v:.1f} | {_fmt(cpu.get(k), 1)} |" for k, v in stage_seconds.items()]
        lines.append("")
    captions = {
        "test_predictions": "Predictions (filled discs, AoP construction drawn) against the ground truth "
                            "(green rings) on Testing images.",
        "worst_cases": "The Testing images with the largest MRE.",
        "training_curves": "Training curves from the CSV logs: fine-tuning (the last student of pseudo-label "
                           "self-training) and every pre-training (InfoNCE against chance, reconstruction error).",
        "labelled_cases": "The training cases chosen for labelling, in the order they were chosen.",
        "error_histograms": "Per-image error distributions on Testing.",
        "screening_scores": "Screening: each frame's highest similarity to a reference image; blue sequences "
                            "were kept.",
    }
    lines += ["## Figures", ""]
    for key, p in figures.items():
        lines += [f"**{captions.get(key, key)}**", "", f"![{key}](figures/{p.name})", ""]
    report_path = out / "report.md"
    write_text_atomic(report_path, "\n".join(lines))
    return ReportResult(report_path, metrics_path, figures, metrics, verdict)

"""What each command of ``python -m sslkeypoint`` does with its parsed options.

Heavy imports (torch, Lightning) happen here, inside the commands, after the options were read.
Every command ends with one line saying what it wrote.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["RUNNERS", "class_spec", "model_path"]


def _progress(value: bool | None) -> bool:
    return sys.stderr.isatty() if value is None else bool(value)


def class_spec(value: Any, module: str, what: str) -> Any:
    """A method or measure given on the command line as the library's stored ``{"class", "kwargs"}`` form.

    Accepts a class name (looked up in ``module``), a dotted path, ``{"class_path": ..., "init_args":
    {...}}`` (the jsonargparse / Lightning form) or the stored form itself.

    Examples:
        >>> class_spec("MeanTeacherMethod", "sslkeypoint.methods", "method")
        {'class': 'sslkeypoint.methods.MeanTeacherMethod', 'kwargs': {}}
        >>> class_spec({"class_path": "AngleMeasure", "init_args": {"vertex": 0}}, "sslkeypoint.measures", "measure")
        {'class': 'sslkeypoint.measures.AngleMeasure', 'kwargs': {'vertex': 0}}
    """
    if isinstance(value, str):
        value = {"class_path": value}
    if not isinstance(value, Mapping):
        raise ValueError(f"a {what} is a class name or {{class_path: ..., init_args: {{...}}}}; got {value!r}")
    if "class" in value:
        return dict(value)
    if "class_path" not in value:
        raise ValueError(f"a {what} needs a class_path (e.g. {{class_path: ..., init_args: {{...}}}}); got {dict(value)}")
    path = str(value["class_path"])
    unknown = sorted(set(value) - {"class_path", "init_args"})
    if unknown:
        raise ValueError(f"a {what} has class_path and init_args; got also {unknown}")
    return {"class": path if "." in path else f"{module}.{path}", "kwargs": dict(value.get("init_args") or {})}


def model_path(path: str) -> Path:
    """A model given as a fine-tuning run folder (its best, else last checkpoint), a file or a predictor folder."""
    p = Path(path)
    if p.is_dir() and (p / "summary.json").is_file() and not (p / "predictor.json").is_file():
        summary = json.loads((p / "summary.json").read_text())
        for key in ("best_checkpoint", "last_checkpoint"):
            found = summary.get(key)
            if found and Path(found).is_file():
                return Path(found)
            if found and (p / "checkpoints" / Path(found).name).is_file():  # a moved run folder
                return p / "checkpoints" / Path(found).name
        raise FileNotFoundError(f"--model {p}: the run folder's summary.json names no checkpoint that exists")
    if not p.exists():
        raise FileNotFoundError(f"--model {p}: no such file or folder")
    return p


def _config(cls: Any, cfg: Any, extra: Mapping[str, Any]) -> Any:
    from sslkeypoint.cli.parser import config_fields

    objects = ("method", "measures")  # given as class specs: in ``extra`` when set
    data = {name: _plain(cfg[name]) for name in config_fields(cls) if name in cfg and name not in objects}
    data.update(extra)
    return cls.from_dict(data)


def _trainer(cfg: Any) -> Any:
    from sslkeypoint.configs import TrainerConfig

    return TrainerConfig.from_dict(_plain(cfg["trainer"]))


def _plain(value: Any) -> Any:
    """A parsed value with jsonargparse namespaces as dicts."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return value


def run_select(cfg: Any) -> int:
    """``select``: see :func:`sslkeypoint.selection.select_images`."""
    from sslkeypoint.cli.lists import groups_for, listed_files
    from sslkeypoint.data import list_images
    from sslkeypoint.selection import contact_sheet, select_images

    images = Path(cfg.images)
    if not images.is_dir():
        raise FileNotFoundError(f"--images {images}: not a folder of images")
    files = list_images(images)
    if not files:
        raise ValueError(f"--images {images}: no image files")
    labelled = listed_files(Path(cfg.labelled), images) if cfg.labelled is not None else []
    groups = groups_for(Path(cfg.groups), images, files) if cfg.groups is not None else None
    selection = select_images(files, cfg.budget, strategy=cfg.strategy, groups=groups, labelled=labelled,
                              encoder=cfg.encoder, model=cfg.model, seed=cfg.seed, views=cfg.views,
                              progress=_progress(cfg.progress))
    csv_path = selection.write_csv(cfg.out)
    sheet = contact_sheet(selection, csv_path.with_suffix(".png")) if len(selection) else None
    print(f"{len(selection)} of {selection.candidates} images chosen ({cfg.strategy}"
          + (f", features: {selection.features}" if selection.features else "") + f"): {csv_path}"
          + (f", contact sheet {sheet}" if sheet else ""))
    return 0


def run_pretrain(cfg: Any) -> int:
    """``pretrain``: :func:`~sslkeypoint.recipes.run_pretraining`."""
    from sslkeypoint.configs import PretrainConfig
    from sslkeypoint.recipes import run_pretraining

    if (cfg.images is None) == (cfg.sequences is None):
        raise ValueError("give one of --images (stage 1: a folder of images) or --sequences (stage 2: one folder per video)")
    extra: dict[str, Any] = {}
    if cfg.method is not None:
        extra["method"] = class_spec(cfg.method, "sslkeypoint.methods", "pre-training method")
    config = _config(PretrainConfig, cfg, extra)
    result = run_pretraining(
        config, images=cfg.images, sequences=cfg.sequences, out_dir=cfg.out, init_from=cfg.init_from,
        trainer=_trainer(cfg), resume=cfg.resume, max_steps=cfg.max_steps, progress=_progress(cfg.progress),
    )
    print(f"pretrain: encoder written to {result.encoder_path} after {result.global_step} steps")
    return 0


def run_finetune(cfg: Any) -> int:
    """``finetune``: :func:`~sslkeypoint.recipes.run_finetuning` on a records file."""
    from sslkeypoint.configs import FinetuneConfig
    from sslkeypoint.data import read_records
    from sslkeypoint.recipes import run_finetuning

    records, names = read_records(cfg.records, format=cfg.format)
    if not records:
        raise ValueError(f"--records {cfg.records}: no labelled images")
    extra: dict[str, Any] = {"num_keypoints": records[0].num_keypoints}
    if cfg.keypoint_names is None and names is not None:
        extra["keypoint_names"] = list(names)
    if cfg.method is not None:
        extra["method"] = class_spec(cfg.method, "sslkeypoint.methods", "fine-tuning method")
    if cfg.measures:
        extra["measures"] = {name: class_spec(spec, "sslkeypoint.measures", f"measure {name!r}")
                             for name, spec in dict(cfg.measures).items()}
    config = _config(FinetuneConfig, cfg, extra)
    source: Any = records
    if cfg.val_records is not None:
        source = (records, read_records(cfg.val_records, format=cfg.format)[0])
    result = run_finetuning(
        config, source, cfg.out, unlabelled=cfg.unlabelled, trainer=_trainer(cfg), resume=cfg.resume,
        max_steps=cfg.max_steps, progress=_progress(cfg.progress),
    )
    best = result.best_metrics
    mm = f", {best['val/mre_mm']:.2f} mm" if math.isfinite(best.get("val/mre_mm", math.nan)) else ""
    print(f"finetune: {result.epochs} epochs, best validation error {best.get('val/mre_px', math.nan):.2f} px{mm} "
          f"(epoch {result.best_epoch}); validation split {result.split}; model: {result.best_checkpoint}")
    return 0


def run_evaluate(cfg: Any) -> int:
    """``evaluate``: :func:`~sslkeypoint.metrics.evaluate` of a model on a records file."""
    from sslkeypoint.data import read_records
    from sslkeypoint.inference import KeypointPredictor
    from sslkeypoint.metrics import evaluate

    predictor = KeypointPredictor.from_checkpoint(model_path(cfg.model))
    records, names = read_records(cfg.records, format=cfg.format)
    if cfg.out is not None:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)  # a bad --out is refused before the evaluation
    result = evaluate(predictor, records, keypoint_names=predictor.keypoint_names or names,
                      sdr_radii=cfg.sdr_radii, progress=_progress(cfg.progress))
    print(result.table)
    if cfg.out is not None:
        folder = result.save(cfg.out)
        print(f"evaluate: {len(records)} images; metrics.json, per_image.csv, table.txt and errors.png in {folder}")
    return 0


def _pixel_sizes(value: str | None, files: Sequence[Path], root: Path) -> list[float | None] | float | None:
    if value is None:
        return None
    try:
        size = float(value)
    except ValueError:
        pass
    else:
        if not (math.isfinite(size) and size > 0):
            raise ValueError(f"--pixel_size {value}: expected a positive pixel size in mm, or a CSV file of them")
        return size
    from sslkeypoint.cli.lists import pixel_size_table

    table = pixel_size_table(Path(value))
    out: list[float | None] = []
    for f in files:
        key = next((k for k in (str(f.relative_to(root)) if f.is_relative_to(root) else None, f.name) if k in table), None)
        out.append(table[key] if key is not None else None)
    missing = sum(v is None for v in out)
    if missing == len(out):
        raise ValueError(f"--pixel_size {value}: names none of the {len(out)} images (first: "
                         f"{files[0].relative_to(root) if files[0].is_relative_to(root) else files[0].name}); its "
                         "first column must hold their names as under --images, or their file names")
    if missing:
        print(f"predict: {missing} of {len(out)} images have no pixel size in {value}: their lengths are left empty",
              file=sys.stderr)
    return out


def run_predict(cfg: Any) -> int:
    """``predict``: landmarks and measures of new images as CSV (and overlays)."""
    from sslkeypoint.data import list_images
    from sslkeypoint.inference import KeypointPredictor

    model = model_path(cfg.model)
    root = Path(cfg.images)
    if root.is_dir():
        files = list_images(root)
        if not files:
            raise ValueError(f"--images {root}: no image files")
    elif root.is_file():
        files, root = [root], root.parent
    else:
        raise FileNotFoundError(f"--images {root}: no such file or folder")
    predictor = KeypointPredictor.from_checkpoint(model, batch_size=cfg.batch_size)
    sizes = _pixel_sizes(cfg.pixel_size, files, root)
    prediction = predictor.predict(files, progress=_progress(cfg.progress), pixel_size=sizes)
    names = [str(f.relative_to(root)) for f in files]
    out = prediction.write_csv(cfg.out, names)
    if cfg.overlays is not None:
        from sslkeypoint.data import read_image
        from sslkeypoint.visualize import draw_predictions

        folder = Path(cfg.overlays)
        for i, (f, name) in enumerate(zip(files, names)):
            target = folder / Path(name).with_suffix(".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            draw_predictions(read_image(f, channels=predictor.in_chans), prediction.keypoints[i],
                             names=predictor.keypoint_names, measures=predictor.measures).save(target)
    print(f"predict: {len(files)} images -> {out}" + (f", overlays in {cfg.overlays}" if cfg.overlays else ""))
    return 0


def run_export(cfg: Any) -> int:
    """``export``: :func:`~sslkeypoint.export.export_onnx` (or TorchScript for a ``.pt`` file)."""
    from sslkeypoint.export import export_onnx, export_torchscript, onnx_metadata
    from sslkeypoint.inference import KeypointPredictor

    predictor = KeypointPredictor.from_checkpoint(model_path(cfg.model))
    out = Path(cfg.out)
    if out.suffix.lower() in (".pt", ".pth"):
        export_torchscript(predictor, out)
        print(f"export: TorchScript -> {out} (input: resized images; keypoints in input pixels)")
        return 0
    export_onnx(predictor, out, original_pixels=cfg.original_pixels)
    meta = onnx_metadata(out)
    line = (f"export: ONNX -> {out}; input {meta['input']} ({meta['in_chans']} channel(s), {meta['pixel_range']}), "
            f"keypoints in {meta['keypoint_space']} pixels: {meta['keypoint_names']}")
    if cfg.check_images is not None:
        line += "; " + _check(predictor, out, Path(cfg.check_images), cfg.original_pixels)
    print(line)
    return 0


def _check(predictor: Any, onnx_file: Path, folder: Path, original_pixels: bool) -> str:
    """Run the ONNX file on the images of ``folder`` and compare with the predictor (original pixels)."""
    import numpy as np
    import onnxruntime
    import torch

    from sslkeypoint.data import list_images, read_image
    from sslkeypoint.heatmaps import keypoints_to_original

    files = list_images(folder)[:16]
    if not files:
        raise ValueError(f"--check_images {folder}: no image files")
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    worst = 0.0
    for f in files:
        expected = predictor.predict(f).keypoints[0].numpy()
        if original_pixels:
            image = read_image(f, channels=predictor.in_chans)[None].numpy()
            got = session.run(None, {"image": image})[0][0]
        else:
            x, size = predictor.preprocess(f)
            kp = session.run(None, {"images": x[None].numpy()})[0]
            got = keypoints_to_original(torch.from_numpy(kp), size, predictor.input_size)[0].numpy()
        worst = max(worst, float(np.nanmax(np.abs(got - expected))))
    if worst > 0.5:
        raise ValueError(f"the exported model differs from the model by up to {worst:.3f} px on {folder}")
    return f"checked on {len(files)} images: within {worst:.3f} px of the model"


#: Command → what runs it.
RUNNERS: dict[str, Callable[[Any], int]] = {
    "select": run_select,
    "pretrain": run_pretrain,
    "finetune": run_finetune,
    "evaluate": run_evaluate,
    "predict": run_predict,
    "export": run_export,
}

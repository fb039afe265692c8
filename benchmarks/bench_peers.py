"""Peers side by side on PSFHS: landmarker's own recipe, a segmentation-models-pytorch U-Net, sslkeypoint.

The same testing split, the same labelled cases (for each budget and seed, the random draw of the
label-efficiency benchmark, :func:`iugc_aop.stages.labelled_subset`, split 8:2 by similarity
group for validation), errors in the 256×256 images' pixels and AoP error in degrees:

* ``smp_unet`` — ``segmentation_models_pytorch.Unet("resnet34", encoder_weights=None)`` (random
  initialisation: no weights can be downloaded), its full-resolution output average-pooled to the
  heatmap size and squashed by a sigmoid, trained on exactly sslkeypoint's heatmaps with the same
  codec, loss, optimiser, augmentation and schedule as ``unet`` (the library's
  :class:`~sslkeypoint.lightning.HeatmapFinetuneModule` with ``model=``, Lightning's early stopping
  and best checkpoint on the validation MRE);
* ``landmarker`` — landmarker's own recommended heatmap recipe from its examples: an
  ``OriginalSpatialConfigurationNet``, a learnable anisotropic Gaussian heatmap generator
  (``sigmas=3``, ``gamma=100``) and ``GaussianHeatmapL2Loss(alpha=5)``, SGD (lr 1e-6, momentum
  0.99, Nesterov, weight decay 1e-3), batch 1, ``ReduceLROnPlateau`` on the validation loss,
  gradient clipping, ``local_soft_argmax`` decoding, landmarker's own resizing and data pipeline
  (128 × 128, MONAI random affine); ``--landmarker-epochs`` (its examples: 200); the epoch of
  the lowest validation MRE is kept;
* ``unet`` and any other variant of the example's table (``--methods``): sslkeypoint, run (or
  reused) exactly as in ``bench_label_efficiency.py`` (same work folder).

The peers are benchmark extras, never library dependencies: run this script in an environment
with ``pip install -r benchmarks/requirements-peers.txt`` (landmarker ≥ 0.4.1 pins SciPy < 1.16 and
Pillow ≥ 12: keep it in its own virtual environment). A peer that cannot be imported is reported,
with the import error, instead of run.

Usage::

    python benchmarks/bench_peers.py --budgets 50 200 all --seeds 3
    python benchmarks/bench_peers.py --budgets 50 --peers smp_unet --methods unet pseudo_unet
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
import torch
from _common import cpu_model
from bench_label_efficiency import add_run_arguments, finetune, markdown, prepare, summarise

RESULTS = Path(__file__).parent / "results"
PEERS = ("smp_unet", "landmarker")


def _labelled(ds: Any, budget_text: str, seed: int) -> tuple[list[Any], list[Any]]:
    """The budget's labelled cases and their hold-out split, as the label-efficiency benchmark draws them."""
    from iugc_aop.stages import holdout_split, labelled_subset

    budget = None if budget_text == "all" else int(budget_text)
    return holdout_split(labelled_subset(ds.train, budget, seed), 0.2, seed)


def _scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """MRE, per-landmark error and AoP error of ``(N, 3, 2)`` predictions in original px."""
    from sslkeypoint.geometry import angle_of_progression

    dist = np.linalg.norm(pred - truth, axis=-1)
    p, t = torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(truth, dtype=torch.float64)
    aop_err = (angle_of_progression(p[:, 0], p[:, 1], p[:, 2]) - angle_of_progression(t[:, 0], t[:, 1], t[:, 2])).abs()
    spread = {name: float(pred[:, k].std(0).mean() / max(truth[:, k].std(0).mean(), 1e-9))
              for k, name in enumerate(("PS1", "PS2", "FH1"))}
    return {"mre_px": float(dist.mean()), "aop_mae_deg": float(aop_err[torch.isfinite(aop_err)].mean()),
            "per_landmark_px": {n: float(dist[:, k].mean()) for k, n in enumerate(("PS1", "PS2", "FH1"))},
            "spread_ratio": spread}


# ---------------------------------------------------------------------------------------- smp


class PooledHeatmaps(torch.nn.Module):
    """A full-resolution segmentation network as a heatmap network: average-pooled to the heatmap
    stride, sigmoid (the library's heatmaps are in [0, 1])."""

    def __init__(self, network: torch.nn.Module, stride: int) -> None:
        super().__init__()
        self.network = network
        self.pool = torch.nn.AvgPool2d(stride) if stride > 1 else torch.nn.Identity()
        self.in_chans = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.pool(self.network(x)))


def run_smp(profile: Any, train: list[Any], val: list[Any], testing: list[Any], out: Path, progress: bool) -> dict[str, Any]:
    """The smp U-Net (ResNet-34, random init) trained like ``unet`` on the library's heatmaps."""
    import pytorch_lightning as pl
    import segmentation_models_pytorch as smp
    from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

    from sslkeypoint.inference import KeypointPredictor
    from sslkeypoint.lightning import HeatmapFinetuneModule, KeypointDataModule

    cfg = profile.finetune
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    network = PooledHeatmaps(smp.Unet("resnet34", encoder_weights=None, in_channels=cfg.in_chans,
                                      classes=cfg.num_keypoints), cfg.heatmap_stride)
    with torch.no_grad():  # the library's head start: heatmaps near 0.01 everywhere at first
        head = network.network.segmentation_head[0]
        head.bias.fill_(math.log(0.01 / 0.99))
    module = HeatmapFinetuneModule(cfg, model=network)
    data = KeypointDataModule(train, val, input_size=cfg.input_size, num_keypoints=cfg.num_keypoints,
                              in_chans=cfg.in_chans, batch_size=cfg.batch_size, seed=cfg.seed)
    best = ModelCheckpoint(dirpath=out, filename="best", monitor="val/mre_px", mode="min", save_top_k=1,
                           save_weights_only=True, auto_insert_metric_name=False)
    trainer = pl.Trainer(accelerator="cpu", devices=1, deterministic=True, max_epochs=cfg.max_epochs, logger=False,
                         callbacks=[best, EarlyStopping("val/mre_px", patience=cfg.early_stopping_patience,
                                                        check_finite=False)],
                         enable_progress_bar=progress, enable_model_summary=False, use_distributed_sampler=False,
                         num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    module.load_state_dict(torch.load(best.best_model_path, weights_only=True)["state_dict"])
    predictor = KeypointPredictor(module.model.eval(), module.codec, in_chans=cfg.in_chans)
    prediction = predictor.predict([r.path for r in testing])
    truth = np.stack([np.asarray(r.keypoints) for r in testing])
    entry = _scores(prediction.keypoints.numpy(), truth)
    entry.update(best_epoch=int(module.val_history[int(np.argmin([h["val/mre_px"] for h in module.val_history]))]
                                ["epoch"]), epochs=int(trainer.current_epoch),
                 steps=int(trainer.global_step), parameters=sum(p.numel() for p in network.parameters()))
    return entry


# ---------------------------------------------------------------------------------------- landmarker


def run_landmarker(train: list[Any], val: list[Any], testing: list[Any], epochs: int, seed: int, size: int,
                   progress: bool) -> dict[str, Any]:
    """landmarker's recommended recipe (see the module notes) on the same cases."""
    from landmarker.data import LandmarkDataset
    from landmarker.heatmap import GaussianHeatmapGenerator, heatmap_to_coord
    from landmarker.losses import GaussianHeatmapL2Loss
    from landmarker.models import OriginalSpatialConfigurationNet
    from landmarker.transforms.images import UseOnlyFirstChannel
    from landmarker.utils import pixel_to_unit
    from monai.transforms import Compose, RandAffined, ScaleIntensityd
    from tqdm.auto import tqdm

    torch.manual_seed(seed)

    def yx(records: list[Any]) -> np.ndarray:  # ours (x, y) -> landmarker's (y, x)
        return np.ascontiguousarray(np.stack([np.asarray(r.keypoints, dtype=np.float32) for r in records])[..., ::-1])

    dim = (size, size)
    norm = [UseOnlyFirstChannel(("image",)), ScaleIntensityd(("image",))]
    aug = RandAffined(("image",), prob=1.0, rotate_range=(-np.pi / 12, np.pi / 12), translate_range=(-10, 10),
                      scale_range=(-0.1, 0.1), shear_range=(-0.1, 0.1))
    aug.set_random_state(seed=seed)
    train_ds = LandmarkDataset(imgs=[str(r.path) for r in train], landmarks=yx(train), dim_img=dim,
                               transform=Compose([*norm, aug]))
    val_ds = LandmarkDataset(imgs=[str(r.path) for r in val], landmarks=yx(val), dim_img=dim, transform=Compose(norm))
    test_ds = LandmarkDataset(imgs=[str(r.path) for r in testing], landmarks=yx(testing), dim_img=dim,
                              transform=Compose(norm))
    k = train_ds[0]["landmark"].shape[0]
    model = OriginalSpatialConfigurationNet(in_channels=1, out_channels=k)
    gen = GaussianHeatmapGenerator(nb_landmarks=k, sigmas=3.0, gamma=100, heatmap_size=dim, learnable=True)
    crit = GaussianHeatmapL2Loss(alpha=5)
    opt = torch.optim.SGD([{"params": model.parameters(), "weight_decay": 1e-3}, {"params": gen.sigmas},
                           {"params": gen.rotation}], lr=1e-6, momentum=0.99, nesterov=True)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "min", factor=0.5, patience=10, cooldown=10)

    def predict(ds: Any) -> np.ndarray:
        model.eval()
        out = []
        with torch.no_grad():
            for b in torch.utils.data.DataLoader(ds, batch_size=8):
                coords = heatmap_to_coord(model(b["image"]), method="local_soft_argmax")
                back = pixel_to_unit(coords, dim=dim, dim_orig=b["dim_original"], padding=b["padding"])
                out.append(back.flip(-1).numpy())
        return np.concatenate(out)

    truth_val = np.stack([np.asarray(r.keypoints) for r in val])
    best_mre, best_state, best_epoch = math.inf, None, -1
    steps = 0
    for epoch in tqdm(range(epochs), desc="landmarker", disable=not progress):
        model.train()
        for b in torch.utils.data.DataLoader(train_ds, batch_size=1, shuffle=True):
            opt.zero_grad()
            loss = crit(model(b["image"]), gen.sigmas, gen(b["landmark"]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1e4)
            opt.step()
            steps += 1
        model.eval()
        with torch.no_grad():
            val_loss = float(np.mean([crit(model(b["image"]), gen.sigmas, gen(b["landmark"])).item()
                                      for b in torch.utils.data.DataLoader(val_ds, batch_size=1)]))
        sched.step(val_loss)
        mre = float(np.linalg.norm(predict(val_ds) - truth_val, axis=-1).mean())
        if mre < best_mre:
            best_mre, best_epoch = mre, epoch
            best_state = {k_: v.detach().clone() for k_, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    entry = _scores(predict(test_ds), np.stack([np.asarray(r.keypoints) for r in testing]))
    entry.update(best_epoch=best_epoch, epochs=epochs, steps=steps, parameters=sum(p.numel() for p in model.parameters()))
    return entry


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_arguments(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budgets", nargs="+", default=["50", "200", "all"])
    p.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    p.add_argument("--methods", nargs="+", default=["unet"], help="variants of sslkeypoint's example to run beside them")
    p.add_argument("--landmarker-epochs", type=int, default=200, help="landmarker's epochs (its examples: 200)")
    p.add_argument("--json", type=Path, default=RESULTS / "peers.json")
    args = p.parse_args()
    args.pretrain_tag, args.extra_unlabelled, args.select = None, [], ["random"]
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    t0 = time.perf_counter()
    profile, ds, encoders, _ = prepare(args)
    testing = ds.testing
    runs: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    for peer, module in (("smp_unet", "segmentation_models_pytorch"), ("landmarker", "landmarker")):
        if peer in args.peers:
            try:
                __import__(module)
            except ImportError as exc:
                unavailable[peer] = f"{type(exc).__name__}: {exc}"
                print(f"{peer}: not run, {unavailable[peer]}", flush=True)
    from iugc_aop.stages import evaluate_records
    from sslkeypoint.inference import KeypointPredictor

    for budget_text in args.budgets:
        for seed in range(args.seeds):
            train, val = _labelled(ds, budget_text, seed)
            labelled = len(train) + len(val)
            for method in args.methods:
                t = time.perf_counter()
                ft = finetune(args, profile, encoders, method, budget_text, seed)
                metrics, _ = evaluate_records(KeypointPredictor.from_checkpoint(ft.checkpoint), testing, progress=False)
                runs.append({"method": method, "budget": budget_text, "labelled": ft.labelled, "seed": seed,
                             **{k: metrics[k] for k in ("mre_px", "aop_mae_deg", "per_landmark_px", "spread_ratio")},
                             "seconds": round(time.perf_counter() - t, 1), "best_epoch": ft.best_epoch})
                print(f"{method:<12} n{budget_text:<4} s{seed}  MRE {metrics['mre_px']:6.2f} px  AoP "
                      f"{metrics['aop_mae_deg']:6.2f}°", flush=True)
            for peer in args.peers:
                if peer in unavailable:
                    continue
                t = time.perf_counter()
                seeded = profile.with_overrides(finetune=dataclasses.replace(profile.finetune, seed=seed))
                if peer == "smp_unet":
                    entry = run_smp(seeded, train, val, testing, Path(args.work) / "peers" / f"smp_n{budget_text}_s{seed}",
                                    args.progress)
                else:
                    entry = run_landmarker(train, val, testing, args.landmarker_epochs, seed,
                                           profile.finetune.input_size[0], args.progress)
                entry.update(method=peer, budget=budget_text, labelled=labelled, seed=seed,
                             seconds=round(time.perf_counter() - t, 1))
                runs.append(entry)
                print(f"{peer:<12} n{budget_text:<4} s{seed}  MRE {entry['mre_px']:6.2f} px  AoP "
                      f"{entry['aop_mae_deg']:6.2f}°  ({entry['seconds']:.0f} s, {entry['steps']} steps)", flush=True)
    table = summarise(runs)
    print()
    print(markdown(table))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": runs, "table": table, "unavailable": unavailable,
                                     "seconds": round(time.perf_counter() - t0, 1), "cpu": cpu_model(),
                                     "cores": os.cpu_count(), "budgets": args.budgets, "seeds": args.seeds,
                                     "landmarker_epochs": args.landmarker_epochs, "profile": profile.to_dict()},
                                    indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

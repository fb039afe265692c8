"""Tests of masked-image reconstruction: the masks, the loss, the network, a pre-training run, the
pre-trained U-Net loaded into fine-tuning, and an exact resume."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from sslkeypoint.configs import FinetuneConfig, PretrainConfig, TrainerConfig
from sslkeypoint.encoders import UNetEncoder, load_pretrained_encoder
from sslkeypoint.lightning import HeatmapFinetuneModule
from sslkeypoint.losses import masked_reconstruction_loss
from sslkeypoint.methods import ReconstructionMethod
from sslkeypoint.models import HeatmapUNet
from sslkeypoint.recipes import run_pretraining
from sslkeypoint.ssl import MaskedReconstruction, patch_mask
from sslkeypoint.weights import load_partial_state_dict, load_state_dict_file

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

TINY = {"widths": [4, 8], "bottleneck_width": 8}
TRAINER = TrainerConfig(accelerator="cpu", devices=1, deterministic=True, log_every_n_steps=1)


@given(st.integers(1, 4), st.integers(4, 40), st.integers(4, 40), st.integers(2, 9), st.floats(0.0, 0.95))
def test_patch_mask_hides_the_asked_share_of_whole_patches(batch, h, w, patch, ratio) -> None:
    mask = patch_mask(batch, (h, w), patch, ratio)
    rows, cols = -(-h // patch), -(-w // patch)
    assert mask.shape == (batch, 1, h, w) and mask.dtype == torch.bool
    # Every patch is hidden whole: its top-left pixel says it, and each image hides exactly round(ratio·n).
    corners = mask[:, 0, ::patch, ::patch]
    assert corners.shape[-2:] == (rows, cols)
    assert (corners.flatten(1).sum(1) == round(ratio * rows * cols)).all()
    grown = corners.repeat_interleave(patch, 1).repeat_interleave(patch, 2)[:, :h, :w]
    assert torch.equal(grown, mask[:, 0])


def test_the_loss_counts_only_hidden_pixels() -> None:
    pred, target = torch.zeros(1, 1, 2, 2), torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert masked_reconstruction_loss(pred, target, torch.tensor([[[[True, False], [False, True]]]])).item() == 8.5
    assert masked_reconstruction_loss(pred, target).item() == 7.5
    assert masked_reconstruction_loss(pred, target, torch.zeros(1, 1, 2, 2, dtype=torch.bool)).item() == 7.5
    with pytest.raises(ValueError, match="mask must be"):
        masked_reconstruction_loss(pred, target, torch.ones(1, 2, 3, 2, dtype=torch.bool))


def test_the_network_paints_whole_images_and_fills_masked_patches_with_the_mean() -> None:
    model = MaskedReconstruction(UNetEncoder(1, **TINY), decoder_stride=2, mask_ratio=0.5, patch_size=4)
    images = torch.rand(3, 1, 16, 16)
    torch.manual_seed(1)
    inputs, mask = model.corrupt(images)
    assert mask is not None and mask.float().mean().item() == 0.5
    means = images.mean(dim=(-2, -1), keepdim=True).expand_as(images)
    assert torch.equal(inputs[mask.expand_as(inputs)], means[mask.expand_as(means)])
    assert torch.equal(inputs[~mask.expand_as(inputs)], images[~mask.expand_as(images)])
    assert model.reconstruct(images).shape == images.shape
    with pytest.raises(ValueError, match="multiples of 4"):
        model.reconstruct(torch.rand(1, 1, 18, 18))
    denoise = MaskedReconstruction(UNetEncoder(1, **TINY), decoder_stride=2, mask_ratio=0.0, noise_std=0.1)
    noisy, none = denoise.corrupt(images)
    assert none is None and not torch.equal(noisy, images)


def test_export_unet_fills_the_heatmap_model_but_its_head() -> None:
    model = MaskedReconstruction(UNetEncoder(1, **TINY), decoder_stride=2, patch_size=4)
    heatmap = HeatmapUNet(UNetEncoder(1, **TINY), num_keypoints=3, heatmap_stride=2)
    report = load_partial_state_dict(heatmap, model.export_unet())
    assert not report.mismatched and not report.unexpected
    assert sorted({k.split(".")[0] for k in report.missing}) == ["head"]
    for key, value in model.decoder.state_dict().items():
        assert torch.equal(heatmap.decoder.state_dict()[key], value)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recon_images")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    for i in range(12):
        cx, cy = rng.uniform(8, 24, 2)
        img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30.0) + 0.1 * rng.random((32, 32))
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(root / f"{i}.png")
    return root


def config(**kw) -> PretrainConfig:
    base = dict(image_size=32, encoder_kwargs=TINY, batch_size=4, max_epochs=3, lr=3e-3, seed=2,
                method=ReconstructionMethod(decoder_stride=2, patch_size=8, mask_ratio=0.5),
                augment={"scale": (0.8, 1.0), "blur_p": 0.0})
    base.update(kw)
    return PretrainConfig(**base)


def losses(out: Path) -> list[float]:
    values: list[float] = []
    for f in sorted((out / "logs").glob("*/metrics.csv")):
        values += [float(r["train_loss_step"]) for r in csv.DictReader(f.open()) if r.get("train_loss_step")]
    return values


def test_a_pretraining_run_learns_and_saves_the_unet(tmp_path: Path, images: Path) -> None:
    result = run_pretraining(config(max_epochs=8), images=images, out_dir=tmp_path / "run", trainer=TRAINER,
                             progress=False)
    steps = losses(tmp_path / "run")
    assert result.global_step == 24 and len(steps) == 24
    assert np.mean(steps[-6:]) < 0.6 * np.mean(steps[:3])  # it learns to paint the blobs back
    assert result.unet_path is not None and result.queue_size == 0
    # The encoder file rebuilds the encoder on its own; the U-Net file initialises fine-tuning.
    encoder = load_pretrained_encoder(result.encoder_path)
    assert isinstance(encoder, UNetEncoder)
    ft = FinetuneConfig(input_size=(32, 32), heatmap_size=(16, 16), num_keypoints=2, encoder_kwargs=TINY,
                        init_encoder=str(result.unet_path), init_decoder=True)
    module = HeatmapFinetuneModule(ft)
    module.init_encoder_from(ft.init_encoder)
    module.init_decoder_from(ft.init_encoder)
    saved = load_state_dict_file(result.unet_path)
    for key, value in module.model.decoder.state_dict().items():
        assert torch.equal(value, saved[f"decoder.{key}"])


def test_an_interrupted_run_resumes_exactly(tmp_path: Path, images: Path) -> None:
    """The masks are seeded per step: a resumed run draws them again.

    Every training image is the same (a run resumed between epochs may see them in another order),
    so the steps differ only by their draws.
    """
    copies = tmp_path / "copies"
    copies.mkdir()
    for i in range(12):
        (copies / f"{i}.png").write_bytes((images / "0.png").read_bytes())
    full = run_pretraining(config(), images=copies, out_dir=tmp_path / "full", trainer=TRAINER, progress=False)
    run_pretraining(config(), images=copies, out_dir=tmp_path / "cut", trainer=TRAINER, progress=False, max_steps=3)
    resumed = run_pretraining(config(), images=copies, out_dir=tmp_path / "cut", trainer=TRAINER, progress=False)
    assert resumed.global_step == full.global_step == 9
    assert losses(tmp_path / "cut") == pytest.approx(losses(tmp_path / "full"), abs=1e-6)

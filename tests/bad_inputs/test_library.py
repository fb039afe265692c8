"""Bad inputs to the library itself: unusable weight files, codec sizes, heatmaps and coordinates.

Weight files are made in each case's folder: a genuine pre-training or fine-tuning checkpoint
(written by the LightningModule's own ``on_save_checkpoint``, without training), then damaged,
truncated or replaced the way a careless or hostile user would.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import nn

from sslkeypoint.data import KeypointDataset, KeypointRecord, read_records
from sslkeypoint.geometry import angle_between, angle_of_progression, contour_tangent_point
from sslkeypoint.heatmaps import HeatmapCodec, render_gaussian_heatmaps
from sslkeypoint.inference import KeypointPredictor
from sslkeypoint.lightning import HeatmapFinetuneModule, PretrainModule
from sslkeypoint.measures import AngleMeasure
from sslkeypoint.weights import (
    UnsafeCheckpointError,
    WeightFileError,
    load_partial_state_dict,
    save_state_dict,
)
from tests.bad_inputs.cases import Case, ids, run_case
from tests.lightning.test_finetune import tiny_config as finetune_config
from tests.lightning.test_pretrain import tiny_config as pretrain_config

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")

CODEC = HeatmapCodec((64, 64), (16, 16), sigma=1.0)
NAN = math.nan


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- weight files ------------------------------------------------------------------------------


def lightning_checkpoint(module: pl.LightningModule, path: Path) -> Path:
    """What Lightning writes for ``module`` (weights + the module's own entries), without training."""
    ckpt: dict[str, Any] = {"epoch": 0, "global_step": 0, "pytorch-lightning_version": pl.__version__,
                            "state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def pretraining_run(tmp: Path) -> Path:
    """A stage-1 run folder: ``checkpoints/last.ckpt`` and ``encoder.safetensors``."""
    module = PretrainModule(pretrain_config())
    lightning_checkpoint(module, tmp / "pretrain" / "checkpoints" / "last.ckpt")
    save_state_dict(module.model.encoder, tmp / "pretrain" / "encoder.safetensors")
    return tmp / "pretrain"


def finetuning_checkpoint(tmp: Path) -> Path:
    return lightning_checkpoint(HeatmapFinetuneModule(finetune_config()), tmp / "finetune" / "checkpoints" / "last.ckpt")


def truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def random_bytes(path: Path, seed: int = 0) -> Path:
    # First byte 0x42: no format's magic number, as a random file almost always is.
    path.write_bytes(b"\x42" + np.random.default_rng(seed).bytes(4095))
    return path


class RunsCommand:
    """Unpickling it runs a shell command (what a hostile checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class Settings:
    """A training script's own settings object, pickled into its checkpoint."""

    lr = 0.1


def predictor_from(make: Any, tmp: Path) -> KeypointPredictor:
    return KeypointPredictor.from_checkpoint(make(tmp))


def partial_load(make: Any, tmp: Path) -> Any:
    return load_partial_state_dict(nn.Conv2d(1, 2, 3), make(tmp))


def timm_from_truncated(tmp: Path) -> Any:
    from sslkeypoint.encoders import TimmEncoder

    return TimmEncoder("resnet18", in_chans=1, pretrained_file=_truncated_safetensors(tmp))


def raised(call: Any, tmp: Path) -> BaseException:
    """The exception ``call(tmp)`` raises (for cases that check more than a message fragment)."""
    with pytest.raises(Exception) as info:
        call(tmp)
    return info.value


def _pretraining_checkpoint(tmp: Path) -> Path:
    return pretraining_run(tmp) / "checkpoints" / "last.ckpt"


def _encoder_file(tmp: Path) -> Path:
    return pretraining_run(tmp) / "encoder.safetensors"


def _truncated_last_ckpt(tmp: Path) -> Path:
    return truncated(finetuning_checkpoint(tmp))


def _empty(name: str, tmp: Path) -> Path:
    (tmp / name).write_bytes(b"")
    return tmp / name


def _run_folder(tmp: Path) -> Path:
    return finetuning_checkpoint(tmp).parent.parent


def _foreign_lightning_checkpoint(tmp: Path) -> Path:
    torch.save({"state_dict": {"net.weight": torch.ones(2)}, "pytorch-lightning_version": "2.6.0"}, tmp / "other.ckpt")
    return tmp / "other.ckpt"


def _weights_that_do_not_fit(tmp: Path) -> Path:
    path = finetuning_checkpoint(tmp)
    ckpt = torch.load(path, weights_only=True)
    name = next(k for k in ckpt["state_dict"] if k.startswith("model.") and k.endswith("weight"))
    ckpt["state_dict"][name] = torch.zeros(3)
    torch.save(ckpt, path)
    return path


def _text_file(tmp: Path) -> Path:
    (tmp / "weights.pth").write_text("epoch,loss\n1,0.52\n")
    return tmp / "weights.pth"


def _truncated_safetensors(tmp: Path) -> Path:
    return truncated(_encoder_file(tmp))


def _command_pickle(tmp: Path) -> Path:
    torch.save({"state_dict": {"weight": torch.ones(2, 1, 3, 3)}, "x": RunsCommand(tmp / "pwned")}, tmp / "evil.pth")
    return tmp / "evil.pth"


def _plain_pickle(tmp: Path) -> Path:
    with (tmp / "weights.pkl").open("wb") as fh:
        pickle.dump({"weight": np.ones((2, 1, 3, 3))}, fh)
    return tmp / "weights.pkl"


def _settings_checkpoint(tmp: Path) -> Path:
    torch.save({"state_dict": {"weight": torch.ones(2, 1, 3, 3)}, "settings": Settings()}, tmp / "model.pth")
    return tmp / "model.pth"


def _torchscript(tmp: Path) -> Path:
    torch.jit.trace(nn.Conv2d(1, 2, 3), torch.zeros(1, 1, 5, 5)).save(str(tmp / "model.pt"))
    return tmp / "model.pt"


def _png_named_pth(tmp: Path) -> Path:
    Image.new("L", (4, 4)).save(tmp / "weights.pth", format="PNG")
    return tmp / "weights.pth"


def _no_tensors(tmp: Path) -> Path:
    torch.save({"epoch": 3, "lr": 0.1}, tmp / "meta.pth")
    return tmp / "meta.pth"


def _command_not_run(err: BaseException, tmp: Path) -> None:
    assert isinstance(err, UnsafeCheckpointError) and "would call" in str(err)
    assert err.names and all(n.endswith(".system") for n in err.names)
    assert not (tmp / "pwned").exists()  # refused before anything was unpickled


def _no_unsafe_advice(err: BaseException, tmp: Path) -> None:
    assert isinstance(err, WeightFileError) and not isinstance(err, UnsafeCheckpointError), repr(err)
    assert "weights_only=False" not in str(err) and str(tmp / "noise.pth") in str(err)


def _finetuned_predictor(pred: KeypointPredictor, tmp: Path) -> None:
    assert pred.keypoint_names == ("A", "B") and pred.input_size == (32, 32)


def _export_pretraining_checkpoint(tmp: Path) -> Any:
    from iugc_aop.submission import export_submission

    return export_submission(_pretraining_checkpoint(tmp), tmp / "submission")


# -- codec sizes, heatmaps, coordinates ----------------------------------------------------------


def _peak_with_one_nan_pixel(tmp: Path) -> tuple[torch.Tensor, torch.Tensor]:
    hm = CODEC.encode(torch.tensor([[[30.0, 21.0]]]))
    hm[0, 0, 0, 0] = NAN
    return CODEC.decode(hm)


def _true_peak(out: tuple[torch.Tensor, torch.Tensor], tmp: Path) -> None:
    kp, score = out
    assert torch.allclose(kp, torch.tensor([[[30.0, 21.0]]]), atol=1e-3), kp
    assert score.item() == pytest.approx(float(CODEC.encode(torch.tensor([[30.0, 21.0]])).max()))


def _all_nan_is_missing(out: tuple[torch.Tensor, torch.Tensor], tmp: Path) -> None:
    kp, score = out
    assert torch.isnan(kp).all() and torch.isnan(score).all()


def _zero_map(hm: torch.Tensor, tmp: Path) -> None:
    assert hm.shape == (1, 2, 16, 16) and hm[0, 0].abs().sum() == 0 and hm[0, 1].max() == 1


def _aop_nan(value: Any, tmp: Path) -> None:
    assert torch.isnan(value).all(), value


def _one_pair_against_n(value: Any, tmp: Path) -> None:
    assert value.shape == (3,) and value.tolist() == pytest.approx([90.0, 45.0, 180.0])


def _write(tmp: Path, name: str, text: str) -> Path:
    (tmp / name).write_text(text)
    return tmp / name


def _out_of_frame(tmp: Path) -> Any:
    Image.new("L", (20, 10)).save(tmp / "a.png")
    dataset = KeypointDataset([KeypointRecord(tmp / "a.png", np.array([[5.0, 5.0], [25.0, 5.0]]))], input_size=16)
    return dataset.check(0)


def _counted_out_of_frame(invalid: Any, tmp: Path) -> None:
    assert invalid is not None and invalid.reason == KeypointDataset.REASON_OUT_OF_FRAME
    assert "keypoint 1 at (25, 5)" in invalid.detail


CASES = [
    # Weight files given to the predictor (and through it, to export-submission).
    Case("predictor: a pre-training checkpoint", functools.partial(predictor_from, _pretraining_checkpoint),
         WeightFileError, "is a pre-training checkpoint (MoCo, stage 1): it holds an encoder"),
    Case("predictor: pre-training's encoder.safetensors", functools.partial(predictor_from, _encoder_file),
         WeightFileError, "FinetuneConfig(init_encoder="),
    Case("predictor: random bytes named .ckpt", functools.partial(predictor_from, lambda t: random_bytes(t / "x.ckpt")),
         WeightFileError, "is not a weight file: it holds no known weight format"),
    Case("predictor: a truncated last.ckpt", functools.partial(predictor_from, _truncated_last_ckpt),
         WeightFileError, "last.ckpt: is a truncated or damaged torch checkpoint"),
    Case("predictor: an empty .ckpt", functools.partial(predictor_from, functools.partial(_empty, "best.ckpt")),
         WeightFileError, "best.ckpt: is empty (0 bytes)"),
    Case("predictor: a run folder instead of its checkpoint", functools.partial(predictor_from, _run_folder),
         WeightFileError, "is a folder without predictor.json"),
    Case("predictor: weights that do not fit their description",
         functools.partial(predictor_from, _weights_that_do_not_fit), WeightFileError, "its weights do not fit"),
    Case("predictor: another program's Lightning checkpoint",
         functools.partial(predictor_from, _foreign_lightning_checkpoint), WeightFileError,
         "not written by sslkeypoint fine-tuning"),
    Case("predictor: a checkpoint that does not exist", functools.partial(predictor_from, lambda t: t / "nope.ckpt"),
         FileNotFoundError, "checkpoint not found"),
    Case("predictor: a fine-tuning checkpoint", functools.partial(predictor_from, finetuning_checkpoint),
         check=_finetuned_predictor),
    Case("export-submission: a pre-training checkpoint", _export_pretraining_checkpoint, WeightFileError,
         "is a pre-training checkpoint (MoCo, stage 1)"),
    # Weight files given to partial loading (encoder initialisation goes through it).
    Case("partial load: a text file named .pth", functools.partial(partial_load, _text_file),
         WeightFileError, "is not a weight file: it holds text (it starts with 'epoch,loss"),
    Case("partial load: random bytes get no weights_only=False advice",
         functools.partial(raised, functools.partial(partial_load, lambda t: random_bytes(t / "noise.pth"))),
         check=_no_unsafe_advice),
    Case("partial load: a truncated .safetensors", functools.partial(partial_load, _truncated_safetensors),
         WeightFileError, "encoder.safetensors: is a truncated safetensors file"),
    Case("timm encoder: a truncated .safetensors as pretrained_file", timm_from_truncated, WeightFileError,
         "encoder.safetensors: is a truncated safetensors file"),
    Case("partial load: an empty file", functools.partial(partial_load, functools.partial(_empty, "w.pth")),
         WeightFileError, "w.pth: is empty (0 bytes)"),
    Case("partial load: a folder", functools.partial(partial_load, lambda t: t),
         WeightFileError, "is a folder, not a weight file"),
    Case("partial load: a file that does not exist", functools.partial(partial_load, lambda t: t / "nope.pth"),
         FileNotFoundError, "weight file not found"),
    Case("partial load: a checkpoint that would run a command",
         functools.partial(raised, functools.partial(partial_load, _command_pickle)), check=_command_not_run),
    Case("partial load: a checkpoint holding the script's settings object",
         functools.partial(partial_load, _settings_checkpoint), UnsafeCheckpointError,
         "Python objects (tests.bad_inputs.test_library.Settings)"),
    Case("partial load: a plain pickle.dump file", functools.partial(partial_load, _plain_pickle),
         WeightFileError, "is a plain Python pickle (pickle.dump), not a torch checkpoint"),
    Case("partial load: a TorchScript model.pt", functools.partial(partial_load, _torchscript),
         WeightFileError, "is a TorchScript program"),
    Case("partial load: a PNG image named .pth", functools.partial(partial_load, _png_named_pth),
         WeightFileError, "is not a weight file: it holds a PNG image"),
    Case("partial load: a checkpoint without tensors", functools.partial(partial_load, _no_tensors),
         WeightFileError, "no tensors found"),
    # Codec sizes.
    Case("codec: heatmap size 64.5", lambda t: HeatmapCodec((256, 256), (64.5, 64.5)), ValueError,  # type: ignore[arg-type]
         "heatmap_size must be positive whole numbers of pixels (H, W); got (64.5, 64.5)"),
    Case("codec: heatmap size given as the string '64'", lambda t: HeatmapCodec(256, "64"), ValueError,  # type: ignore[arg-type]
         "heatmap_size must be positive whole numbers of pixels (H, W); got '64'"),
    Case("codec: input size 0", lambda t: HeatmapCodec((0, 256), 64), ValueError, "input_size"),  # type: ignore[arg-type]
    Case("codec: heatmap size 256 / 4 is a whole number", lambda t: HeatmapCodec(256, (256 / 4, 256 / 4)),  # type: ignore[arg-type]
         check=lambda codec, t: codec.heatmap_size == (64, 64)),
    # Heatmaps and keypoints through the codec.
    Case("decode: one NaN pixel in a heatmap", _peak_with_one_nan_pixel, check=_true_peak),
    Case("decode: a heatmap that is all NaN", lambda t: CODEC.decode(torch.full((1, 1, 16, 16), NAN)),
         check=_all_nan_is_missing),
    Case("decode: heatmaps of another size", lambda t: CODEC.decode(torch.zeros(1, 2, 32, 32)), ValueError,
         "heatmaps must have shape (B, K, 16, 16); got (1, 2, 32, 32)"),
    Case("encode: an infinite keypoint", lambda t: CODEC.encode(torch.tensor([[[3.0, 4.0], [math.inf, 2.0]]])),
         ValueError, "keypoints must be finite (NaN marks a missing keypoint); got [inf, 2.0] at index (0, 1)"),
    Case("encode: complex keypoints", lambda t: CODEC.encode(torch.tensor([[[3.0 + 1j, 4.0]]])), ValueError,
         "keypoints must be real"),
    Case("encode: a NaN keypoint gives an empty target", lambda t: CODEC.encode(torch.tensor([[[NAN, 4.0], [9.5, 9.5]]])),
         check=_zero_map),
    Case("render: heatmap size 8.5", lambda t: render_gaussian_heatmaps(torch.zeros(1, 2), (8.5, 8)), ValueError,  # type: ignore[arg-type]
         "heatmap_size must be positive whole numbers"),
    # Geometry and measures.
    Case("AoP: shapes (3, 1, 2) and (4, 2)",
         lambda t: angle_of_progression(torch.zeros(3, 1, 2), torch.ones(4, 2), torch.rand(4, 2)), ValueError,
         "got ps1 (3, 1, 2), ps2 (4, 2), fh1 (4, 2)"),
    Case("angle_between: shapes (3, 1, 2) and (4, 2)", lambda t: angle_between(np.ones((3, 1, 2)), np.ones((4, 2))),
         ValueError, "got u (3, 1, 2), v (4, 2)"),
    Case("AoP: one PS1/PS2 pair against three head points",
         lambda t: angle_of_progression(torch.zeros(2), torch.tensor([1.0, 0.0]),
                                        torch.tensor([[0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])),
         check=_one_pair_against_n),
    Case("AoP: complex coordinates",
         lambda t: angle_of_progression(np.array([0j, 0]), np.array([1 + 1j, 0]), np.array([0.0, 1.0])),
         ValueError, "ps1 must be real (x, y) coordinates"),
    Case("AoP: an infinite coordinate",
         lambda t: angle_of_progression(torch.zeros(2), torch.tensor([math.inf, 1.0]), torch.tensor([1.0, 1.0])),
         check=_aop_nan),
    Case("AoP: a NaN keypoint", lambda t: AngleMeasure(0, 1, 2)(torch.tensor([[0.0, 0.0], [NAN, 1.0], [1.0, 1.0]])),
         check=_aop_nan),
    Case("contour tangent: three vertices at once",
         lambda t: contour_tangent_point(torch.rand(5, 2), torch.rand(3, 2), torch.rand(2)), ValueError,
         "vertex must be one point (x, y) of shape (2,); got shape (3, 2)"),
    Case("measure: AoP of two keypoints", lambda t: AngleMeasure(0, 1, 2)(torch.zeros(2, 2)), ValueError,
         "landmark indices (0, 1, 2) out of range for K=2"),
    Case("measure: landmark index 0.5", lambda t: AngleMeasure(0.5, 1, 2), ValueError,  # type: ignore[arg-type]
         "vertex must be a whole landmark index; got 0.5"),
    Case("measure: complex keypoints", lambda t: AngleMeasure(0, 1, 2)(torch.zeros(3, 2, dtype=torch.complex64)),
         ValueError, "keypoints must be real"),
    # Records.
    Case("records: inf in a coordinate column",
         lambda t: read_records(_write(t, "l.csv", "path,x1,y1\na.png,inf,3\n")), ValueError,
         "row 2, column 'x1': expected a finite number"),
    Case("records: Infinity in a JSON file",
         lambda t: read_records(_write(t, "l.json", '[{"path": "a.png", "keypoints": [[Infinity, 2]]}]')),
         ValueError, "record 0, field 'keypoints': expected finite numbers"),
    Case("records: true as a JSON coordinate",
         lambda t: read_records(_write(t, "l.json", '[{"path": "a.png", "keypoints": [[true, 2]]}]')),
         ValueError, "record 0, field 'keypoints': expected numbers, got True"),
    Case("records: JSON records with different keypoint counts",
         lambda t: read_records(_write(t, "l.json", '[{"path": "a", "keypoints": [[1, 2]]}, '
                                                    '{"path": "b", "keypoints": [[1, 2], [3, 4]]}]')),
         ValueError, "record 1, field 'keypoints': expected K=1 keypoints, as in record 0; got 2"),
    Case("records: a point with three values",
         lambda t: read_records(_write(t, "l.csv", 'Filename,PS1\na.png,"(1, 2, 3)"\n')), ValueError,
         "row 2, column 'PS1': expected a point '(x, y)' of two finite numbers, got '(1, 2, 3)' (3 values)"),
    Case("records: an empty cell is a missing keypoint",
         lambda t: read_records(_write(t, "l.csv", "path,x1,y1,x2,y2\na.png,,,3,4\n"))[0][0].keypoints,
         check=lambda kp, t: np.isnan(kp[0]).all() and kp[1].tolist() == [3.0, 4.0]),
    Case("record: built with an infinite keypoint",
         lambda t: KeypointRecord("b.png", np.array([[1.0, 2.0], [np.inf, 4.0]])), ValueError,
         "KeypointRecord 'b.png': keypoint 1 is (inf, 4.0): coordinates must be finite"),
    Case("record: built with complex keypoints", lambda t: KeypointRecord("c.png", np.array([[1 + 2j, 3.0]])),
         ValueError, "KeypointRecord 'c.png': keypoints must be real"),
    Case("dataset: a keypoint outside the image is a counted skip", _out_of_frame, check=_counted_out_of_frame),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_case(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)

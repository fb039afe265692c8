"""Import-and-predict smoke test of an installed sslkeypoint wheel (run in a clean environment)."""

import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
from PIL import Image

import sslkeypoint
from sslkeypoint import HeatmapCodec, KeypointPredictor, build_heatmap_model

assert "site-packages" in sslkeypoint.__file__, f"not the installed wheel: {sslkeypoint.__file__}"
files = {str(f) for f in metadata.files("sslkeypoint")}
assert any(f.endswith("LICENSE") for f in files), "LICENSE is not in the wheel"
assert any(f.endswith("py.typed") for f in files), "py.typed is not in the wheel"

spec = {"encoder": "unet", "encoder_kwargs": {"widths": [4, 8], "bottleneck_width": 8}, "in_chans": 1,
        "num_keypoints": 2, "heatmap_stride": 2}
predictor = KeypointPredictor(build_heatmap_model(spec), HeatmapCodec((32, 32), (16, 16), sigma=1.0),
                              in_chans=1, keypoint_names=("a", "b"))
with tempfile.TemporaryDirectory() as tmp:
    image = Path(tmp) / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50), dtype=np.uint8)).save(image)
    prediction = predictor.predict([image])
    assert prediction.keypoints.shape == (1, 2, 2)
    folder = predictor.save(Path(tmp) / "model")
    assert KeypointPredictor.from_checkpoint(folder).predict(image).keypoints.shape == (1, 2, 2)
help_text = subprocess.run([sys.executable, "-m", "sslkeypoint", "--help"], capture_output=True, text=True,
                           check=True).stdout
assert "evaluate" in help_text and "export" in help_text
print(f"wheel smoke: sslkeypoint {sslkeypoint.__version__} installed from {sslkeypoint.__file__}: import, "
      "predict, save/load and the command line work")

"""Landmarks from an exported ONNX model with onnxruntime, numpy and Pillow only.

Usage: python deploy_onnx.py model.onnx image.png [image2.png ...]

The model was exported with ``python -m sslkeypoint export --original-pixels`` (or
``export_onnx(..., original_pixels=True)``): it takes one image at its own size and returns
keypoints in that image's pixels, so the only pre-processing is decoding the image.
"""

import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps


def load(path: str, channels: int) -> np.ndarray:
    """Decode an image as the model expects: (1, C, H, W) float32 in [0, 1]."""
    image = ImageOps.exif_transpose(Image.open(path))  # as viewers show it
    image = image.convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return array[None]


def main(model_path: str, images: list[str]) -> None:
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    if meta.get("keypoint_space") != "original":
        raise SystemExit(f"{model_path}: exported for resized inputs; export it with --original-pixels")
    names = json.loads(meta["keypoint_names"]) or [f"kp{k}" for k in range(session.get_outputs()[0].shape[1])]
    channels = int(meta["in_chans"])
    print("file," + ",".join(f"{n}_x,{n}_y,{n}_score" for n in names))
    for path in images:
        keypoints, scores = session.run(None, {"image": load(path, channels)})
        cells = [f"{x:.2f},{y:.2f},{s:.3f}" for (x, y), s in zip(keypoints[0], scores[0])]
        print(path + "," + ",".join(cells))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

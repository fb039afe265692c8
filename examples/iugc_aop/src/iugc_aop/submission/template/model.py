"""IUGC 2025 landmark model: PS1, PS2 and FH1 on a transperineal ultrasound image.

Challenge interface: ``m = model(); m.load(folder); m.predict(X)`` where ``X`` is a PIL RGB
image of any size and the result is a numpy array ``[x1, y1, x2, y2, x3, y3]`` (PS1, PS2, FH1) in
``X``'s pixels (integer coordinates at pixel centres).

The folder holds ``model.pt`` (a TorchScript network that maps ``(B, C, H_in, W_in)`` images in
``[0, 1]`` to ``(B, K, 2)`` landmarks in input pixels and ``(B, K)`` scores, heatmap decoding
included) and ``metadata.json`` (input size, channels, landmark order, provenance). Only torch,
numpy, Pillow and the standard library are used. The preprocessing reproduces sslkeypoint's
exactly: decode to float32 in ``[0, 1]`` (8-bit by 255, 16-bit by 65535, a float image by its
range: ``[0, 1]`` kept, ``[0, 255]`` by 255); alpha dropped; three equal channels become one (an exact copy),
other colour images BT.601 luma; bilinear resize with ``align_corners=False`` and antialiasing;
landmarks mapped back with ``x = (x_in + 0.5) * W / W_in - 0.5`` (likewise ``y``), or with the
IUGC starter's ``x = x_in * W / W_in`` when ``metadata.json`` says ``"map_back": "scale"`` (models
trained with the starter's codec). ``X`` is used as given, as sslkeypoint uses a PIL image: its
pixels as they are in memory, an EXIF orientation tag not applied (the landmarks are in the pixels
of ``X``; sslkeypoint turns image *files* upright when it reads them).

Written by sslkeypoint's IUGC example (``python -m iugc_aop export-submission``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# ITU-R BT.601 luma weights (PIL's "L" conversion).
_LUMA = (0.299, 0.587, 0.114)


def _float_to_unit(arr: np.ndarray) -> np.ndarray:
    """A mode-"F" image by its range: [0, 1] kept, [0, 255] divided by 255, anything else refused."""
    out = arr.astype(np.float32)
    if out.size == 0:
        return out
    if not np.isfinite(out).all():
        raise ValueError("a float (mode F) image must hold finite values; it holds NaN or infinity")
    lo, hi = float(out.min()), float(out.max())
    if lo >= 0.0 and hi <= 1.0:
        return out
    if lo >= 0.0 and hi <= 255.0:
        return out / np.float32(255.0)
    raise ValueError(f"a float (mode F) image must hold values in [0, 1] or [0, 255]; it holds [{lo:g}, {hi:g}]")


def _pil_to_unit(img: Image.Image) -> np.ndarray:
    """An ``(H, W)`` or ``(H, W, 3)`` float32 array in ``[0, 1]``."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.float32) / 65535.0
    if mode == "I":  # 32-bit integers: 16-bit grayscale in some Pillow versions
        arr = np.asarray(img, dtype=np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError("32-bit integer (mode I) images outside 0..65535 are not supported")
        return arr.astype(np.float32) / 65535.0
    if mode == "F":
        return _float_to_unit(np.asarray(img, dtype=np.float32))
    if mode in ("L", "RGB"):
        return np.asarray(img).astype(np.float32) / 255.0
    if mode in ("1", "LA", "La"):
        return np.asarray(img.convert("L")).astype(np.float32) / 255.0
    return np.asarray(img.convert("RGB")).astype(np.float32) / 255.0


def _to_tensor(img: Image.Image, in_chans: int) -> torch.Tensor:
    """A ``(in_chans, H, W)`` float32 tensor in ``[0, 1]``."""
    arr = _pil_to_unit(img)
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()
    c = t.shape[0]
    if c == in_chans:
        return t
    if c == 3 and in_chans == 1:
        if torch.equal(t[0], t[1]) and torch.equal(t[0], t[2]):
            return t[:1].clone()
        w = torch.tensor(_LUMA, dtype=t.dtype).view(3, 1, 1)
        return (t * w).sum(dim=0, keepdim=True).clamp_(0.0, 1.0)
    if c == 1:
        return t.repeat(in_chans, 1, 1)
    raise ValueError(f"cannot convert an image with {c} channels to the network's {in_chans}")


class model:  # the name the challenge imports
    """The submission: ``load(folder)`` then ``predict(X)`` for each image."""

    def __init__(self) -> None:
        self.net: torch.jit.ScriptModule | None = None
        self.metadata: dict = {}
        self.input_size = (0, 0)
        self.in_chans = 1
        self.order = [0, 1, 2]
        self.map_back = "pixel_centre"
        self.device = torch.device("cpu")

    def load(self, path: str) -> model:
        """Load ``model.pt`` and ``metadata.json`` from the submission folder ``path``."""
        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        meta_file = folder / "metadata.json"
        net_file = folder / "model.pt"
        for f in (meta_file, net_file):
            if not f.is_file():
                raise FileNotFoundError(f"the submission folder {folder} has no {f.name}")
        self.metadata = json.loads(meta_file.read_text())
        self.input_size = (int(self.metadata["input_size"][0]), int(self.metadata["input_size"][1]))
        self.in_chans = int(self.metadata["in_chans"])
        self.order = [int(i) for i in self.metadata.get("output_indices", [0, 1, 2])]
        self.map_back = str(self.metadata.get("map_back", "pixel_centre"))
        if self.map_back not in ("pixel_centre", "scale"):
            raise ValueError(f"{meta_file}: map_back must be 'pixel_centre' or 'scale'; got {self.map_back!r}")
        with warnings.catch_warnings():  # newer torch flags TorchScript as deprecated; it still loads
            warnings.simplefilter("ignore", FutureWarning)
            self.net = torch.jit.load(str(net_file), map_location=self.device).eval()
        return self

    def predict(self, X: Image.Image) -> np.ndarray:
        """``[x1, y1, x2, y2, x3, y3]`` (PS1, PS2, FH1) in ``X``'s pixels, float64, shape (6,)."""
        if self.net is None:
            raise RuntimeError("call load(path) before predict(X)")
        image = _to_tensor(X, self.in_chans)
        h, w = int(image.shape[-2]), int(image.shape[-1])
        if (h, w) != self.input_size:
            image = F.interpolate(
                image[None], size=self.input_size, mode="bilinear", align_corners=False, antialias=True
            )[0]
        with torch.inference_mode():
            keypoints, _ = self.net(image[None].to(self.device))
        kp = keypoints[0].float().cpu()[self.order]  # (3, 2) input px
        dst = torch.tensor([float(h), float(w)], dtype=torch.float32)
        src = torch.tensor([float(self.input_size[0]), float(self.input_size[1])], dtype=torch.float32)
        scale = (dst / src).flip(-1)
        if self.map_back == "scale":  # the IUGC starter's map: x * W / W_in
            kp = kp * scale
        else:
            kp = (kp + 0.5) * scale - 0.5
        return kp.reshape(-1).numpy().astype(np.float64)

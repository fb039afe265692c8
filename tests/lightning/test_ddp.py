"""Both recipes under DDP on 2 CPU processes (gloo): every process sees the same figures and weights.

Lightning's ``strategy="ddp"`` on the CPU re-launches the running script for process 1, so the
runs happen in ``tests/lightning/ddp_run.py`` (in a subprocess, on a free port, one thread per
process); each process dumps what it logged and its final weights, and the tests below compare
them with each other and with figures recomputed here from the checkpoints.

Fine-tuning uses 9 training and 5 validation images (an odd number: the validation shards hold 3
and 2 images), so a figure computed on one shard, or on shards padded with repeats, differs from
the figure over the whole set and is caught.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from sslkeypoint.inference import KeypointPredictor

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SCRIPT = Path(__file__).with_name("ddp_run.py")
SIZE = 48  # original image size: validation errors are scaled from the 32-px input back to 48 px
NUM_TRAIN, NUM_VAL, NUM_PRETRAIN = 9, 5, 14
TIMEOUT_S = 300


def _blob_image(kp: np.ndarray) -> np.ndarray:
    """Two Gaussian blobs of different brightness at the keypoints ``(x, y)``."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = np.zeros((SIZE, SIZE))
    for j, (x, y) in enumerate(kp):
        img += (0.5 + 0.5 * j) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Generate the data, run ddp_run.py on 2 processes, return the paths and both dumps."""
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    records = []
    for i in range(NUM_TRAIN + NUM_VAL):
        kp = rng.uniform(6, SIZE - 7, size=(2, 2))
        path = root / "images" / f"im{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(_blob_image(kp)).save(path)
        records.append([str(path), kp.tolist()])
    extra = []
    for i in range(NUM_PRETRAIN - NUM_TRAIN - NUM_VAL):
        path = root / "images" / f"extra{i:02d}.png"
        Image.fromarray(_blob_image(rng.uniform(6, SIZE - 7, size=(2, 2)))).save(path)
        extra.append(str(path))
    data = {
        "train": records[:NUM_TRAIN],
        "val": records[NUM_TRAIN:],
        "images": [r[0] for r in records] + extra,
    }
    data_file = root / "data.json"
    data_file.write_text(json.dumps(data))
    out = root / "out"
    out.mkdir()
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    for key in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "GLOBAL_RANK", "RANK", "PL_GLOBAL_SEED"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), str(data_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the launched process 1 is in the same session
        log, _ = proc.communicate()
        pytest.fail(f"the DDP run did not finish in {TIMEOUT_S} s:\n{log[-4000:]}")
    assert proc.returncode == 0, log[-6000:]
    dumps = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    return {"out": out, "data": data, "dumps": dumps, "log": log}

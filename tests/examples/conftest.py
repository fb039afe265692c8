"""Make the worked example importable when it is not installed (``pip install -e examples/iugc_aop``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("iugc_aop") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "iugc_aop" / "src"))

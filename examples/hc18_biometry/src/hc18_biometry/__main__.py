"""``python -m hc18_biometry``: see :mod:`hc18_biometry.cli`."""

from __future__ import annotations

from hc18_biometry.cli import main

raise SystemExit(main())

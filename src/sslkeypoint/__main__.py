"""``python -m sslkeypoint``: see :mod:`sslkeypoint.cli`."""

from __future__ import annotations

from sslkeypoint.cli import main

raise SystemExit(main())

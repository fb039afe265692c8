"""``python -m iugc_aop``: see :mod:`iugc_aop.cli`."""

from __future__ import annotations

from iugc_aop.cli import main

raise SystemExit(main())

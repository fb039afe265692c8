"""The table format of the bad-input suite: one :class:`Case` per thing a careless or hostile user does.

Every test module of this folder holds a ``CASES`` table and one parametrised test that hands each
case to :func:`run_case`. A case either fails with the expected error type and a fragment of its
message (the message must say what was wrong and where), or succeeds and passes its ``check``
(a counted skip, a refusal that left the user's files as they were, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Case:
    """One bad input or fault and what must happen.

    Attributes:
        name: What the user did (the test id).
        run: Does it inside a fresh temporary folder; returns whatever ``check`` needs.
        error: The expected exception type, or ``None`` when the call must succeed.
        match: A fragment of the expected error message (plain text, not a pattern).
        check: For a case that must succeed: asserts on ``run``'s result and the folder (a check
            that returns ``False`` fails too).
    """

    name: str
    run: Callable[[Path], Any]
    error: type[BaseException] | None = None
    match: str = ""
    check: Callable[[Any, Path], None] | None = None

    def __post_init__(self) -> None:
        if (self.error is None) == (self.check is None):
            raise ValueError(f"case {self.name!r}: give exactly one of error or check")


def run_case(case: Case, tmp_path: Path) -> None:
    """Run one case and assert its expected outcome."""
    if case.error is not None:
        with pytest.raises(case.error, match=re.escape(case.match)):
            case.run(tmp_path)
        return
    assert case.check is not None
    verdict = case.check(case.run(tmp_path), tmp_path)
    assert verdict is not False, f"{case.name}: the check returned False"


def ids(cases: list[Case]) -> list[str]:
    """Test ids: the case names, which must be unique within a table."""
    names = [c.name for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate case names: {sorted(duplicates)}")
    return names

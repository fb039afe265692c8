"""Files replaced whole or not at all (sslkeypoint.atomic)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sslkeypoint.atomic import atomic_open, atomic_path, write_text_atomic


def test_the_temporary_file_lies_beside_the_target_with_its_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "figure.png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp.name.startswith(".figure.png.")
        assert tmp.is_file()
        tmp.write_bytes(b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]


def test_a_failing_writer_leaves_the_previous_file_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "stage.json"
    write_text_atomic(target, "old")
    with pytest.raises(KeyboardInterrupt), atomic_open(target) as handle:
        handle.write("new, cut sh")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["stage.json"]


def test_permissions_are_those_of_open_or_of_the_replaced_file(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    fresh = tmp_path / "new.txt"
    write_text_atomic(fresh, "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~mask  # not mkstemp's 0o600
    kept = tmp_path / "kept.txt"
    kept.write_text("x")
    kept.chmod(0o640)
    write_text_atomic(kept, "y")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "y"


def test_atomic_open_writes_bytes_and_refuses_appending(tmp_path: Path) -> None:
    with atomic_open(tmp_path / "a.bin", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode 'w' or 'wb', not 'a'"), atomic_open(tmp_path / "a.bin", "a"):
        pass


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "nowhere" / "run.json", "{}")

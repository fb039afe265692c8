"""Ordinary mistakes on both command lines: one line ``error: …`` and exit status 2, never a traceback.

Each case calls ``python -m sslkeypoint`` (:func:`sslkeypoint.cli.main`) or ``python -m iugc_aop``
(:func:`iugc_aop.cli.main`) in this process, on a few 32-px images made in the case's folder, and
checks the status, that stderr is the one ``error:`` line that names the file or option, and that
no traceback was printed. A bug (an exception that is no user's mistake) still shows its
traceback, and ``--debug`` shows it for ordinary errors too. The PSFHS label-map checks and label
budgets are here as well: both are mistakes in what the user hands over, caught before training.
"""

from __future__ import annotations

import contextlib
import errno
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from PIL import Image

from iugc_aop.cli import main as iugc_main
from iugc_aop.formats.psfhs import read_psfhs_cases
from iugc_aop.stages.finetune import labelled_subset
from sslkeypoint.cli import main as library_main
from tests.bad_inputs.cases import Case, ids, run_case
from tests.conftest import SHARED_DATA

Result = tuple[int, str, str]


def _run(main: Callable[[list[str]], int], argv: list[str]) -> Result:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as stop:  # argparse's own refusals
            status = int(stop.code or 0)
    return status, out.getvalue(), err.getvalue()


def _images(tmp: Path, n: int = 4) -> Path:
    folder = tmp / "images"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(folder / f"i{i}.png")
    return folder


def _records(tmp: Path) -> Path:
    folder = _images(tmp)
    path = tmp / "labels.csv"
    rows = [f"{p.relative_to(tmp)},{5 + i},{6 + i},20,25" for i, p in enumerate(sorted(folder.glob("*.png")))]
    path.write_text("image,a_x,a_y,b_x,b_y\n" + "\n".join(rows) + "\n")
    return path


def _file(tmp: Path, name: str = "notes.txt", text: str = "not a folder\n") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def library(*argv: str | Callable[[Path], Any]) -> Callable[[Path], Result]:
    """``python -m sslkeypoint ARGV``; callables in ``argv`` make the file they stand for in the case folder."""
    return lambda tmp: _run(library_main, [str(a(tmp)) if callable(a) else a for a in argv])


def example(*argv: str | Callable[[Path], Any]) -> Callable[[Path], Result]:
    """``python -m iugc_aop ARGV`` (callables as in :func:`library`)."""
    return lambda tmp: _run(iugc_main, [str(a(tmp)) if callable(a) else a for a in argv])


def one_line_error(*fragments: str, status: int = 2) -> Callable[[Result, Path], None]:
    """Exit ``status``; stderr holds one ``error: …`` line, every fragment, and no traceback."""

    def check(result: Result, tmp: Path) -> None:
        code, _, err = result
        assert code == status, (code, err)
        assert "Traceback" not in err, err
        errors = [line for line in err.splitlines() if line.startswith("error:") or ": error:" in line]
        assert len(errors) == 1, err  # one error line (a list of what was expected may follow it)
        for fragment in fragments:
            assert fragment.replace("TMP", str(tmp)) in err, (fragment, err)

    return check


def nothing_printed_but(*fragments: str) -> Callable[[Result, Path], None]:
    """A one-line error (as :func:`one_line_error`) and nothing on stdout: refused before any work."""

    def check(result: Result, tmp: Path) -> None:
        one_line_error(*fragments)(result, tmp)
        assert result[1] == "", result[1]

    return check


def _model(tmp: Path) -> Path:
    """A tiny fine-tuning checkpoint (64-px input, three landmarks)."""
    from tests.bad_inputs.test_example import _checkpoint

    return _checkpoint()


def with_traceback(*fragments: str, status: int) -> Callable[[Result, Path], None]:
    """Exit ``status``, a traceback, then the ``error:`` line with every fragment."""

    def check(result: Result, tmp: Path) -> None:
        code, _, err = result
        assert code == status, (code, err)
        assert "Traceback (most recent call last)" in err, err
        assert err.strip().splitlines()[-1].startswith("error:"), err
        for fragment in fragments:
            assert fragment in err, (fragment, err)

    return check


def read_only_mount(tmp: Path) -> Result:
    """``--out`` below a read-only mount (``mkdir`` fails with EROFS, as on a read-only file system)."""
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if "ro" in self.parts:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real_mkdir(self, *args, **kwargs)

    with mock.patch.object(Path, "mkdir", mkdir):
        return library("finetune", "--records", _records, "--out", str(tmp / "ro" / "ft"))(tmp)


def bug_in_a_command(*debug: str) -> Callable[[Path], Result]:
    """A command that fails with an exception no user can cause (a ``TypeError`` in the code)."""

    def run(tmp: Path) -> Result:
        def broken(cfg: Any) -> int:
            raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

        with mock.patch.dict("sslkeypoint.cli.commands.RUNNERS", {"predict": broken}):
            return library("predict", "--model", str(tmp), "--images", str(tmp), "--out", str(tmp / "p.csv"), *debug)(tmp)

    return run


# -- PSFHS label maps -------------------------------------------------------------------------------


def _psfhs_copy(tmp: Path, damage: Callable[[np.ndarray], np.ndarray], cases: int = 3) -> Path:
    """The first ``cases`` real PSFHS cases; ``damage`` applied to the first one's label map."""
    source = SHARED_DATA / "psfhs"
    if not (source / "masks").is_dir():
        pytest.skip(f"real PSFHS data not found at {source}")
    root = tmp / "psfhs"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    names = sorted(p.name for p in (source / "masks").glob("*.png"))[:cases]
    for i, name in enumerate(names):
        shutil.copy(source / "images" / name, root / "images" / name)
        labels = np.asarray(Image.open(source / "masks" / name))
        Image.fromarray(damage(labels) if i == 0 else labels).save(root / "masks" / name)
    return root


def swapped(labels: np.ndarray) -> np.ndarray:
    return np.where(labels == 1, 2, np.where(labels == 2, 1, 0)).astype(np.uint8)


def psfhs_with(damage: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], Any]:
    return lambda tmp: read_psfhs_cases(_psfhs_copy(tmp, damage))


def skipped_first(*fragments: str) -> Callable[[Any, Path], None]:
    """The damaged case is skipped (NaN landmarks) with a reason naming its mask; the others are measured."""

    def check(cases: Any, tmp: Path) -> None:
        assert cases.measured.tolist() == [False, True, True]
        (case, reason), = cases.skipped
        assert case == cases.cases[0]
        for fragment in fragments:
            assert fragment in reason, reason
        assert any(case in p.message for p in cases.problems)

    return check


CASES = [
    # python -m sslkeypoint: paths that are not what the option needs.
    Case("pretrain --images names a file", library("pretrain", "--images", _file, "--out", "o"),
         check=one_line_error("not a folder: TMP/notes.txt")),
    Case("finetune --init_encoder names a folder",
         library("finetune", "--records", _records, "--init_encoder", lambda t: t / "images", "--out",
                 lambda t: t / "ft"),
         check=one_line_error("TMP/images: is a folder, not a weight file")),
    Case("finetune --config names a folder",
         library("finetune", "--config", _images, "--records", _records),
         check=one_line_error("--config", "images", "not a file")),
    Case("finetune --config cut short (JSON)",
         library("finetune", "--config", lambda t: _file(t, "cut.json", '{"records":\n'), "--records", _records),
         check=one_line_error("--config", "cut.json", "line 2")),
    Case("finetune --out names an existing file",
         library("finetune", "--records", _records, "--out", lambda t: _file(t, "ft")),
         check=one_line_error("TMP/ft: already exists and is a file; a folder was expected")),
    Case("finetune --out below a file",
         library("finetune", "--records", _records, "--out", lambda t: _file(t, "runs") / "ft"),
         check=one_line_error("TMP/runs/ft: TMP/runs is a file, not a folder")),
    Case("finetune --out on a read-only mount", read_only_mount,
         check=one_line_error("TMP/ro/ft: is on a read-only file system")),
    Case("a bug shows its traceback and asks for a report", bug_in_a_command(),
         check=with_traceback("TypeError: unsupported operand", "this is a bug in sslkeypoint", status=1)),
    Case("--debug shows the traceback of an ordinary error",
         library("finetune", "--records", _records, "--out", lambda t: _file(t, "ft"), "--debug"),
         check=with_traceback("FileExistsError", "ft: already exists and is a file", status=2)),
    Case("finetune --trainer.devices 0 (refused by Lightning)",
         library("finetune", "--records", _records, "--out", lambda t: t / "ft", "--trainer.devices", "0"),
         check=one_line_error("Trainer(devices=0)` value is not a valid input")),
    Case("finetune --config with a key no option has",
         library("finetune", "--config", lambda t: _file(t, "extra.yaml", "max_epochs: 1\nbogus_key: 3\n"),
                 "--records", _records),
         check=one_line_error("--config", "extra.yaml", "bogus_key")),
    # A model's commands and where they write.
    Case("export --out names a folder", library("export", "--model", _model, "--out", _images),
         check=one_line_error("TMP/images: is a folder; a file was expected")),
    Case("predict --out names a folder",
         library("predict", "--model", _model, "--images", _images, "--out", lambda t: t / "images"),
         check=one_line_error("TMP/images: is a folder; a file was expected")),
    Case("predict --pixel_size -1",
         library("predict", "--model", _model, "--images", _images, "--out", "p.csv", "--pixel_size", "-1"),
         check=one_line_error("--pixel_size -1: expected a positive pixel size in mm")),
    Case("predict --pixel_size table with a word after its header",
         library("predict", "--model", _model, "--images", _images, "--out", "p.csv", "--pixel_size",
                 lambda t: _file(t, "px.csv", "image,pixel_size_mm\ni0.png,abc\n")),
         check=one_line_error("px.csv row 2, column 2: expected a pixel size in mm; got 'abc'")),
    Case("evaluate --out names a file: refused before evaluating",
         library("evaluate", "--model", _model, "--records", _records, "--out", lambda t: _file(t, "ev")),
         check=nothing_printed_but("TMP/ev: already exists and is a file")),
    # python -m iugc_aop: the same boundary.
    Case("iugc_aop synth --out below a file", example("synth", "--out", lambda t: _file(t, "data") / "x"),
         check=one_line_error("TMP/data/x: TMP/data is a file, not a folder")),
    Case("iugc_aop finetune --work names a file",
         example("finetune", "--work", lambda t: _file(t, "work"), "--synthetic-dir", lambda t: t / "synth",
                 "--synthetic-size", "smoke", "--profile", "smoke"),
         check=one_line_error("TMP/work: already exists and is a file; a folder was expected")),
    Case("iugc_aop inspect names a file", example("inspect", _file),
         check=one_line_error("IUGC data folder is a file, not a folder: TMP/notes.txt")),
    # Label budgets: whole numbers >= 1, or all.
    Case("iugc_aop finetune --labels 0", example("finetune", "--labels", "0"),
         check=one_line_error("--labels", "a label budget is a whole number >= 1 or 'all'; got '0'")),
    Case("iugc_aop finetune --labels -3", example("finetune", "--labels", "-3"),
         check=one_line_error("a label budget is a whole number >= 1 or 'all'; got '-3'")),
    Case("iugc_aop demo --labels 2.5", example("demo", "--labels", "2.5"),
         check=one_line_error("got '2.5'")),
    Case("labelled_subset with a negative budget", lambda tmp: labelled_subset(list(range(10)), -3), ValueError,
         match="a label budget is a whole number >= 1, or None for all; got -3"),
    # PSFHS label maps that cannot be what they claim: skipped by name, never measured into nonsense.
    Case("PSFHS mask with PS and FH swapped", psfhs_with(swapped),
         check=skipped_first("is larger than the fetal head", "labels swapped?")),
    Case("PSFHS mask saved as 0/255", psfhs_with(lambda m: (m > 0).astype(np.uint8) * 255),
         check=skipped_first("holds label values [255]; expected 0 (background), 1 (PS), 2 (FH)")),
    Case("PSFHS mask whose fetal head fills the image", psfhs_with(lambda m: np.where(m == 1, 1, 2).astype(np.uint8)),
         check=skipped_first("the fetal head (label 2) covers 9", "expected 1–80 %")),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_case(case, tmp_path)

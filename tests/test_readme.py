"""The README's Python example runs as written, and its two commands are the ones CI relies on."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README.md has no Python example"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out == ["tensor(90.)", "tensor(True)", "torch.Size([2, 3, 64, 64])"]


def test_readme_names_both_commands() -> None:
    text = README.read_text()
    for marker, needle in [("<!-- main-command -->", "iugc_aop demo"), ("<!-- test-command -->", "pytest")]:
        block = text.split(marker, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
        assert needle in block

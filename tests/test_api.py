"""docs/api.md's worked example runs as it stands (the Python API for notebooks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_api_example_in_docs_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    code = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/api.md", "exec"), {"__name__": "docs_api"})
    out = capsys.readouterr().out
    assert "2 items; source model module ε 8" in out
    m = re.search(r"lite0 clean accuracy (\d\.\d\d) \[(\d\.\d\d), (\d\.\d\d)\] \(n=2\)", out)
    assert m, out
    assert (tmp_path / "runs/notebook/inputs/labels.csv").is_file() and (
        tmp_path / "runs/notebook/sheets.pdf"
    ).is_file()

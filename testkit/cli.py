"""Drive the real CLI in a subprocess, and check its one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300
    )


def assert_one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    """The CLI run ``r`` exited 2 with one line on stderr, no traceback, that holds every one of ``needles``."""
    assert_one_line(r.returncode, r.stdout, r.stderr, *needles)


def assert_one_line(code: int, out: str, err: str, *needles: str) -> None:
    """Exit status 2, no traceback, and one line on ``err`` that holds every one of ``needles``."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])

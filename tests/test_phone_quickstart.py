"""The README's phone quick start from nothing (issue 28, point 3): craft, print, capture --phone, report, run as
written, with headless Chromium's fake camera (a video the simulated camera made of the printed sheets) as the phone."""

from __future__ import annotations

import os
import re
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.chromium import Chromium, chromium_exe, write_y4m
from testkit.cli import ROOT, run_cli

pytestmark = pytest.mark.slow

# What the test adds to the README's commands: a small batch, a local port, an end, no window.
EXTRA = {
    "craft": ["--limit", "2"],
    "capture": ["--bind", "127.0.0.1", "--port", "0", "--frames", "8", "--headless"],
}


def quickstart() -> list[list[str]]:
    """The commands of the README's phone quick start, in order (``photoproof`` dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Phone quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, flags=re.S)
    assert block, "the phone quick start has no sh block"
    cmds = [shlex.split(line.split("#", 1)[0]) for line in block.group(1).splitlines() if line.strip()]
    assert all(c[0] == "photoproof" for c in cmds)
    return [c[1:] for c in cmds]


def _phone_url(proc: subprocess.Popen[str], timeout: float = 240.0) -> str:
    """Read the capture's output until it prints the page's URL."""
    assert proc.stdout is not None
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            seen.append(line)
            m = re.search(r"phone page: (https://\S+)", line)
            if m:
                return m.group(1)
    raise AssertionError("no phone page URL: " + "".join(seen)[-3000:])


def test_the_phone_quick_start_from_nothing_to_a_report(tmp_path: Path) -> None:
    chromium_exe()
    cmds = quickstart()
    assert [c[0] for c in cmds] == ["craft", "print", "capture", "report"]
    batch = tmp_path / "runs" / "phone"

    def args(cmd: list[str]) -> list[str]:
        return [a.replace("runs/phone", str(batch)) for a in cmd] + EXTRA.get(cmd[0], [])

    for cmd in cmds[:2]:
        r = run_cli(*args(cmd), cwd=tmp_path)
        assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-2000:])
    assert "assumed the default webcam, 1920x1080" in " ".join(r.stdout.split())

    # The phone: Chromium's fake camera plays what the simulated camera sees of the printed sheets.
    from channel.simulate import SimulatedCamera
    from contracts.profile import load_profile

    with SimulatedCamera.from_batch(batch, load_profile("office-laser-webcam"), seed=2, n_frames=12) as cam:
        y4m = write_y4m(tmp_path / "phone.y4m", (f.image for f in cam.frames()), fps=5)

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), *args(cmds[2])],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    br = None
    try:
        url = _phone_url(proc)
        br = Chromium(tmp_path / "chromium", url, y4m)
        assert br.wait_for("document.body && document.body.dataset.done", 240) == "1"
        assert "sheets seen" in br.evaluate("document.body.dataset.progress || ''")
        out, _ = proc.communicate(timeout=120)
    finally:
        if br is not None:
            br.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    assert "recorded" in out and "phone1" in out

    r = run_cli(*args(cmds[3]), cwd=tmp_path)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    assert (batch / "report" / "index.html").is_file() and (batch / "report" / "report.pdf").is_file()
    said = " ".join(r.stdout.split())
    assert "phone1" in said and "clean photographed" in said

"""SIGKILL at random points, then resume: craft, print and report (capture: test_hostile_capture.py).

Each stage runs as a real ``python app.py ...`` subprocess and is killed after a
random delay drawn from a seeded generator (the seed is in the test id). After
the kill the files are either the old ones or the new ones, never a mix, and
re-running the same command finishes the job with no temporary files left.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from contracts.layout import load_layout
from contracts.manifest import load_batch
from contracts.paths import sha256_file
from testkit.batch import write_batch as make_synthetic_batch

ROOT = Path(__file__).resolve().parents[1]


def _app(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _run(*args: str) -> None:
    p = _app(*args)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-3000:]


def _kill_after(p: subprocess.Popen[bytes], delay: float) -> bool:
    """SIGKILL ``p`` after ``delay`` s; False when it had already finished."""
    try:
        p.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        return True


def _digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (``figures/`` included), by its path relative to it."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _temps(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp") or p.name.startswith(".report-")]


@pytest.mark.parametrize("seed", [1, 2])
def test_report_killed_at_a_random_point_leaves_the_old_report_or_the_new_one(tmp_path: Path, seed: int) -> None:
    batch = tmp_path / "b"
    make_synthetic_batch(batch, n_items=3, size=32)
    _run("report", str(batch), "--format", "html,csv")
    old = _digest(batch / "report")
    delay = float(np.random.default_rng(seed).uniform(0.5, 3.0))
    killed = _kill_after(_app("report", str(batch), "--format", "html,csv"), delay)
    now = _digest(batch / "report") if (batch / "report").is_dir() else {}
    if now != old:  # a new report: then a complete one, every file of one run
        meta = json.loads((batch / "report" / "report.json").read_text())
        assert set(meta["files"]) == set(now), (killed, delay)
    _run("report", str(batch), "--format", "html,csv")  # the next run completes and sweeps up
    meta = json.loads((batch / "report" / "report.json").read_text())
    assert set(meta["files"]) == set(_digest(batch / "report"))
    assert _temps(batch) == []


def test_a_report_that_fails_midway_leaves_the_old_report_whole(tmp_path: Path) -> None:
    """A real write failure (a file-size limit, as on a full disk) after the small tables, before the big HTML."""
    import resource

    batch = tmp_path / "b"
    make_synthetic_batch(batch, n_items=3, size=32)
    _run("report", str(batch), "--format", "html,csv")
    old = _digest(batch / "report")
    assert max(len(v) for v in old) and (batch / "report" / "index.html").stat().st_size > 60_000

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    from contracts.manifest import save_batch

    b = load_batch(batch)  # new figures: the first adversarial image no longer fools the source model
    b.items[0].adv.top5["lite0"][0][0] = b.items[0].label.index
    save_batch(batch, b)
    r = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "report", str(batch), "--format", "html,csv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=limit,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "index.html: cannot write it" in r.stderr, r.stderr
    assert _digest(batch / "report") == old and _temps(batch) == []


@pytest.mark.parametrize("seed", [3])
def test_print_killed_at_a_random_point_never_leaves_a_pdf_beside_another_runs_layout(
    tmp_path: Path, seed: int
) -> None:
    batch = tmp_path / "b"
    make_synthetic_batch(batch, n_items=6, size=32)
    _run("print", str(batch), "--tile-mm", "40")
    delay = float(np.random.default_rng(seed).uniform(0.5, 2.5))
    _kill_after(_app("print", str(batch), "--tile-mm", "30", "--no-cover"), delay)
    if (batch / "layout.json").is_file():  # the layout present is the one of the PDF present
        layout = load_layout(batch)
        assert layout.extra["sheets_pdf_sha256"] == sha256_file(batch / "sheets.pdf")
    _run("print", str(batch), "--tile-mm", "30", "--no-cover")
    assert load_layout(batch).tile_mm == 30 and _temps(batch) == []


@pytest.mark.slow
def test_craft_killed_at_a_random_point_resumes_without_redoing_or_losing_items(tmp_path: Path) -> None:
    out = tmp_path / "k"
    args = (
        "craft",
        "--out",
        str(out),
        "--limit",
        "3",
        "--attack",
        "fgsm",
        "--eps",
        "4",
        "--seed",
        "0",
        "--device",
        "cpu",
    )
    p = _app(*args)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and p.poll() is None:  # wait for the first finished item...
        try:
            if load_batch(out).items:
                break
        except Exception:  # noqa: BLE001 - not written yet
            pass
        time.sleep(0.2)
    delay = float(np.random.default_rng(4).uniform(0.0, 1.5))
    _kill_after(p, delay)  # ...then kill it somewhere in the next ones
    done = {it.id: (it.clean.sha256, it.adv.sha256) for it in load_batch(out).items}
    for it in load_batch(out).items:  # every recorded item has its PNGs, intact
        assert sha256_file(out / it.clean.path) == it.clean.sha256 and sha256_file(out / it.adv.path) == it.adv.sha256
    _run(*args)
    batch = load_batch(out)
    assert len(batch.items) == 3 and _temps(out) == []
    assert all(done[it.id] == (it.clean.sha256, it.adv.sha256) for it in batch.items if it.id in done)  # not redone

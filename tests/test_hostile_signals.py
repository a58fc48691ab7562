"""Real processes, real signals, a real lock and a real file-size limit.

- a second craft into an ``--out`` that another process is writing is refused in one line;
- SIGTERM to ``craft`` folds the finished items into ``batch.json`` and exits 143;
- SIGTERM to ``capture`` (photos, and ``--phone``) finishes the frame, marks the session stopped,
  writes its crops, exits 143;
- a full disk during ``capture --phone`` is what the phone is told, not "stop requested".
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from contracts.capturedb import open_db_readonly
from contracts.lock import ExclusiveLock
from craft.outdir import LOCK
from testkit.scenes import tiny_classifier

ROOT = Path(__file__).resolve().parents[1]
APP = [sys.executable, str(ROOT / "app.py")]


def _craft_args(out: Path, model: Path, *extra: str) -> list[str]:
    return [*APP, "craft", "--out", str(out), "--source", str(model), "--eps", "4", *extra]


def test_a_second_craft_into_the_same_out_is_refused_in_one_line(tmp_path: Path) -> None:
    model = tiny_classifier(tmp_path / "tiny.onnx", size=32)
    out = tmp_path / "b"
    out.mkdir()
    held = ExclusiveLock(out / LOCK)  # this process is "the other craft"
    try:
        r = subprocess.run(_craft_args(out, model, "--limit", "2"), capture_output=True, text=True, timeout=300)
    finally:
        held.release()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert (
        len(lines) == 1 and "another craft is writing this batch" in lines[0] and f"process {os.getpid()}" in lines[0]
    )
    assert not (out / "batch.json").exists()
    r = subprocess.run(_craft_args(out, model, "--limit", "2"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(json.loads((out / "batch.json").read_text())["items"]) == 2


def test_sigterm_to_craft_saves_the_finished_items_and_exits_143(tmp_path: Path) -> None:
    model = tiny_classifier(tmp_path / "tiny.onnx", size=32)
    out = tmp_path / "b"
    args = _craft_args(out, model, "--attack", "bim", "--steps", "3000", "--limit", "8", "--batch-size", "1")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.stat().st_size for p in (out / "journal").glob("*.jsonl")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "crafting finished before it could be signalled"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert "stopped by SIGTERM" in err and "re-run the same command to resume" in err
    assert 1 <= len(json.loads((out / "batch.json").read_text())["items"]) < 8
    assert not (out / "journal").exists()


def test_sigterm_to_capture_finishes_the_frame_marks_the_session_and_exits_143(
    setup: tuple[Path, Path, Path],
) -> None:
    batch, model, photos = setup
    args = [*APP, "capture", str(batch), "--model", str(model), "--photos", str(photos), "--loop", "--headless"]
    args += ["--session", "term", "--min-tile-px", "40", "--min-sharpness", "1", "--no-crops"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = batch / "captures" / "term.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            con = open_db_readonly(db)
            n = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
            con.close()
            if n >= 5:
                break
        except Exception:  # not created yet
            pass
        time.sleep(0.2)
    assert proc.poll() is None, "the capture ended before it could be signalled"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "Traceback" not in out + err, out + err
    assert "recorded" in out and "stopped by SIGTERM" in err
    con = open_db_readonly(db)
    stopped, cfg = con.execute("SELECT stopped, config FROM sessions").fetchone()
    con.close()
    assert stopped is not None and json.loads(cfg)["stopped_by"] == "SIGTERM"


def _phone_capture(
    batch: Path, model: Path, tmp_path: Path, limit: int | None = None
) -> tuple[subprocess.Popen[str], str]:
    def limit_files() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = [*APP, "capture", str(batch), "--model", str(model), "--phone", "--bind", "127.0.0.1", "--port", "0"]
    args += ["--duration", "60", "--headless", "--session", "ph", "--min-tile-px", "40", "--min-sharpness", "1"]
    env = {**os.environ, "PHOTOPROOF_CONFIG_DIR": str(tmp_path / "config"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=limit_files
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("phone page: "):
            return proc, line.split("phone page: ", 1)[1].strip()
    proc.kill()
    raise AssertionError("capture --phone printed no URL")


async def _post(url: str, jpeg: bytes, n: int) -> list[dict[str, Any]]:
    base, token = url.split("/?t=")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    out: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        for _ in range(n):
            async with http.post(f"{base}/photo?t={token}&p=signal-phone-1", data=jpeg) as r:
                out.append(dict(await r.json()))
            if out[-1].get("done"):
                break
            await asyncio.sleep(0.05)
    return out


def test_sigterm_to_capture_phone_stops_the_session_cleanly_and_exits_143(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    batch, model, photos = setup
    proc, url = _phone_capture(batch, model, tmp_path)
    try:
        answers = asyncio.run(_post(url, (photos / "IMG_1.jpg").read_bytes(), 2))
        assert answers[-1]["type"] == "report" and len(answers[-1]["tiles"]) == 6
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and "Traceback" not in out, out
    assert "recorded" in out and "stopped by SIGTERM" in out
    con = open_db_readonly(batch / "captures" / "ph-phone1.sqlite")
    stopped, cfg = con.execute("SELECT stopped, config FROM sessions").fetchone()
    n_frames = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    con.close()
    assert stopped is not None and json.loads(cfg)["stopped_by"] == "SIGTERM" and n_frames == 2
    assert list((batch / "captures" / "ph-phone1").rglob("*.png")), "the crop gallery was written"


def test_a_full_disk_is_what_the_phone_is_told(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    batch, model, photos = setup
    proc, url = _phone_capture(batch, model, tmp_path, limit=600_000)
    try:
        answers = asyncio.run(_post(url, (photos / "IMG_1.jpg").read_bytes(), 400))
        out, _ = proc.communicate(timeout=120)  # the failed session ends the run by itself
    finally:
        if proc.poll() is None:
            proc.kill()
    done = [a for a in answers if a.get("done")]
    assert done, f"the disk never filled in {len(answers)} photos"
    why = done[-1]["stopped_by"]
    assert "stop requested" not in why and ("could not save" in why or "writing the capture failed" in why), why
    assert "Traceback" not in out and "writing the capture failed" in out and "stopped: session failed" in out, out
    assert proc.returncode == 2, out

"""Crafting under torchrun (gloo, two CPU processes): same bytes as one process, killed runs resume.

Real lite0, real BIM, real torch.distributed; kept small (4 photos, ε 8, one
torch thread per process).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from contracts.errors import UserError
from contracts.manifest import load_batch
from craft.distributed import Dist

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["craft", "--attack", "bim", "--eps", "8", "--limit", "4", "--batch-size", "1", "--seed", "5", "--device", "cpu"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
for _var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
    ENV.pop(_var, None)

pytestmark = pytest.mark.slow


def _single(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *ARGS, "--out", str(out)],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _torchrun(out: Path, n: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(n),
        str(ROOT / "app.py"),
        *ARGS,
        "--out",
        str(out),
    ]


def _images(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((d / "images").iterdir())}


def _same_batch(a: Path, b: Path) -> None:
    """Byte for byte: every image, and the manifest's items, config and models (ids and timestamps aside)."""
    assert _images(a) == _images(b)
    ma, mb = json.loads((a / "batch.json").read_text()), json.loads((b / "batch.json").read_text())
    assert ma["items"] == mb["items"]
    assert ma["config"] == mb["config"] and ma["models"] == mb["models"]
    assert len(ma["items"]) == 4


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "b"
    r = _single(out)
    assert r.returncode == 0, r.stderr
    return out


def test_two_processes_make_the_same_batch_as_one(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    r = subprocess.run(_torchrun(out, 2), env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("4 items in") == 1, "rank 0 alone prints the summary"
    _same_batch(reference, out)
    assert not (out / "journal").exists(), "the journals were folded into batch.json"


def test_a_killed_two_process_run_resumes_on_one(reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    proc = subprocess.Popen(
        _torchrun(out, 2),
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if any(p.stat().st_size for p in (out / "journal").glob("*.jsonl")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers, no chance to clean up
        proc.wait(timeout=60)
    assert json.loads((out / "batch.json").read_text())["items"] == [], "nothing was compacted: the kill came first"
    done = load_batch(out).items  # batch.json + journals
    assert 1 <= len(done) < 4
    r = _single(out)
    assert r.returncode == 0, r.stderr
    _same_batch(reference, out)
    assert not (out / "journal").exists()


def test_placement_comes_from_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert Dist.from_env() == Dist(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    d = Dist.from_env()
    assert (d.rank, d.world, d.local_rank) == (3, 4, 1)
    assert [k for k in range(10) if d.mine(k)] == [3, 7]
    assert d.device("cpu") == "cpu"
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(UserError, match="RANK=4, WORLD_SIZE=4"):
        Dist.from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(UserError, match="RANK='x'"):
        Dist.from_env()


def test_the_patch_stage_runs_on_rank_zero_and_matches_one_process(tmp_path: Path) -> None:
    """``--attack bim,patch``: the ranks share bim's mini-batches, rank 0 alone optimises the patch; same bytes as one
    process.
    """
    args = [
        "craft",
        "--attack",
        "bim,patch",
        "--eps",
        "8",
        "--steps",
        "2",
        "--target",
        "859",
        "--limit",
        "2",
        "--batch-size",
        "1",
        "--seed",
        "5",
        "--device",
        "cpu",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    r = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), *args, "--out", str(one)],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(ROOT / "app.py"),
            *args,
            "--out",
            str(two),
        ],
        env=ENV,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert _images(one) == _images(two)
    ma, mb = json.loads((one / "batch.json").read_text()), json.loads((two / "batch.json").read_text())
    assert ma["items"] == mb["items"] and [it["attack"] for it in ma["items"]] == ["bim", "bim", "patch", "patch"]
    assert {p.name for p in (two / "patches").iterdir()} == {p.name for p in (one / "patches").iterdir()}
    name = "patch-square-a10-t859.png"
    assert (one / "patches" / name).read_bytes() == (two / "patches" / name).read_bytes()
    assert not (two / "journal").exists()

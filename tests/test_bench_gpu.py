"""bench/gpu.py runs end to end in its reduced CPU mode (the GPU figures need a GPU machine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_in_smoke_mode_and_writes_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu.py"), "--smoke", "--json", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["environment"]["mode"].startswith("smoke")
    assert res["gpu_tests"]["returncode"] in (0, 5) and res["gpu_tests"]["failed"] == 0
    whats = [f["what"] for f in res["figures"]]
    for part in (
        "fp32 NCHW",
        "fp32 channels_last",
        "bf16 autocast",
        "torch.compile",
        "bim+eot",
        "bare fwd+bwd",
        "craft job",
        "capture classifier",
        "bare onnxruntime",
    ):
        assert any(part in w for w in whats), f"no figure for {part}"
    for f in res["figures"]:
        assert f["n"] >= 1 and f["low"] <= f["median"] <= f["high"] and f["median"] > 0, f
    assert "goal >= 500" in r.stdout

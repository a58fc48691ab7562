"""The hostile probe's kit (``tools/hostile_probe.py``): where it works, the base batch every probe copies, and the
registry of probes (name -> a function that damages a copy and returns the CLI arguments to run)."""

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
WORK = Path(os.environ.get("PHOTOPROOF_PROBE_DIR", "/tmp/photoproof-probe"))
BASE, RUN = WORK / "base", WORK / "run"
FULL = []  # set by a probe that must run under a file-size limit (a full disk)


def make_base() -> None:
    """A batch of 3 synthetic items, printed, then given a renderable layout, 3 photos of its sheet and a tiny model."""
    import cv2

    sys.path.insert(0, str(ROOT))
    from printouts.sheets import print_batch
    from testkit.batch import write_batch as make_synthetic_batch
    from testkit.scenes import make_layout, scene, tiny_classifier

    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(parents=True)
    b = BASE / "batch"
    make_synthetic_batch(b, n_items=3, size=64)
    print_batch(b)
    lay = make_layout(b)
    photos = BASE / "photos"
    photos.mkdir()
    for k in range(3):
        sc = scene(b, lay, {lay.sheets[0].sheet_id: dict(tilt_deg=10 * k, fill=0.8)}, seed=k)
        cv2.imwrite(str(photos / f"IMG_{k}.jpg"), sc.frame)
    tiny_classifier(BASE / "tiny.onnx", size=48)


def fresh(name):
    d = RUN / name
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(BASE, d, symlinks=True)
    return d


def jmod(path, fn):
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


P = []


def probe(name):
    def deco(f):
        P.append((name, f))
        return f

    return deco


def model_capture(d, model, *extra):
    """``capture`` of the probe's batch with ``model`` on its photos, one frame, headless."""
    return ["capture", str(d / "batch"), "--model", str(model), "--photos", str(d / "photos"), "--headless",
            "--frames", "1", *extra]  # fmt: skip


def sim_capture(d, *extra):
    """``capture --simulate`` of the probe's batch with tiny.onnx, one frame, headless."""
    return ["capture", str(d / "batch"), "--model", str(d / "tiny.onnx"), "--simulate", "--frames", "1",
            "--headless", *extra]  # fmt: skip


def cap(d, *extra, batch=None):
    return [
        "capture",
        str(batch or d / "batch"),
        "--model",
        str(d / "tiny.onnx"),
        "--photos",
        str(d / "photos"),
        "--headless",
        "--no-crops",
        "--min-tile-px",
        "40",
        "--min-sharpness",
        "1",
        *extra,
    ]

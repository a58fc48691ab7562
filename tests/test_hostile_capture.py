"""Hostile conditions for a capture session: a second writer, a full disk, a refused resume, a NaN model, bad photos.

Real OpenCV, real onnxruntime, real SQLite; the full disk is a real file-size
limit (RLIMIT_FSIZE) on a real capture subprocess.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from capture.classify import OnnxClassifier
from capture.session import default_session_id, run_capture
from capture.sheets.quality import QualityGates
from capture.sources.files import PhotoSource
from contracts.capturedb import open_db_readonly
from contracts.classes import imagenet_names
from contracts.errors import UserError
from contracts.preprocess import PreprocessSpec
from testkit.capture import ROOT, png_bomb
from testkit.capture import db_rows as _rows
from testkit.capture import start_capture as _start_capture
from testkit.scenes import tiny_classifier

GATES = QualityGates(min_sharpness=1, min_tile_px=40)


def test_a_session_in_use_is_locked_and_a_second_writer_is_refused(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    proc, db = _start_capture(batch_dir, model, photos, "shared")
    try:
        before = _rows(db, "SELECT COUNT(*) FROM frames")[0][0]
        with pytest.raises(UserError, match="being recorded by another capture"):
            run_capture(batch_dir, model, PhotoSource(photos), frames=2, session_id="shared", gates=GATES)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # the refused writer added nothing; and once the first is gone (even killed) the session resumes
    n = _rows(db, "SELECT COUNT(*) FROM frames")[0][0]
    assert n >= before
    db2 = run_capture(
        batch_dir, model, PhotoSource(photos), frames=n + 2, session_id="shared", gates=GATES, save_crops=False
    )
    idx = [r[0] for r in _rows(db2, "SELECT idx FROM frames ORDER BY idx")]
    assert idx == list(range(n + 2))


def test_default_session_ids_do_not_collide_within_a_second(setup: tuple[Path, Path, Path]) -> None:
    _, _, photos = setup
    ids = {default_session_id(PhotoSource(photos)) for _ in range(50)}
    assert len(ids) == 50


def test_a_refused_resume_leaves_the_old_session_untouched(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    db = run_capture(batch_dir, model, PhotoSource(photos), frames=2, session_id="keep", gates=GATES, save_crops=False)
    before = _rows(db, "SELECT started, stopped, config FROM sessions")
    other = tiny_classifier(batch_dir / "other.onnx", size=32, name="other")
    with pytest.raises(UserError, match="another model"):
        run_capture(batch_dir, other, PhotoSource(photos), frames=1, session_id="keep")
    assert _rows(db, "SELECT started, stopped, config FROM sessions") == before


def _full_disk_capture(
    batch_dir: Path, model: Path, photos: Path, limit: int, session: str = "full"
) -> subprocess.CompletedProcess[str]:
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    args = [
        sys.executable,
        str(ROOT / "app.py"),
        "capture",
        str(batch_dir),
        "--model",
        str(model),
        "--photos",
        str(photos),
        "--loop",
        "--headless",
        "--session",
        session,
        "--min-sharpness",
        "1",
        "--min-tile-px",
        "40",
        "--no-crops",
        "--frames",
        "100000",
    ]
    return subprocess.run(
        args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_files,
    )


def test_a_full_disk_stops_the_session_cleanly_and_keeps_what_was_committed(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    res = _full_disk_capture(
        batch_dir, model, photos, limit=600_000
    )  # room for a dozen commits (each adds ~40 KB of WAL pages)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "writing the capture failed" in err[0] and "re-run" in err[0], res.stderr
    db = batch_dir / "captures" / "full.sqlite"
    con = open_db_readonly(db)
    n_frames = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    orphans = con.execute(
        "SELECT COUNT(*) FROM observations o LEFT JOIN frames f ON f.idx = o.frame_idx WHERE f.idx IS NULL"
    ).fetchone()[0]
    con.close()
    assert n_frames > 0 and orphans == 0
    # with room again, the same command resumes after the last committed frame
    db2 = run_capture(
        batch_dir, model, PhotoSource(photos), frames=n_frames + 2, session_id="full", gates=GATES, save_crops=False
    )
    assert [r[0] for r in _rows(db2, "SELECT idx FROM frames ORDER BY idx")] == list(range(n_frames + 2))


def test_a_full_disk_before_the_database_exists_is_named(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    assert not (batch_dir / "captures" / "nospace.sqlite").exists()
    res = _full_disk_capture(
        batch_dir, model, photos, limit=2000, session="nospace"
    )  # too small for the database's first pages
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stdout + res.stderr
    err = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert (
        len(err) == 1
        and "nospace.sqlite" in err[0]
        and "writing the new capture database failed" in err[0]
        and "free disk space" in err[0]
    ), res.stderr


def _nan_model(path: Path, size: int = 48) -> Path:
    """Logits ``log(mean(x) - 0.5) * W``: NaN for dark crops (mean below 0.5 after the spec's scaling), finite for
    bright ones.
    """
    W = numpy_helper.from_array(np.linspace(-1, 1, 3 * 1000, dtype=np.float32).reshape(3, 1000), "W")
    half = numpy_helper.from_array(np.array(0.5, np.float32), "half")
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Sub", ["flat", "half"], ["shifted"]),
        helper.make_node("Log", ["shifted"], ["logged"]),
        helper.make_node("MatMul", ["logged", "W"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "nan",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000])],
        [W, half],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    spec = PreprocessSpec(input_size=size, mean=(0.0, 0.0, 0.0), std=(255.0, 255.0, 255.0))
    helper.set_model_props(
        m,
        {
            "photoproof.preprocess": spec.to_json(),
            "photoproof.classes": json.dumps(list(imagenet_names())),
            "photoproof.model": "nan",
        },
    )
    onnx.save(m, str(path))
    return path


def test_a_model_that_outputs_nan_is_counted_honestly(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    batch_dir, _, photos = setup
    model = _nan_model(tmp_path / "nan.onnx")
    clf = OnnxClassifier(model)
    _, p = clf.classify(np.stack([np.full((48, 48, 3), 40, np.uint8), np.full((48, 48, 3), 220, np.uint8)]))
    assert not np.isfinite(p[0]).all() and np.isfinite(p[1]).all()  # the model really does both
    db = run_capture(batch_dir, model, PhotoSource(photos), session_id="nan", gates=GATES, save_crops=False)
    cfg = json.loads(_rows(db, "SELECT config FROM sessions")[0][0])
    n_obs = _rows(db, "SELECT COUNT(*), SUM(good) FROM observations")[0]
    assert cfg["observations"] == n_obs[0] and cfg["good"] == (n_obs[1] or 0)
    assert cfg["nonfinite_outputs"] > 0 and cfg["observations"] + cfg["nonfinite_outputs"] == 3 * 6
    probs = [p for (row,) in _rows(db, "SELECT top5_probs FROM observations") for p in json.loads(row)]
    assert all(np.isfinite(probs))


@pytest.mark.parametrize("kind", ["bomb", "gray16", "float32", "truncated"])
def test_bad_photos_are_skipped_or_converted_never_abort_the_session(setup: tuple[Path, Path, Path], kind: str) -> None:
    batch_dir, model, photos = setup
    first = np.asarray(Image.open(photos / "IMG_1.jpg").convert("L"))
    bad = photos / "IMG_0.png"
    if kind == "bomb":  # 20000 x 20000 px: a few KB on disk, 1.2 GB once decoded to RGB
        png_bomb(photos / "IMG_0.png", 20000, 20000)
    elif kind == "gray16":  # the sheet photo itself as 16-bit greyscale: must still be found
        Image.fromarray(first.astype(np.uint16) * 257).save(bad)
    elif kind == "float32":
        bad = photos / "IMG_0.tif"
        Image.fromarray(first.astype(np.float32) / 255.0, mode="F").save(bad)
    else:
        data = (photos / "IMG_1.jpg").read_bytes()
        (photos / "IMG_0.jpg").write_bytes(data[: len(data) // 3])
    db = run_capture(batch_dir, model, PhotoSource(photos), session_id=f"bad-{kind}", gates=GATES, save_crops=False)
    frames = _rows(db, "SELECT idx, sheets_found FROM frames ORDER BY idx")
    if kind in ("gray16", "float32"):
        assert len(frames) == 5 and frames[0][1] == 1  # converted, not a blank image: the sheet is found in it
    elif kind == "bomb":
        assert len(frames) == 4  # skipped with a warning; the other photos are all recorded
    else:
        assert len(frames) in (4, 5)  # PIL may decode a truncated JPEG partially or refuse it


def test_photo_read_converts_high_bit_depth_properly(tmp_path: Path) -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (8, 1))
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    img = PhotoSource.read(tmp_path / "g16.png")
    assert img is not None and img.dtype == np.uint8
    assert img[0, 0, 0] == 0 and img[0, -1, 0] == 255 and abs(int(img[0, 128, 0]) - 128) <= 1
    Image.fromarray(np.full((8, 8), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    assert PhotoSource.read(tmp_path / "nan.tif") is None  # refused with a warning, not a black frame


def test_symlinked_capture_database_leading_out_of_the_batch_is_refused(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    from analysis.load import load_input

    batch_dir, model, photos = setup
    db = run_capture(batch_dir, model, PhotoSource(photos), frames=1, session_id="real", gates=GATES, save_crops=False)
    outside = tmp_path / "elsewhere.sqlite"
    db.rename(outside)
    (batch_dir / "captures" / "real.sqlite").symlink_to(outside)
    with pytest.raises(UserError, match="outside the batch"):
        load_input(batch_dir)
    with pytest.raises(UserError, match="outside the batch"):
        run_capture(batch_dir, model, PhotoSource(photos), frames=2, session_id="real", gates=GATES)


@pytest.mark.parametrize("seed", [5])
def test_capture_killed_at_a_random_point_resumes_where_it_stopped(setup: tuple[Path, Path, Path], seed: int) -> None:
    batch_dir, model, photos = setup
    proc, db = _start_capture(batch_dir, model, photos, "killed-random")
    time.sleep(float(np.random.default_rng(seed).uniform(0.0, 1.5)))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    n = _rows(db, "SELECT COUNT(*) FROM frames")[0][0]
    db2 = run_capture(
        batch_dir, model, PhotoSource(photos), frames=n + 3, session_id="killed-random", gates=GATES, save_crops=False
    )
    assert [r[0] for r in _rows(db2, "SELECT idx FROM frames ORDER BY idx")] == list(range(n + 3))
    orphans = _rows(
        db2, "SELECT COUNT(*) FROM observations o LEFT JOIN frames f ON f.idx = o.frame_idx WHERE f.idx IS NULL"
    )[0][0]
    cfg = json.loads(_rows(db2, "SELECT config FROM sessions")[0][0])
    assert orphans == 0 and len(cfg["runs"]) == 1 and _rows(db2, "SELECT stopped FROM sessions")[0][0] is not None

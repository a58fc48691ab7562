"""Shared fixtures. ``synthetic_batch`` builds a real batch directory without torch (:mod:`testkit.batch`);
``setup`` adds a layout, photos of its sheet and a tiny model for the capture tests (:mod:`testkit.capture`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit.batch import write_batch
from testkit.capture import photo_setup

# Under pytest-xdist (make test: -n auto), each worker's torch, OpenCV and onnxruntime share the cores with the
# others: one worker per core, so one thread each unless told otherwise (spinning OpenMP threads on a shared
# core cost more than they save). Subprocesses the tests start inherit it.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))


@pytest.fixture(scope="session")
def lite0_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EfficientNet-Lite0 exported to ONNX once per test process (the real model the capture tests run)."""
    from craft.export import export_onnx

    return export_onnx("lite0", tmp_path_factory.mktemp("onnx") / "lite0.onnx")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for modules of tiny tensors.

    On a small shared CPU, OpenMP's fork-join and spinning threads cost more than
    they save on tiny tensors (seen 4-30x slower under load). Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def synthetic_batch(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``synthetic_batch(n_items=4, size=64) -> batch_dir``."""

    def make(name: str = "batch", **kw: Any) -> Path:
        d = tmp_path / name
        write_batch(d, **kw)
        return d

    return make


@pytest.fixture
def setup(synthetic_batch: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """The capture tests' scene (:func:`testkit.capture.photo_setup`): ``(batch, model, photos)``, a 3-item batch
    with a one-sheet layout, a tiny model, and a folder of 3 photos of the sheet plus one without it."""
    return photo_setup(synthetic_batch(n_items=3, size=64), tmp_path)


@pytest.fixture(scope="session")
def face_batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small face batch shared by the face tests: two LFW crops, bim ε 16 with 2 steps on MTCNN, printed, with
    CenterFace prepared in ``models/`` (so ``--model centerface`` needs no export). Treat it as read-only: copy it
    (:func:`shutil.copytree`) before capturing into it."""
    import torch

    from contracts.batchdir import model_path
    from contracts.detection import get_detector
    from craft.attacks.spec import AttackSettings
    from craft.detectors.job import craft_faces
    from craft.detectors.onnxprep import prepare_onnx
    from craft.detectors.photos import lfw_faces
    from photoproof import print_sheets

    out = tmp_path_factory.mktemp("faces") / "batch"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        craft_faces(out, lfw_faces(0, 2), "bim", (16.0,), settings=AttackSettings(steps=2))
    finally:
        torch.set_num_threads(threads)
    print_sheets(out)
    prepare_onnx(get_detector("centerface"), model_path(out, "centerface"))
    return out


@pytest.fixture
def one_line_error(capsys: pytest.CaptureFixture[str]) -> Callable[..., None]:
    """``check(argv, *needles)``: ``app.main(argv)``, run in this process, exits 2 with one line on stderr, no
    traceback, that holds every one of ``needles`` (``testkit.cli.assert_one_line``)."""
    from app import main
    from testkit.cli import assert_one_line

    def check(argv: list[str], *needles: str) -> None:
        code = main(argv)
        cap = capsys.readouterr()
        assert_one_line(code, cap.out, cap.err, *needles)

    return check


@pytest.fixture(scope="session")
def capture_and_report_faces() -> Callable[[Path, str], str]:
    """``run(batch, formats)``: a printed face batch through ``capture --simulate --model centerface`` (4 frames,
    session ``sim``, seed 1; CenterFace prepared in the batch's ``models/`` first when it is not there) and
    ``report --format formats``; both must succeed. Returns the report's console output, whitespace collapsed."""
    from contracts.batchdir import model_path
    from contracts.detection import get_detector
    from craft.detectors.onnxprep import prepare_onnx
    from testkit.cli import run_cli

    def run(batch: Path, formats: str) -> str:
        if not model_path(batch, "centerface").is_file():
            prepare_onnx(get_detector("centerface"), model_path(batch, "centerface"))
        r = run_cli("capture", str(batch), "--simulate", "--model", "centerface", "--frames", "4", "--headless",
                    "--session", "sim", "--seed", "1")  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        r = run_cli("report", str(batch), "--format", formats)
        assert r.returncode == 0, r.stderr[-2000:]
        return " ".join(r.stdout.split())

    return run

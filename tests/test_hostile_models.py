"""Hostile model files and options: native code in a .pt2, model.toml escapes, NaN and negative spec values,
factories that exit or stop at a debugger, fixed batch sizes, EOT memory, patch areas, and labels.csv.

Each case is refused with a one-line ``UserError`` naming the file or option, or handled correctly.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from capture.classify import OnnxClassifier
from contracts.errors import UserError
from contracts.modelspec import MAX_FIXED_BATCH, read_sidecar, spec_overrides
from craft.attacks.eot import check_eot_memory
from craft.attacks.patch import MIN_PATCH_PX, patch_side
from craft.images import user_photos
from craft.loaders import load_factory, load_pt2
from craft.sources import load_source
from testkit.scenes import tiny_classifier

ROOT = Path(__file__).resolve().parents[1]


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.mean((2, 3)))


@pytest.fixture(scope="module")
def native_pt2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real torch.export archive plus an AOTInductor entry whose shared library writes a marker when loaded."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or sys.platform != "linux":
        pytest.skip("needs a C compiler on Linux to build the hostile shared library")
    d = tmp_path_factory.mktemp("pt2")
    marker = d / "native-code-ran"
    src = d / "evil.c"
    src.write_text(
        "#include <stdio.h>\n__attribute__((constructor)) static void ran(void) "
        f'{{ FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("ran", f); fclose(f); }} }}\n'
    )
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(d / "evil.so"), str(src)], check=True, capture_output=True)
    ep = torch.export.export(_Net().eval(), (torch.zeros(2, 3, 32, 32),), dynamic_shapes=({0: torch.export.Dim("n")},))
    path = d / "model.pt2"
    torch.export.save(ep, str(path))
    with zipfile.ZipFile(path) as z:
        prefix = z.namelist()[0].split("/")[0]
    meta = {"AOTI_DEVICE_KEY": "cpu", "AOTI_PLATFORM": "linux", "AOTI_MACHINE": "x86_64", "AOTI_CPU_ISA": ""}
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(f"{prefix}/data/aotinductor/model/x.wrapper_metadata.json", json.dumps(meta))
        z.write(d / "evil.so", f"{prefix}/data/aotinductor/model/x.wrapper.so")
    return path, marker


def test_a_pt2_with_native_code_is_refused_before_anything_is_loaded(native_pt2: tuple[Path, Path]) -> None:
    path, marker = native_pt2
    with pytest.raises(UserError, match=r"holds compiled native code .*aotinductor.*--unsafe-native-code") as e:
        load_pt2(str(path))
    assert "\n" not in str(e.value) and not marker.exists()


def test_the_unsafe_flag_really_loads_the_native_code(native_pt2: tuple[Path, Path]) -> None:
    """What the refusal prevents (in a child process): with the flag, torch.export.load runs the library."""
    path, marker = native_pt2
    code = (
        "from craft.loaders import load_pt2\n"
        f"try:\n    load_pt2({str(path)!r}, allow_native=True)\nexcept Exception:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, timeout=120)
    if not marker.exists():
        pytest.skip("this torch build did not load the AOTInductor library (nothing to prove here)")
    marker.unlink()


def test_model_toml_labels_stay_in_the_model_folder(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("a\nb\n")
    m = tmp_path / "m"
    m.mkdir()
    (m / "model.toml").write_text('labels = "../secret.txt"\n')
    with pytest.raises(UserError, match="leaves the model's folder"):
        read_sidecar(m / "model.toml")
    (m / "link.txt").symlink_to(outside)
    (m / "model.toml").write_text('labels = "link.txt"\n')
    with pytest.raises(UserError, match="leaves the model's folder"):
        read_sidecar(m / "model.toml")
    (m / "ok.txt").write_text("a\nb\n")
    (m / "model.toml").write_text('labels = "ok.txt"\n')
    assert read_sidecar(m / "model.toml").labels == (m / "ok.txt").resolve()


finite_or_not = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite_or_not, min_size=3, max_size=3), st.lists(finite_or_not, min_size=3, max_size=3))
def test_mean_and_std_are_finite_and_std_positive_or_refused(mean: list[float], std: list[float]) -> None:
    ok = all(math.isfinite(v) for v in mean + std) and all(v > 0 for v in std)
    try:
        out = spec_overrides(mean=mean, std=std)
    except UserError as e:
        assert not ok and "\n" not in str(e) and ("--mean" in str(e) or "--std" in str(e))
        return
    assert ok and all(v > 0 for v in out["std"])


def test_nan_in_mean_is_a_one_line_error_from_the_cli(tmp_path: Path) -> None:
    model = tiny_classifier(tmp_path / "tiny.onnx", size=32)
    r = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "models", "export", str(model), "--mean", "nan,0,0", "--std", "1,1,1"]
        + ["--out", str(tmp_path / "x.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().startswith("error: --mean: expected finite numbers"), r.stderr


@pytest.mark.parametrize(
    "body, needle",
    [
        ("import sys\n\ndef f():\n    sys.exit(0)\n", r"calling f\(\) called sys.exit\(0\)"),
        ("import sys\nsys.exit(3)\n\ndef f():\n    pass\n", r"importing 'fac_\w+' called sys.exit\(3\)"),
        ("def f():\n    breakpoint()\n", r"calling f\(\) called breakpoint\(\)"),
        ("breakpoint()\n\ndef f():\n    pass\n", r"importing 'fac_\w+' called breakpoint\(\)"),
    ],
    ids=["exit-in-call", "exit-on-import", "breakpoint-in-call", "breakpoint-on-import"],
)
def test_factories_that_exit_or_break_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, needle: str
) -> None:
    name = f"fac_{abs(hash(body)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONBREAKPOINT", raising=False)
    with pytest.raises(UserError, match=needle) as e:
        load_factory(f"{name}:f")
    assert "\n" not in str(e.value) and sys.breakpointhook is sys.__breakpointhook__


def _fixed(src: Path, dst: Path, batch: int) -> Path:
    m = onnx.load(str(src))
    dim = m.graph.input[0].type.tensor_type.shape.dim[0]
    dim.ClearField("dim_param")
    dim.dim_value = batch
    onnx.save(m, str(dst))
    return dst


@pytest.mark.parametrize("batch", [2, MAX_FIXED_BATCH + 1, 2_000_000])
def test_fixed_batch_models_run_padded_or_are_refused(tmp_path: Path, batch: int) -> None:
    model = _fixed(tiny_classifier(tmp_path / "tiny.onnx", size=32), tmp_path / f"fixed{batch}.onnx", batch)
    if batch > MAX_FIXED_BATCH:
        for load in (lambda: load_source(str(model)), lambda: OnnxClassifier(model)):
            with pytest.raises(UserError, match=f"batch dimension is fixed to {batch}"):
                load()
        return
    sm = load_source(str(model))
    x = torch.rand(3, 3, 32, 32) * 255
    assert sm.module(x).shape == (3, 1000)  # three images through a batch of two: padded, then split
    clf = OnnxClassifier(model)
    ids, _ = clf.classify(np.zeros((3, 32, 32, 3), np.uint8))
    assert len(ids) == 3


def test_eot_memory_is_estimated_and_refused() -> None:
    with pytest.raises(
        UserError, match=r"--eot-samples 100000: EOT would hold about .* use --eot-samples \d+ or fewer"
    ):
        check_eot_memory(100_000, 1, 224, torch.device("cpu"), _Net())
    check_eot_memory(8, 4, 64, torch.device("cpu"), _Net())  # a small run passes


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-12, 0.5), st.sampled_from([32, 224, 600]), st.sampled_from(["square", "circle"]))
def test_a_patch_covers_the_area_it_records_or_is_refused(area: float, size: int, shape: str) -> None:
    try:
        side = patch_side(area, size, shape)
    except UserError as e:
        assert "--patch-area" in str(e) and "\n" not in str(e)
        return
    covered = side**2 * (1.0 if shape == "square" else math.pi / 4) / size**2
    assert side >= MIN_PATCH_PX and abs(covered / area - 1) <= 0.3


def test_labels_csv_naming_a_file_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "sub/b.jpg"):
        Image.new("RGB", (40, 40)).save(tmp_path / name)
    (tmp_path / "labels.csv").write_text("file,label\na.jpg,1\na.jpg,2\n")
    with pytest.raises(UserError, match=r"labels.csv:3: 'a.jpg' is listed again \(first on line 2\)"):
        user_photos(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\nsub/b.jpg,1\nb.jpg,2\na.jpg,3\n")
    with pytest.raises(UserError, match="sub/b.jpg is labelled twice"):
        user_photos(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\nsub/b.jpg,1\na.jpg,3\n")
    assert sorted(p.label for p in user_photos(tmp_path)) == [1, 3]

"""macOS and Windows users (issue 28, point 7): the wheel check serves macOS 13+, an old python3 is refused in
one line that says what to do, CoreML is offered on a Mac, and each printed sha256 says what it hashes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from capture.classify import COREML, CPU, default_providers
from tools.check_wheels import PLATFORMS, best_wheel, lock_requirements

ROOT = Path(__file__).resolve().parents[1]


def test_macs_are_checked_from_macos_13() -> None:
    files: list[dict[str, object]] = [
        {"filename": f"pkg-2.0-cp311-cp311-macosx_14_0_{arch}.whl", "requires_python": None, "yanked": False}
        for arch in ("arm64", "x86_64")
    ] + [
        {"filename": f"pkg-1.0-cp311-cp311-macosx_13_0_{arch}.whl", "requires_python": None, "yanked": False}
        for arch in ("arm64", "x86_64")
    ]
    macs = [p for p in PLATFORMS if p.sys_platform == "darwin"]
    assert {p.platform_machine for p in macs} == {"arm64", "x86_64"}
    for p in macs:
        # a macOS 14 wheel does not serve a macOS 13 laptop: the newest one that does is chosen
        assert best_wheel(Requirement("pkg"), files, p) == f"pkg-1.0-cp311-cp311-macosx_13_0_{p.platform_machine}.whl"
        assert best_wheel(Requirement("pkg>=2"), files, p) is None


def test_the_lock_is_read_pin_by_pin_with_its_markers() -> None:
    pins = [r for _, r in lock_requirements(ROOT / "requirements.lock")]
    assert len(pins) > 50 and all(str(r.specifier).startswith("==") for r in pins)
    for p in PLATFORMS:
        env = p.marker_env()
        here = [r.name for r in pins if r.marker is None or r.marker.evaluate(env)]
        assert len(here) == len(set(here)), f"{p.name}: a package pinned twice"  # the lock forks by platform
        # exactly one onnxruntime and one OpenCV on every platform, never both builds
        assert sum(n in ("onnxruntime", "onnxruntime-gpu") for n in here) == 1, p.name
        assert "opencv-python-headless" not in here and "opencv-python" in here, p.name
        if p.sys_platform == "darwin":
            assert "onnxruntime" in here


def _python39() -> str:
    """A real Python 3.9 (pyenv's build before PATH, whose shim may only point at it)."""
    for cand in [*sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python3.9")), shutil.which("python3.9")]:
        if cand is None:
            continue
        r = subprocess.run([str(cand), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip() == "(3, 9)" and shutil.which("make"):
            return str(cand)
    pytest.skip("no working python3.9 or no make here")


def test_make_demo_refuses_an_old_python3_in_one_line_that_says_what_to_do(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "requirements.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    r = subprocess.run(
        ["make", "demo", f"PYTHON={_python39()}"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0
    said = [ln for ln in r.stderr.splitlines() if "photoproof" in ln]
    assert len(said) == 1 and "needs Python 3.11 or newer" in said[0] and "is 3.9" in said[0], r.stderr
    assert "make demo PYTHON=" in said[0] and "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / ".venv").exists()  # refused before anything was made


def test_coreml_is_offered_on_a_mac_that_has_it() -> None:
    assert default_providers([COREML, CPU], platform="darwin") == [COREML, CPU]
    assert default_providers([CPU], platform="darwin") == [CPU]
    assert default_providers([COREML, CPU], platform="linux") == [CPU]  # only Apple's builds carry it
    assert default_providers()[-1] == CPU


def test_export_prints_hashes_that_sha256sum_confirms(tmp_path: Path) -> None:
    from craft.cli import hash_lines
    from craft.zoo import get_entry, weights_path, weights_sha256

    out = tmp_path / "model.onnx"
    out.write_bytes(b"an onnx file's bytes")
    file_line, weights_line = hash_lines("zoo", "lite0", weights_sha256("lite0"), out)
    assert f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()} of {out}" in file_line
    pth = weights_path(get_entry("lite0"))
    assert f"sha256 {hashlib.sha256(pth.read_bytes()).hexdigest()} of the weights file {pth}" in weights_line
    (_, module_line) = hash_lines("module", "net", "ab" * 32, out)
    assert "state dict" in module_line and "not a file's hash" in module_line

"""Every laptop: onnxruntime-gpu where it has wheels, plain onnxruntime elsewhere, never both; every direct
dependency has a wheel for Linux x86_64, Windows amd64, macOS arm64 and macOS x86_64 (tools/check_wheels.py)."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tools.check_wheels import PLATFORMS, Platform, best_wheel, check, requirements

ROOT = Path(__file__).resolve().parents[1]


def test_exactly_one_onnxruntime_on_every_platform() -> None:
    ort = [r for g, r in requirements(ROOT / "pyproject.toml") if r.name in ("onnxruntime", "onnxruntime-gpu")]
    assert sorted(r.name for r in ort) == ["onnxruntime", "onnxruntime-gpu"]
    others = (
        Platform("linux-aarch64", "linux", "aarch64", "Linux", "posix", ()),
        Platform("windows-arm64", "win32", "ARM64", "Windows", "nt", ()),
        Platform("freebsd", "freebsd14", "amd64", "FreeBSD", "posix", ()),
    )
    gpu_where = {}
    for p in PLATFORMS + others:
        chosen = [r.name for r in ort if r.marker is None or r.marker.evaluate(p.marker_env())]
        assert len(chosen) == 1, (p.name, chosen)
        gpu_where[p.name] = chosen[0] == "onnxruntime-gpu"
    assert gpu_where == {
        "linux-x86_64": True,
        "windows-amd64": True,
        "macos-arm64": False,
        "macos-x86_64": False,
        "linux-aarch64": False,
        "windows-arm64": False,
        "freebsd": False,
    }


def test_wheel_matching_follows_tags_versions_and_requires_python() -> None:
    files: list[dict[str, object]] = [
        {"filename": "pkg-2.0-cp311-cp311-manylinux_2_28_x86_64.whl", "requires_python": ">=3.11", "yanked": False},
        {"filename": "pkg-3.0-cp311-cp311-macosx_14_0_arm64.whl", "requires_python": ">=3.12", "yanked": False},
        {"filename": "pkg-2.5-cp311-cp311-macosx_11_0_arm64.whl", "requires_python": None, "yanked": True},
        {"filename": "pkg-2.1-cp311-cp311-macosx_15_0_arm64.whl", "requires_python": None, "yanked": False},
        {"filename": "pkg-1.0-py3-none-any.whl", "requires_python": None, "yanked": False},
    ]
    p = {pl.name: pl for pl in PLATFORMS}
    assert best_wheel(Requirement("pkg"), files, p["linux-x86_64"]) == files[0]["filename"]
    assert (
        best_wheel(Requirement("pkg"), files, p["macos-arm64"]) == files[4]["filename"]
    )  # 3.0 wants 3.12, 2.5 yanked, 2.1 macOS 15
    assert best_wheel(Requirement("pkg>=1.5"), files, p["macos-arm64"]) is None
    assert best_wheel(Requirement("pkg"), files, p["windows-amd64"]) == files[4]["filename"]


@pytest.mark.network
def test_every_direct_dependency_has_a_wheel_on_every_laptop() -> None:
    try:
        rows = check(ROOT / "pyproject.toml")
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        pytest.skip(f"the package index cannot be reached ({e})")
    missing = [(r["platform"], r["requirement"]) for r in rows if r["status"] == "NO WHEEL"]
    assert missing == []
    core = [r for r in rows if r["group"] == "core" and r["status"] != "not needed here"]
    assert {r["platform"] for r in core} == {p.name for p in PLATFORMS} and all(r["status"] == "ok" for r in core)

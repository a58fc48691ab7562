"""Check that every direct dependency in pyproject.toml has a binary wheel on every laptop platform.

    python tools/check_wheels.py                 # the core and every extra, on the four platforms
    python tools/check_wheels.py --core          # the core only (what a capture station installs)
    python tools/check_wheels.py --json out.json
    python tools/check_wheels.py --lock          # the exact pins of requirements.lock (what 'make demo' installs)

For each requirement and platform (Linux x86_64, Windows amd64, macOS 13+ on arm64
and x86_64; CPython 3.11: macOS 13 is the oldest a wheel must serve, so a wheel
tagged ``macosx_14_0`` does not count), the requirement's environment marker decides whether it
applies there (``onnxruntime-gpu`` on Linux x86_64 and Windows, plain
``onnxruntime`` elsewhere); then the index's file list (PEP 691 JSON, one request
per package, no download) must hold a wheel whose version meets the specifier,
whose ``Requires-Python`` admits 3.11, that is not yanked, and whose tags the
platform accepts (``packaging.tags``, as pip decides). An sdist does not count:
a laptop without a compiler must install from wheels.

Exit status 0 when every core requirement has a wheel everywhere and every gap in
the extras is a known one (``KNOWN_GAPS``, printed with its reason); 1 otherwise;
2 when the index cannot be reached. The index is ``$PIP_INDEX_URL`` or PyPI.
Answers are cached for a day in ``~/.cache/photoproof/wheels.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
PYTHON = (3, 11)
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "photoproof" / "wheels.json"
CACHE_S = 24 * 3600


@dataclass(frozen=True)
class Platform:
    name: str
    sys_platform: str
    platform_machine: str
    platform_system: str
    os_name: str
    tags: tuple[str, ...]  # platform tags the platform accepts, most specific first

    def marker_env(self, extra: str = "") -> dict[str, str]:
        return {
            "sys_platform": self.sys_platform,
            "platform_machine": self.platform_machine,
            "platform_system": self.platform_system,
            "os_name": self.os_name,
            "python_version": "{}.{}".format(*PYTHON),
            "python_full_version": "{}.{}.9".format(*PYTHON),
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_version": "",
            "implementation_version": "{}.{}.9".format(*PYTHON),
            "extra": extra,
        }

    def supported(self) -> set[Tag]:
        return set(cpython_tags(PYTHON, platforms=self.tags)) | set(
            compatible_tags(PYTHON, "cp{}{}".format(*PYTHON), platforms=self.tags)
        )


def _manylinux(arch: str) -> tuple[str, ...]:
    return tuple(f"manylinux_2_{m}_{arch}" for m in range(28, 16, -1)) + (
        f"manylinux2014_{arch}",
        f"manylinux2010_{arch}",
        f"manylinux1_{arch}",
    )


PLATFORMS = (
    Platform("linux-x86_64", "linux", "x86_64", "Linux", "posix", _manylinux("x86_64")),
    Platform("windows-amd64", "win32", "AMD64", "Windows", "nt", ("win_amd64",)),
    Platform("macos-arm64", "darwin", "arm64", "Darwin", "posix", tuple(mac_platforms((13, 0), "arm64"))),
    Platform("macos-x86_64", "darwin", "x86_64", "Darwin", "posix", tuple(mac_platforms((13, 0), "x86_64"))),
)

# Gaps in the extras that are known and documented in the README.
KNOWN_GAPS = {
    (
        "torch",
        "macos-x86_64",
    ): "PyTorch publishes no Intel-Mac wheels after 2.2: craft on another machine (an Intel Mac captures, prints and "
    "reports)",
    (
        "torch",
        "macos-arm64",
    ): "torch 2.13.0's Apple-silicon wheel needs macOS 14: craft on macOS 14+ (macOS 13 captures, prints and reports)",
}


def requirements(pyproject: Path, core_only: bool = False) -> list[tuple[str, Requirement]]:
    """(group, requirement) for every direct dependency: ``core`` and each extra; the project itself is skipped."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    me = canonicalize_name(project["name"])
    out = [("core", Requirement(r)) for r in project.get("dependencies", [])]
    if not core_only:
        for extra, reqs in project.get("optional-dependencies", {}).items():
            out += [(extra, Requirement(r)) for r in reqs]
    return [(g, r) for g, r in out if canonicalize_name(r.name) != me]


def lock_requirements(lock: Path = ROOT / "requirements.lock") -> list[tuple[str, Requirement]]:
    """("lock", ``name==version ; marker``) for every pin of the lock file (hash lines and comments skipped)."""
    out = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line:
            out.append(("lock", Requirement(line.rstrip(" \\"))))
    return out


def _index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple").rstrip("/")


def fetch_files(name: str, cache: dict[str, dict[str, object]], timeout: float = 30.0) -> list[dict[str, object]]:
    """The index's file records for ``name`` (PEP 691 JSON), from the cache when younger than a day."""
    key = canonicalize_name(name)
    hit = cache.get(key)
    if hit and time.time() - float(hit["at"]) < CACHE_S:  # type: ignore[arg-type]
        return hit["files"]  # type: ignore[return-value]
    req = urllib.request.Request(f"{_index_url()}/{key}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        data = json.load(r)
    files = [
        {"filename": f["filename"], "requires_python": f.get("requires-python"), "yanked": bool(f.get("yanked"))}
        for f in data.get("files", [])
        if f["filename"].endswith(".whl")
    ]
    cache[key] = {"at": time.time(), "files": files}
    return files


def best_wheel(req: Requirement, files: list[dict[str, object]], platform: Platform) -> str | None:
    """The newest wheel file that ``platform`` would install for ``req``, or None."""
    tags, py = platform.supported(), Version("{}.{}.9".format(*PYTHON))
    best: tuple[Version, str] | None = None
    for f in files:
        if f["yanked"]:
            continue
        try:
            _, version, _, wheel_tags = parse_wheel_filename(str(f["filename"]))
        except (ValueError, InvalidVersion):
            continue
        if version.is_prerelease and not req.specifier.prereleases:
            continue
        if not req.specifier.contains(version, prereleases=True):
            continue
        rp = f["requires_python"]
        if rp and not SpecifierSet(str(rp)).contains(py, prereleases=True):
            continue
        if tags.isdisjoint(wheel_tags):
            continue
        if best is None or version > best[0]:
            best = (version, str(f["filename"]))
    return best[1] if best else None


def check(
    pyproject: Path = ROOT / "pyproject.toml",
    core_only: bool = False,
    use_cache: bool = True,
    reqs: list[tuple[str, Requirement]] | None = None,
) -> list[dict[str, object]]:
    """One row per (requirement, platform): the wheel found, ``not needed`` (marker), or a gap."""
    reqs = reqs if reqs is not None else requirements(pyproject, core_only)
    cache: dict[str, dict[str, object]] = {}
    if use_cache and CACHE.is_file():
        try:
            cache = json.loads(CACHE.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cache = {}
    names = sorted({r.name for _, r in reqs})
    with ThreadPoolExecutor(max_workers=8) as pool:
        files = dict(zip(names, pool.map(lambda n: fetch_files(n, cache), names), strict=True))
    if use_cache:
        try:
            CACHE.parent.mkdir(parents=True, exist_ok=True)
            tmp = CACHE.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache), encoding="utf-8")
            os.replace(tmp, CACHE)
        except OSError:
            pass
    rows: list[dict[str, object]] = []
    for group, req in reqs:
        for p in PLATFORMS:
            env = p.marker_env("" if group in ("core", "lock") else group)
            if req.marker is not None and not req.marker.evaluate(env):
                rows.append(
                    {
                        "group": group,
                        "requirement": str(req),
                        "platform": p.name,
                        "wheel": None,
                        "status": "not needed here",
                    }
                )
                continue
            wheel = best_wheel(req, files[req.name], p)
            gap = KNOWN_GAPS.get((canonicalize_name(req.name), p.name))
            status = "ok" if wheel else ("known gap: " + gap if gap and group != "core" else "NO WHEEL")
            rows.append({"group": group, "requirement": str(req), "platform": p.name, "wheel": wheel, "status": status})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", action="store_true", help="the core dependencies only")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    ap.add_argument("--no-cache", action="store_true", help="ask the index again")
    ap.add_argument("--lock", action="store_true", help="the exact pins of requirements.lock, not pyproject's ranges")
    a = ap.parse_args(argv)
    try:
        rows = check(core_only=a.core, use_cache=not a.no_cache, reqs=lock_requirements() if a.lock else None)
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        print(
            f"check_wheels: cannot reach the package index {_index_url()} ({e}); set PIP_INDEX_URL or retry online",
            file=sys.stderr,
        )
        return 2
    short = {str(r["requirement"]): str(r["requirement"]).split(";")[0] for r in rows}
    width = max(len(v) for v in short.values())
    for r in rows:
        print(f"{r['platform']:14s} {short[str(r['requirement'])]:{width}s}  {r['status']:<8s} {r['wheel'] or ''}")
    bad = [r for r in rows if r["status"] == "NO WHEEL"]
    n_ok = sum(r["status"] == "ok" for r in rows)
    print(
        f"\n{n_ok} ok, {len(bad)} missing, {sum(str(r['status']).startswith('known') for r in rows)} known gaps "
        f"over {len({r['requirement'] for r in rows})} requirements x {len(PLATFORMS)} platforms"
    )
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""The fixed photo split (craft/photosplit.toml): two disjoint halves, read from the installed packages."""

from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from contracts.errors import UserError
from craft import images
from craft.images import SPLIT_FILE, find_photos, split_photos

ROOT = Path(__file__).resolve().parents[1]


def test_halves_are_disjoint_and_cover_the_split() -> None:
    entries = tomllib.loads(SPLIT_FILE.read_text(encoding="utf-8"))["photo"]
    tuning, validation = find_photos("tuning"), find_photos("validation")
    keys_t, keys_v = {p.key for p in tuning}, {p.key for p in validation}
    assert not keys_t & keys_v
    assert len(keys_t) + len(keys_v) == len(entries) >= 39
    assert abs(len(keys_t) - len(keys_v)) <= 1
    shas = {p.sha256() for p in tuning + validation}
    assert shas == {e["sha256"] for e in entries}  # every file read is the one the split fixed
    for half in (tuning, validation):  # both halves have ImageNet-labelled photos
        assert sum(p.label is not None for p in half) >= 10
    # the photos that the stereo pair and the sample set share keep their keys
    assert "skimage-motorcycle-left" in keys_t | keys_v and "foolbox-00" in keys_t | keys_v


def test_split_file_is_what_the_generator_writes() -> None:
    r = subprocess.run(
        [sys.executable, "tools/make_photosplit.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_changed_file_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    text = SPLIT_FILE.read_text(encoding="utf-8")
    first = tomllib.loads(text)["photo"][0]
    altered = tmp_path / "photosplit.toml"
    altered.write_text(text.replace(first["sha256"], "0" * 64, 1), encoding="utf-8")
    monkeypatch.setattr(images, "SPLIT_FILE", altered)
    with caplog.at_level(logging.WARNING):
        got = split_photos(first["half"])
    assert Path(first["path"]).name not in {p.path.name for p in got}
    assert "differs from the split's photo" in caplog.text
    empty = tmp_path / "none.toml"
    empty.write_text('[[photo]]\npackage = "no_such_pkg"\npath = "x.png"\nsha256 = "0"\nhalf = "tuning"\n')
    monkeypatch.setattr(images, "SPLIT_FILE", empty)
    with pytest.raises(UserError, match="--images tuning"):
        split_photos("tuning")

"""The fixed photo split (craft/photosplit.toml): two disjoint halves, read from the installed packages."""

from __future__ import annotations

import logging
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from contracts.errors import UserError
from craft import images
from craft.images import SPLIT_FILE, find_photos, load_rgb, split_photos

ROOT = Path(__file__).resolve().parents[1]

# The validation half as it was fixed before any tuning (39 photos, commit 8c1f59b); never to move.
FIRST_VALIDATION = {
    *(f"foolbox:data/imagenet_{n}.jpg" for n in ("01_559", "02_438", "04_949", "05_853", "06_609", "08_915")),
    *(f"foolbox:data/imagenet_{n}.jpg" for n in ("09_455", "13_471", "15_99", "18_317")),
    "matplotlib:mpl-data/sample_data/grace_hopper.jpg",
    *(f"skimage:data/{n}.png" for n in ("astronaut", "cell", "chelsea", "coffee", "gravel", "moon", "text")),
    "skimage:data/motorcycle_left.png",
}


def test_halves_are_disjoint_and_cover_the_split() -> None:
    entries = tomllib.loads(SPLIT_FILE.read_text(encoding="utf-8"))["photo"]
    tuning, validation = find_photos("tuning"), find_photos("validation")
    keys_t, keys_v = {p.key for p in tuning}, {p.key for p in validation}
    assert not keys_t & keys_v
    assert len(keys_t) + len(keys_v) == len(entries) >= 50
    assert abs(len(keys_t) - len(keys_v)) <= 1
    shas = {p.sha256() for p in tuning + validation}
    assert shas == {e["sha256"] for e in entries}  # every file read is the one the split fixed
    for half in (tuning, validation):  # both halves have ImageNet-labelled photos
        assert sum(p.label is not None for p in half) >= 10
    # the photos that the stereo pair and the sample set share keep their keys
    assert "skimage-motorcycle-left" in keys_t | keys_v and "foolbox-00" in keys_t | keys_v


def test_first_halves_never_move_and_no_photo_twice() -> None:
    entries = tomllib.loads(SPLIT_FILE.read_text(encoding="utf-8"))["photo"]
    first = {f"{e['package']}:{e['path']}": e["half"] for e in entries if "key" not in e}
    assert len(first) == 39  # the photos split before tuning; the added ones carry a key
    assert {k for k, h in first.items() if h == "validation"} == FIRST_VALIDATION
    for field in ("sha256", "path"):  # one file once; a key once
        assert len({(e["package"], e[field]) for e in entries}) == len(entries)
    assert len({e["sha256"] for e in entries}) == len({e["key"] for e in entries if "key" in e}) + 39
    added = [e for e in entries if "key" in e]
    assert sum(e["half"] == "tuning" for e in added) == len(added) // 2


def test_every_photo_reads_and_none_is_another_s_copy() -> None:
    """Each split photo decodes (the .npz ones too) to RGB of at least 128 px a side, and no two are the same
    picture re-encoded: their 32 x 32 grey thumbnails differ by more than 3 levels on average."""
    photos = find_photos("tuning") + find_photos("validation")
    thumbs = []
    for p in photos:
        im = load_rgb(p)
        assert im.mode == "RGB" and min(im.size) >= 128, p.key
        thumbs.append(np.asarray(im.convert("L").resize((32, 32)), dtype=np.float32))
    t = np.stack(thumbs)
    mad = np.abs(t[:, None] - t[None]).mean(axis=(2, 3)) + np.eye(len(t)) * 255
    i, j = np.unravel_index(mad.argmin(), mad.shape)
    assert mad[i, j] > 3, (photos[i].key, photos[j].key)


def test_npz_photo_unpickles_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    np.savez(bad, data=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        images._npz_photo(bad)
    two = tmp_path / "two.npz"
    np.savez(two, a=np.zeros((4, 4), np.uint8), b=np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="one array"):
        images._npz_photo(two)


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

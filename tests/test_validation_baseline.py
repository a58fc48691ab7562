"""bench/validation_baseline.py splits the clean drop into the model's fragility and the channel, on a known input."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

from contracts.intervals import wilson

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def vb() -> ModuleType:
    """bench/validation_baseline.py, imported as the script imports bench/validation.py."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("validation_baseline")
    finally:
        sys.path.remove(str(BENCH))


def _photos(vb: ModuleType) -> list:
    p = vb.Photo
    return [
        p("a", True, 0.9, True, 1.0),  # kept everywhere
        p("b", True, 0.9, True, 2 / 3, ("blur",)),  # fragile digitally, kept photographed
        p("c", True, 0.3, False, 1 / 3, ("blur", "jpeg")),  # lost, and mild transforms flip it: fragility
        p("d", True, 0.4, False, 1.0),  # lost although every mild transform keeps it: the channel
        p("e", False, 0.2, False, 0.0, ("blur", "jpeg", "resolution")),  # wrong digitally: not lost
        p("f", True, 0.5, None, 1.0),  # no good clean tile: left out
        p("g", True, 0.5, True, None),  # no baseline: left out
    ]


def test_split_counts_one_unit_per_photo_against_digital_and_baseline(vb: ModuleType) -> None:
    s = vb.split(_photos(vb))
    assert (s.n, s.digital, s.photo, s.all_kept) == (5, 4, 2, 2)
    assert s.stable == pytest.approx((1 + 2 / 3 + 1 / 3 + 1 + 0) / 5)  # B: share of (photo, transform) pairs
    assert (s.fragile, s.channel) == (1, 1)
    lo, hi = wilson(2, 5) or (0.0, 1.0)
    assert (s.photo_lo, s.photo_hi) == (lo, hi)  # Wilson over 5 photos, not over tiles or transforms
    point, low, high = s.drop(s.stable)
    assert point == pytest.approx(100 * (0.6 - 0.4))
    assert (low, high) == (pytest.approx(100 * (0.6 - hi)), pytest.approx(100 * (0.6 - lo)))
    assert s.drop(s.digital / s.n)[0] == pytest.approx(100 * (0.8 - 0.4))


def test_lost_photos_are_told_apart_by_their_baseline(vb: ModuleType) -> None:
    ps = {p.name: p for p in _photos(vb)}
    assert vb.cause(ps["c"]) == "resampling alone (blur, jpeg)"
    assert vb.cause(ps["d"]) == "channel only"
    assert vb.cause(ps["g"]) == "no baseline"


def test_rows_without_any_photo_say_so(vb: ModuleType) -> None:
    assert vb.split([vb.Photo("f", True, 0.5, None, 1.0)]) is None
    assert vb.row("x, all", []).startswith("| x, all | 0 |")
    full = vb.row("x, all", _photos(vb))
    assert "| 5 | 80 % | 60 % (2/5 kept by all 3) | 2/5, 40 %" in full
    assert full.endswith("| 1/5, 20 % [4-62] | 1/5, 20 % [4-62] |")

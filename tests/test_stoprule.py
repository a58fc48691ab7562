"""capture.stoprule: the one stop rule of every capture loop."""

from __future__ import annotations

from typing import Any

import pytest

from capture.stoprule import StopRule
from contracts.errors import UserError


@pytest.mark.parametrize(
    ("kwargs", "flag"),
    [({"frames": 0}, "--frames"), ({"duration": -1.0}, "--duration"), ({"per_tile": 0}, "--per-tile")],
)
def test_a_non_positive_condition_names_its_flag(kwargs: dict[str, Any], flag: str) -> None:
    with pytest.raises(UserError, match=f"^{flag}: must be > 0"):
        StopRule(**kwargs)


def test_reasons_in_order_frames_then_time_then_tiles() -> None:
    rule = StopRule(frames=10, duration=2.5, per_tile=3)
    assert rule.reason(9, 2.4) == ""
    assert rule.reason(9, 2.4, tiles_done=True) == "3 good observations per tile"
    assert rule.reason(9, 2.5, tiles_done=True) == "2.5 s"
    assert rule.reason(10, 2.5, tiles_done=True) == "10 frames"
    assert StopRule().reason(10**6, 1e6, tiles_done=True) == ""  # no condition: only the source or a request stops


def test_remaining_time_never_drops_below_a_tenth_of_a_second() -> None:
    assert StopRule().remaining(5.0) is None
    assert StopRule(duration=3.0).remaining(1.0) == pytest.approx(2.0)
    assert StopRule(duration=3.0).remaining(9.0) == pytest.approx(0.1)
    assert StopRule(duration=3.0).out_of_time(3.0) == "3 s" and StopRule(duration=3.0).out_of_time(2.9) == ""

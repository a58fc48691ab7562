"""The stages' defaults fit together (issue 28, point 1): ``print`` with no options lays out for
capture's default webcam and target, so ``craft``, ``print`` and ``capture --simulate`` give
tiles that pass the gates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from console.options import DEFAULT_CAMERA, DEFAULT_TARGET
from testkit.capture import db_rows
from testkit.cli import assert_one_line_error, run_cli


def test_print_with_no_options_lays_out_for_capture_defaults_and_says_so(
    synthetic_batch: Callable[..., Path],
) -> None:
    batch = synthetic_batch(n_items=2, size=224)
    r = run_cli("print", str(batch), "--no-cover")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())
    assert f"assumed the default webcam, {DEFAULT_CAMERA[0]}x{DEFAULT_CAMERA[1]}" in said
    assert f"the default target model, {DEFAULT_TARGET}" in said
    cam = json.loads((batch / "layout.json").read_text())["extra"]["camera"]
    assert (cam["width"], cam["height"], cam["model"]) == (*DEFAULT_CAMERA, DEFAULT_TARGET)
    assert cam["tile_px"] >= cam["min_tile_px"]


def test_print_says_only_what_it_assumed_and_a_fixed_tile_assumes_nothing(
    synthetic_batch: Callable[..., Path],
) -> None:
    batch = synthetic_batch(n_items=2, size=224)
    r = run_cli("print", str(batch), "--no-cover", "--frame-size", "1280x720")
    said = " ".join(r.stdout.split())
    assert r.returncode == 0 and "default webcam" not in said and f"default target model, {DEFAULT_TARGET}" in said
    assert json.loads((batch / "layout.json").read_text())["extra"]["camera"]["width"] == 1280
    r = run_cli("print", str(batch), "--no-cover", "--tile-mm", "60")
    assert r.returncode == 0 and "assumed" not in r.stdout
    assert "camera" not in json.loads((batch / "layout.json").read_text())["extra"]
    assert_one_line_error(
        run_cli("print", str(batch), "--tile-mm", "60", "--model", "lite0"), "--tile-mm", "--frame-size"
    )


def _good_share(batch: Path) -> tuple[int, int]:
    (db,) = (batch / "captures").glob("*.sqlite")
    ((good, n),) = db_rows(db, "SELECT SUM(good), COUNT(*) FROM observations")
    return int(good or 0), int(n)


@pytest.mark.slow
def test_craft_print_capture_with_no_options_pass_the_gates(tmp_path: Path) -> None:
    """The quick start as typed (``--limit`` and ``--frames`` only bound the test's time): before, 18 of 348
    observations passed the gates with 60 mm tiles; now most must."""
    batch = tmp_path / "b"
    for args in (
        ("craft", "--out", str(batch), "--limit", "2"),
        ("print", str(batch)),
        ("capture", str(batch), "--simulate", "--frames", "16"),
    ):
        r = run_cli(*args)
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
    # Piped, the live status prints once, whole and on lines of its own: it was cropped at 80 columns and the
    # summary ran on after it ("...tiles with a good observation 40 of 48capture 2026...").
    lines = r.stdout.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("frame 16/16"))
    assert lines[i].endswith("-- stopped: 16 frames") and "check:" in lines[i], lines[i]
    assert lines[i + 1].startswith("sheets seen ") and lines[i + 2].startswith("capture "), lines[i : i + 3]
    good, n = _good_share(batch)
    assert n >= 16 and good > 0.8 * n, (good, n)


def test_craft_eot_default_tile_range_is_the_default_layouts_tiles() -> None:
    """``craft --eot`` with no ``--eot-tile-px`` samples the tiles that ``print`` with no options lays out, at the
    profile's frame size: ``print`` then does not warn; a range for another framing still does."""
    from types import SimpleNamespace

    from contracts.framing import eot_tile_px, tile_px_range
    from contracts.profile import PRESETS, default_profile, load_profile
    from craft.attacks.eot import EOT
    from printouts.camera import eot_mismatch, plan_for_camera

    office = default_profile()
    assert (office.camera.width, office.camera.height) == DEFAULT_CAMERA
    plan = plan_for_camera(DEFAULT_CAMERA, DEFAULT_TARGET, "a4", "pairs")
    recorded = EOT(office, samples=1).params()  # what craft writes to each item's params["eot"]
    lo, hi = recorded["tile_px"]
    assert plan.framing == "block" and lo < plan.tile_px < hi and 600 < lo and hi < 800, (plan, recorded)
    assert eot_mismatch(plan, [SimpleNamespace(params={"eot": recorded})]) is None
    old = [round(v, 1) for v in tile_px_range(office)]  # the whole-sheet framing of a 60 mm tile, ~175-207 px
    warning = eot_mismatch(plan, [SimpleNamespace(params={"eot": {**recorded, "tile_px": old}})])
    assert warning is not None and f"--eot-tile-px {lo:.0f}-{hi:.0f}" in warning
    for name in PRESETS:  # every preset's camera: the layout print would choose for it (a 12 MP still: the sheet)
        prof = load_profile(name)
        cam = (prof.camera.width, prof.camera.height)
        want = eot_tile_px(plan_for_camera(cam, DEFAULT_TARGET, "a4", "pairs").tile_px)
        assert EOT(prof, samples=1).tile_px == pytest.approx(want, abs=0.1), name
    assert EOT(office, samples=1, tile_px=(100.0, 120.0)).params()["tile_px"] == [100.0, 120.0]  # the override

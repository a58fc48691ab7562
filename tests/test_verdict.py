"""Verdicts earned by evidence (issue 26): the one rule, layout identity on re-printed sheets, the side test,
old databases, and what print and capture say about a camera's resolution.

Real parts throughout: sheets printed by ``printouts`` and photographed by the simulated camera,
``SheetDetector`` and the capture loop reading them (a tiny ONNX model where attribution, not accuracy,
is under test), capture databases read by the report's own loader.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from analysis.channel import check_sessions
from analysis.load import load_input
from analysis.report import make_report
from analysis.sides import fisher_exact
from analysis.synthetic import Odds, write_capture_db
from capture.cameraloop import Progress, resolution_warning
from capture.session import run_capture
from capture.sheets.detect import SheetDetector
from capture.sources.files import PhotoSource
from channel.simulate import SimulatedCamera
from contracts.capturedb import encode_top5, open_db_readonly
from contracts.layout import load_layout, load_layouts
from contracts.manifest import load_batch
from contracts.profile import load_profile
from contracts.verdict import (
    FRAGILE,
    INCONCLUSIVE,
    LIMITED,
    NA,
    OK,
    Evidence,
    Tally,
    clustered_interval,
    judge,
    live_line,
)
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.scenes import tiny_classifier

# -- the rule ---------------------------------------------------------------------------------


def test_one_frame_is_never_ok_and_says_how_many_more_photos() -> None:
    one = judge(Evidence(((1, 1),), digital=1.0, baseline=1.0, n_obs=2, n_good=2, photos_in_batch=12))
    assert one.verdict == INCONCLUSIVE and one.more_photos is not None and one.more_photos > 10
    assert "more photos" in one.why and "1 photo of the batch's 12" in one.why
    # the same accuracy on enough photos, every frame agreeing within a photo: ok
    many = judge(Evidence(tuple([(3, 3)] * 60), digital=1.0, baseline=1.0, n_obs=360, n_good=360))
    assert many.verdict == OK and many.photo.clusters == 60


def test_frames_of_one_photo_are_not_independent_evidence() -> None:
    # 200 frames of 2 photos: the interval is that of about 2 photos, not of 200 observations
    c = clustered_interval([(100, 100), (100, 100)])
    assert c.n == 200 and c.n_eff == pytest.approx(2.0) and c.lo is not None and c.lo < 0.5
    assert judge(Evidence(((100, 100), (100, 100)), 1.0, n_obs=400, n_good=400)).verdict == INCONCLUSIVE


def test_most_observations_failing_a_gate_is_never_ok() -> None:
    counts = tuple([(4, 4)] * 80)
    assert judge(Evidence(counts, 1.0, 1.0, n_obs=400, n_good=320)).verdict == OK
    v = judge(Evidence(counts, 1.0, 1.0, n_obs=4000, n_good=320))  # 8 % through the gates
    assert v.verdict == INCONCLUSIVE and "8% of the observations passed the quality gates" in v.why


def test_a_loss_the_digital_baseline_explains_is_the_models_not_the_cameras() -> None:
    # 9 photos the model is unsure of: right digitally, a third right photographed, and mild digital changes
    # (resampling, blur, JPEG) already lose most of them
    counts = tuple([(1, 3)] * 9)
    fragile = tuple([(2.0, 3)] * 6 + [(0.0, 3)] * 3)
    v = judge(Evidence(counts, 1.0, baseline=1 / 3, n_obs=54, n_good=54, fragile=fragile))
    assert v.verdict == FRAGILE and v.fragility == pytest.approx(2 / 3) and "not the camera" in v.why
    # without the baseline the same session blames the camera, as before
    assert judge(Evidence(counts, 1.0, n_obs=54, n_good=54)).verdict == LIMITED
    # a camera that loses far more than the baseline: camera-limited
    sure = tuple([(0, 3)] * 30)
    assert judge(Evidence(sure, 1.0, 0.97, 180, 180, fragile=tuple([(0.1, 3)] * 30))).verdict == LIMITED


def test_ok_is_judged_on_the_paired_loss_not_on_two_independent_rates() -> None:
    """40 photos, 36 right digitally, each seen 3 times; the camera changes no photo's outcome.

    The loss is paired (the same photos digitally and photographed): no observation of a photo that is right
    digitally is wrong photographed, so the loss is bounded by 0 of 120 observations of 40 photos (upper
    bound 9 points): ok. Comparing the photographed rate with the digital one as two samples would bound the
    loss only at about 13 points and call it inconclusive."""
    photos = [f"p{i}" for i in range(40)]
    right = {p: i >= 4 for i, p in enumerate(photos)}
    t = Tally({p: p for p in photos}, dict.fromkeys(photos, 1), right)
    for p in photos:
        for _ in range(3):
            t.add(p, "clean", 1 if right[p] else 2, True)
    ev = t.evidence()
    assert ev.digital == pytest.approx(0.9) and sum(k for k, _ in ev.counts) == 108
    v = judge(ev)
    assert v.verdict == OK, v.why
    unpaired = judge(Evidence(ev.counts, ev.digital, n_obs=ev.n_obs, n_good=ev.n_good))
    assert unpaired.verdict == INCONCLUSIVE and unpaired.loss_bounds is not None and unpaired.loss_bounds[1] > 0.1
    # one photo in ten lost by the camera is not ok, paired or not
    t2 = Tally({p: p for p in photos}, dict.fromkeys(photos, 1), right)
    for i, p in enumerate(photos):
        for _ in range(3):
            t2.add(p, "clean", 1 if right[p] and i % 10 != 5 else 2, True)
    assert judge(t2.evidence()).verdict != OK


def test_the_tally_and_the_live_line_use_the_same_rule() -> None:
    t = Tally({"a": "p1", "b": "p1", "c": "p2"}, {"a": 1, "b": 1, "c": 2}, {"a": True, "b": True, "c": True})
    assert judge(t.evidence()).verdict == NA and live_line(judge(t.evidence())) == "check: no clean tile yet"
    t.add("a", "clean", 1, True)
    t.add("a", "adv", 7, True)
    t.add("c", "clean", 2, False)  # failed a gate: counts against the gates, not as evidence
    ev = t.evidence()
    assert ev.counts == ((1, 1),) and (ev.n_obs, ev.n_good) == (3, 2)
    line = live_line(judge(ev))
    assert line.startswith("check: not yet") and "more photos" in line
    p = Progress(1.0, 1, 1.0, 1.0, 3, 2, 0, 1, 0, None, "CPU", check=line)
    assert p.line().endswith(line)


def test_fisher_exact_matches_known_values() -> None:
    assert fisher_exact(3, 1, 1, 3) == pytest.approx(0.4857142857, rel=1e-6)  # Fisher's tea-tasting table
    assert fisher_exact(10, 0, 0, 10) == pytest.approx(2 / 184756, rel=1e-6)
    assert fisher_exact(5, 5, 5, 5) == pytest.approx(1.0)


# -- layout identity: a re-printed batch photographed from its old sheets ------------------------


@pytest.fixture(scope="module")
def reprinted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str, str, Path]:
    """A batch printed (a4, pairs), photographed, then re-printed with other options; and a tiny model."""
    root = tmp_path_factory.mktemp("reprint")
    d = root / "batch"
    write_batch(d, n_items=4, size=64, batch_id="breprint-0001")
    first = print_batch(d, paper="a4", tile_mm=60.0)
    shots = root / "photos"
    SimulatedCamera.from_batch(d, load_profile("office-laser-webcam"), seed=3, n_frames=4).write_photos(shots)
    second = print_batch(d, paper="a4", tile_mm=45.0, layout="adversarial-only")
    return d, shots, first.id, second.id, tiny_classifier(root / "tiny.onnx", size=48)


def test_photos_of_old_sheets_are_read_with_their_own_layout(
    reprinted: tuple[Path, Path, str, str, Path],
) -> None:
    d, shots, old_id, new_id, model = reprinted
    assert old_id != new_id and set(load_layouts(d)) == {old_id, new_id}
    db = run_capture(d, model, PhotoSource(shots), session_id="old-sheets", save_crops=False)
    con = open_db_readonly(db)
    try:
        rows = con.execute("SELECT sheet_id, item_id, role, layout_id FROM observations").fetchall()
        (session_layout,) = con.execute("SELECT layout_id FROM sessions").fetchone()
    finally:
        con.close()
    old = load_layouts(d)[old_id]
    where = {(s.sheet_id, t.item, t.role) for s in old.sheets for t in s.tiles}
    assert rows and session_layout == new_id
    assert {r[3] for r in rows} == {old_id}  # every tile read with the layout its sheet was printed with
    assert all((s, i, r) in where for s, i, r, _ in rows)  # ... and so named after a tile that is there
    assert {r[2] for r in rows} == {"clean", "adv"}  # the old print had pairs; the new one has no clean tile
    check = check_sessions(load_input(d))["old-sheets"]
    assert check.layouts == {old_id: len(rows)}


def test_photos_of_a_print_whose_layout_is_gone_are_refused_in_one_line(
    reprinted: tuple[Path, Path, str, str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    d, shots, old_id, _, model = reprinted
    kept = d / "layouts" / f"{old_id}.json"
    saved = kept.read_bytes()
    kept.unlink()
    try:
        with caplog.at_level(logging.WARNING, logger="capture.sheets.qr"):
            db = run_capture(d, model, PhotoSource(shots), session_id="unkept", save_crops=False)
    finally:
        kept.write_bytes(saved)
    con = open_db_readonly(db)
    try:
        assert con.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 0  # nothing misattributed
    finally:
        con.close()
    lines = [r.getMessage() for r in caplog.records if "not kept" in r.getMessage()]
    assert len(lines) == 1 and old_id in lines[0] and "\n" not in lines[0]


def test_a_sheet_whose_print_is_ambiguous_waits_for_its_qr_code(reprinted: tuple[Path, Path, str, str, Path]) -> None:
    d, shots, old_id, _, _ = reprinted
    layouts = load_layouts(d)
    photo = cv2.imread(str(sorted(shots.glob("*"))[0]))
    hits = SheetDetector(layouts[next(iter(layouts))], layouts=layouts).detect(photo)
    assert hits and hits[0].layout_id == old_id and hits[0].qr_verified
    qx, qy, qs, _ = (hits[0].sheet.qr or {})["box_mm"]
    quad = cv2.perspectiveTransform(np.array([[[qx, qy], [qx + qs, qy], [qx + qs, qy + qs], [qx, qy + qs]]]), hits[0].H)
    covered = photo.copy()
    cv2.fillConvexPoly(covered, quad.reshape(4, 2).astype(np.int32), (255, 255, 255))  # a thumb over the code
    det = SheetDetector(layouts[next(iter(layouts))], layouts=layouts)
    assert det.detect(covered) == [] and det.unresolved == 1  # never cut with a guessed layout


# -- the side test, and databases written before this version --------------------------------------


def _session_on_layout(d: Path, lose_right: bool) -> str:
    """A synthetic session whose observations name the printed layout; clean tiles on the right lost if asked."""
    lay = load_layout(d)
    right = {
        t.item
        for s in lay.sheets
        for t in s.tiles
        if t.role == "clean" and t.box_mm[0] + t.box_mm[2] / 2 > s.size_mm[0] / 2
    }
    db = d / "captures" / "lamp.sqlite"
    write_capture_db(
        db,
        load_batch(d),
        "lamp",
        odds=Odds(clean_photo=1.0, good=1.0),
        tile_px=(300, 400),
        angle_deg=(0, 10),
        input_size=224,
        n_frames=30,
    )
    con = sqlite3.connect(db)
    con.execute("UPDATE observations SET layout_id = ?", (lay.id,))
    con.execute("UPDATE sessions SET layout_id = ?", (lay.id,))
    if lose_right:  # a lamp on the left: the right half of the sheet is lost
        ids, probs = encode_top5([999, 998, 997, 996, 995], [0.5, 0.2, 0.1, 0.1, 0.1])
        con.executemany(
            "UPDATE observations SET top1 = 999, top1_prob = 0.5, top5_ids = ?, top5_probs = ? WHERE item_id = ? "
            "AND role = 'clean'",
            [(ids, probs, i) for i in right],
        )
    con.commit()
    con.close()
    return lay.id


def test_a_lamp_from_one_side_is_reported_as_a_side_effect(tmp_path: Path) -> None:
    d = tmp_path / "batch"
    write_batch(d, n_items=24, size=64, batch_id="blamp-0001")
    print_batch(d, paper="a4", tile_mm=40.0)
    _session_on_layout(d, lose_right=True)
    res = make_report(d, formats=("json",))
    c = res.checks["lamp"]
    assert c.sides is not None and c.sides.left_n >= 6 and c.sides.right_n >= 6 and c.sides.effect
    assert c.sides.right_kept == 0 and c.sides.left_kept == c.sides.left_n
    note = json.loads((d / "report" / "report.json").read_text())["channel_check"]["sessions"]["lamp"]
    assert note["side_test"]["p"] < 0.05 and any("Side effect" in w for w in res.warnings + res.notes)


def test_no_side_effect_when_both_sides_keep_their_tiles(tmp_path: Path) -> None:
    d = tmp_path / "batch"
    write_batch(d, n_items=24, size=64, batch_id="bnolamp-0001")
    print_batch(d, paper="a4", tile_mm=40.0)
    _session_on_layout(d, lose_right=False)
    c = check_sessions(load_input(d))["lamp"]
    assert c.sides is not None and not c.sides.effect and "Side effect" not in c.note()


def test_a_database_from_before_layout_ids_is_still_read(tmp_path: Path) -> None:
    d = tmp_path / "batch"
    b = write_batch(d, n_items=12, size=64, batch_id="bold-0001")
    db = write_capture_db(d / "captures" / "old.sqlite", b, "old", odds=Odds(clean_photo=0.95), input_size=224)
    con = sqlite3.connect(db)  # as schema 1 wrote it: no layout ids, no stability baseline
    con.execute("ALTER TABLE observations DROP COLUMN layout_id")
    con.execute("ALTER TABLE sessions DROP COLUMN layout_id")
    con.execute("DROP TABLE stability")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    inp = load_input(d)
    c = check_sessions(inp)["old"]
    assert inp.sessions[0].layout_id is None and c.frame.baseline is None and c.verdict != NA
    assert c.layouts == {"unknown": inp.sessions[0].n_obs}
    assert any("stability not measured" in r for r in c.reasons)


# -- resolution: what print and capture say about the camera ---------------------------------------


def test_print_for_a_12_mp_camera_does_not_warn_about_a_720p_one(
    synthetic_batch: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    d = synthetic_batch(n_items=4, size=64)
    with caplog.at_level(logging.WARNING, logger="printouts"):
        print_batch(d, camera=(4032, 3024), model="lite0")
    assert not [r for r in caplog.records if "720" in r.getMessage()]


def test_capture_warns_at_720p_like_print_does(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=4, size=64)
    lay = print_batch(d)
    warn = resolution_warning((1280, 720), lay, 260, "lite2")
    assert warn is not None and "1280x720" in warn and "--frame-size 1280x720 --model lite2" in warn
    assert resolution_warning((4032, 3024), lay, 260, "lite2") is None

"""A face batch end to end with the real commands: print, capture --simulate with CenterFace, report (issue #25).

The batch (``face_batch``, tests/conftest.py) is crafted once per test session on the real MTCNN; capture runs
the real CenterFace in onnxruntime on the simulated camera's frames; the report's figures are checked against
the capture database they come from.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from analysis.faces import FaceObs, FaceSession, channel_verdict, limited, paired_hiding, recall
from analysis.faces_report import CHANNEL_NOTE
from analysis.report import make_report
from contracts.capturedb import SCHEMA_VERSION, decode_top5, open_db_readonly
from contracts.detection import Detections
from contracts.errors import UserError
from contracts.manifest import ROLES, load_batch
from testkit.chromium import Chromium, chromium_exe, write_y4m
from testkit.cli import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def captured(
    face_batch: Path, tmp_path_factory: pytest.TempPathFactory, capture_and_report_faces: Callable[[Path, str], str]
) -> Path:
    """A copy of the face batch with one simulated CenterFace session (``sim``) and its report."""
    out = tmp_path_factory.mktemp("facecap") / "batch"
    shutil.copytree(face_batch, out)
    assert "transfer to centerface [sim]" in capture_and_report_faces(out, "html,csv")
    return out


def _table(batch: Path, name: str) -> list[dict]:
    return json.loads((batch / "report" / f"{name}.json").read_text())["rows"]


def test_capture_records_the_detector_boxes_per_observation(captured: Path) -> None:
    con = open_db_readonly(captured / "captures" / "sim.sqlite")
    try:
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        rows = con.execute("SELECT item_id, role, top1, boxes FROM observations").fetchall()
        digital = [
            (i, r, json.loads(ids)[0], b)
            for i, r, ids, b in con.execute(
                "SELECT d.item_id, d.role, d.top5_ids, b.boxes FROM digital d JOIN digital_boxes b "
                "USING (item_id, role)"
            )
        ]
        (model,) = con.execute("SELECT model FROM sessions").fetchone()
    finally:
        con.close()
    assert model == "centerface" and rows and len(digital) == 4  # two items, clean and adversarial
    for _, _, top1, boxes in rows + digital:
        dets = Detections.from_json(json.loads(boxes))
        assert top1 in (0, 1) and (top1 == 0 or len(dets) > 0)  # "every truth face found" needs a box
        assert (dets.boxes[:, 2:] > dets.boxes[:, :2]).all()


def test_report_figures_are_consistent_with_each_other(captured: Path) -> None:
    rec = {(r["image"], r["seen"]): r for r in _table(captured, "faces_recall")}
    hide = {r["seen"]: r for r in _table(captured, "faces_hiding")}
    (chan,) = _table(captured, "faces_channel")
    transfer = {(r["detector"], r["seen"]): r["hiding"] for r in _table(captured, "faces_transfer")}
    assert len(rec) == 4 and {r["session"] for r in rec.values()} == {chan["session"]} == {"sim"}
    assert rec[("clean", "digital")]["n"] == rec[("adv", "digital")]["n"] == 2  # one truth face per LFW crop
    photo_n = rec[("clean", "photographed")]["n"]
    assert photo_n > 0 and photo_n == rec[("adv", "photographed")]["n"]  # tiles judged in pairs
    # paired hiding's denominators are the faces found on the clean image
    assert hide["digital"]["n"] == rec[("clean", "digital")]["k"]
    assert hide["photographed"]["n"] <= rec[("clean", "photographed")]["k"]
    for r in [*rec.values(), *hide.values()]:
        assert r["k"] <= r["n"]
        if r.get("recall", r.get("hiding")) is not None:
            v = r.get("recall", r.get("hiding"))
            assert r["lo"] <= v <= r["hi"] and v == pytest.approx(r["k"] / r["n"], abs=1e-3)
    assert hide["photographed"]["figure_is"] == ("hiding" if chan["verdict"] in ("ok", "n/a") else chan["verdict"])
    assert ("mtcnn (source, white-box)", "digital") in transfer and ("centerface", "photographed") in transfer
    assert transfer[("centerface", "photographed")].endswith("is not hiding") == (chan["verdict"] not in ("ok", "n/a"))
    html = (captured / "report" / "index.html").read_text()
    assert "faces_transfer" in html or "transfer from mtcnn" in html.lower()
    assert html.count("data:image/png") >= 4  # the gallery: digital clean and adversarial with boxes, and crops


def test_the_python_api_gives_a_face_batch_its_figures_and_channel_check(captured: Path) -> None:
    import photoproof as pp

    rows = pp.summary(captured)
    rec = {(r["image"], r["seen"]): r for r in _table(captured, "faces_recall")}
    hide = {r["seen"]: r for r in _table(captured, "faces_hiding")}
    got = {(r["measure"], r["session"], r["image"], r["seen"]): r for r in rows}
    assert len(got) == len(rows) == 1 + len(rec) + len(hide)  # the source's own hiding, then the session's
    for (image, seen), r in rec.items():
        a = got[("recall", "sim", image, seen)]
        assert (a["value"], a["lo"], a["hi"], a["k"], a["n"]) == (r["recall"], r["lo"], r["hi"], r["k"], r["n"])
    for seen, r in hide.items():
        a = got[("hiding", "sim", "adv", seen)]
        assert (a["value"], a["k"], a["n"], a["figure_is"]) == (r["hiding"], r["k"], r["n"], r["figure_is"])
    src = got[("hiding", "", "adv", "digital")]
    assert src["target"] == "mtcnn" and src["n"] == 2 and 0 <= src["k"] <= 2
    (chan,) = _table(captured, "faces_channel")
    check = pp.channel_check(captured)
    assert set(check) == {"sim"}
    c = check["sim"]
    assert c["verdict"] == chan["verdict"] and c["model"] == "centerface"
    assert all(r["channel_check"] == chan["verdict"] for r in rows if r["session"] == "sim")
    if c["clean_photo"] is not None:
        assert c["clean_photo"] == pytest.approx(chan["clean_tiles_all_found_photo"], abs=1e-3)
        assert c["ci_low"] <= c["clean_photo"] <= c["ci_high"]
    with pytest.raises(UserError, match="--session nope"):
        pp.summary(captured, ["nope"])


def test_an_older_database_is_read_and_skipped_in_the_face_report(captured: Path, tmp_path: Path) -> None:
    batch = tmp_path / "b"
    shutil.copytree(captured, batch)
    old = batch / "captures" / "old.sqlite"
    shutil.copy(batch / "captures" / "sim.sqlite", old)
    con = sqlite3.connect(old)
    con.execute("UPDATE sessions SET id = 'old'")
    con.execute("UPDATE observations SET session_id = 'old'")
    con.execute("ALTER TABLE observations DROP COLUMN boxes")  # a schema-2 database: no boxes
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    result = make_report(batch, formats=("csv",))
    assert any(n.startswith("old.sqlite: no face-detector tile observations") for n in result.notes)
    assert {row["session"] for row in _table(batch, "faces_recall")} == {"sim"}


def _stability_rows(db: Path) -> dict[tuple[str, str], tuple[int, float]]:
    con = open_db_readonly(db)
    try:
        rows = con.execute("SELECT item_id, transform, top5_ids, top5_probs FROM stability").fetchall()
    finally:
        con.close()
    return {(i, t): decode_top5(ids, ps)[0] for i, t, ids, ps in rows}


def test_a_face_session_records_the_stability_baseline_the_transforms_give(captured: Path) -> None:
    """capture records, per item and mild transform, whether CenterFace still finds every truth face on the clean
    PNG; the same transforms run here give the same rows, and the channel check's B is their share weighted as the
    session's good clean observations are."""
    from capture.facetarget import FaceTarget
    from capture.stability import TRANSFORMS, mild_clean
    from contracts.batchdir import model_path

    db = captured / "captures" / "sim.sqlite"
    got = _stability_rows(db)
    batch = load_batch(captured)
    assert set(got) == {(it.id, t) for it in batch.items for t in TRANSFORMS}  # both LFW crops have a truth face
    target = FaceTarget(model_path(captured, "centerface"), threads=1)
    target.bind(captured, batch)
    for item, name, img in mild_clean(captured, batch, target.spec.input_size):
        top1, best, dets = target.look(item, img)
        assert got[(item, name)][0] == top1[0] and got[(item, name)][1] == pytest.approx(best[0], abs=1e-5)
        assert top1[0] == 0 or len(dets) > 0
    con = open_db_readonly(db)
    try:
        good = con.execute(
            "SELECT item_id, COUNT(*) FROM observations WHERE role = 'clean' AND good GROUP BY item_id"
        ).fetchall()
    finally:
        con.close()
    share = {i: np.mean([got[(i, t)][0] for t in TRANSFORMS]) for i, _ in good}
    n = sum(k for _, k in good)
    (chan,) = _table(captured, "faces_channel")
    if n:
        assert chan["baseline"] == pytest.approx(sum(share[i] * k for i, k in good) / n, abs=1e-3)
    else:
        assert chan["baseline"] is None
    import photoproof as pp

    assert pp.channel_check(captured)["sim"]["clean_baseline"] == pytest.approx(chan["baseline"], abs=1e-3)
    assert "B is absent" not in CHANNEL_NOTE


def test_the_live_check_reads_the_face_baseline_as_the_report_does(captured: Path) -> None:
    """capture's live tally (:func:`capture.session.session_tally`) on the session's recorded rows gives the
    report's verdict and B."""
    from capture.session import session_tally
    from contracts.verdict import judge

    con = open_db_readonly(captured / "captures" / "sim.sqlite")
    try:
        digital = [
            (i, r, np.array(json.loads(ids)), np.array(json.loads(ps)))
            for i, r, ids, ps in con.execute("SELECT item_id, role, top5_ids, top5_probs FROM digital")
        ]
        stable = [
            (i, t, np.array(json.loads(ids)), np.array(json.loads(ps)))
            for i, t, ids, ps in con.execute("SELECT item_id, transform, top5_ids, top5_probs FROM stability")
        ]
        obs = con.execute("SELECT item_id, role, top1, good FROM observations ORDER BY id").fetchall()
    finally:
        con.close()
    tally = session_tally(load_batch(captured), None, digital, stable)
    assert tally.stability is not None and set(tally.stability) == {i for i, *_ in stable}
    for item, role, top1, good in obs:
        tally.add(item, role, int(top1), bool(good))
    live = judge(tally.evidence())
    (chan,) = _table(captured, "faces_channel")
    assert live.verdict == chan["verdict"]
    assert (live.baseline is None) == (chan["baseline"] is None)
    if live.baseline is not None:
        assert live.baseline == pytest.approx(chan["baseline"], abs=1e-3)


def test_a_face_session_without_stability_rows_still_reports(captured: Path, tmp_path: Path) -> None:
    """A face database captured before detectors recorded a baseline: the check compares with digital alone."""
    batch = tmp_path / "b"
    shutil.copytree(captured, batch)
    con = sqlite3.connect(batch / "captures" / "sim.sqlite")
    con.execute("DELETE FROM stability")
    con.commit()
    con.close()
    before = {r["session"]: r for r in _table(captured, "faces_channel")}
    make_report(batch, formats=("csv",))
    (chan,) = _table(batch, "faces_channel")
    assert chan["baseline"] is None and chan["session"] == "sim"
    assert chan["clean_tiles_all_found_photo"] == before["sim"]["clean_tiles_all_found_photo"]
    assert chan["digital"] == before["sim"]["digital"]


def test_a_face_batch_needs_a_face_detector_and_a_classifier_batch_a_classifier(
    face_batch: Path, setup: tuple[Path, Path, Path]
) -> None:
    from capture.facetarget import check_pairing

    batch = load_batch(face_batch)
    with pytest.raises(UserError, match="face-detector batch.*--model centerface"):
        check_pairing(batch, face_batch, False, "--model lite0")
    cls_batch, _, photos = setup
    centerface = face_batch / "models" / "centerface.onnx"
    r = run_cli("capture", str(cls_batch), "--model", str(centerface), "--photos", str(photos), "--headless")
    assert_one_line_error(r, "a face detector", "classifier batch")


def _session(clean: list[list[bool]], adv: list[list[bool]], digital: tuple[bool, bool]) -> FaceSession:
    s = FaceSession("s", Path("s.sqlite"), "centerface", "simulate", 224)
    s.digital = {("a", "clean"): np.array([digital[0]]), ("a", "adv"): np.array([digital[1]])}
    s.obs = {
        ("a", "clean"): [FaceObs(f, True, np.array(v), Detections.empty(), 224) for f, v in enumerate(clean)],
        ("a", "adv"): [FaceObs(f, True, np.array(v), Detections.empty(), 224) for f, v in enumerate(adv)],
    }
    return s


def test_hiding_is_paired_frame_by_frame_and_a_camera_limited_session_hides_nothing(face_batch: Path) -> None:
    batch = load_batch(face_batch)
    batch.items = [replace(batch.items[0], id="a")]
    # frames 0-3: found clean in 0, 1, 3; the adversarial tile hides it in frames 1 and 3 -> 2 of 3
    s = _session([[True], [True], [False], [True]], [[True], [False], [True], [False]], (True, False))
    h = paired_hiding(s, batch.items, True)
    assert (h.num, h.n) == (2, 3)
    assert (recall(s, batch.items, "clean", True).num, recall(s, batch.items, "adv", False).num) == (3, 0)
    assert paired_hiding(s, batch.items, False).num == 1
    # every clean face found digitally and none photographed: the camera, not the attack, decides
    dark = _session([[False]] * 40, [[False]] * 40, (True, False))
    dark.verdict = channel_verdict(dark, batch)
    assert dark.verdict.verdict == "camera-limited" and limited(dark)
    assert paired_hiding(dark, batch.items, True).n == 0  # nothing found clean: nothing to call hidden


def test_faces_lost_to_resampling_alone_are_not_called_camera_limited(face_batch: Path) -> None:
    """B enters the face verdict: with every clean face found digitally and none photographed, a detector that keeps
    the face under the mild transforms leaves the loss to the camera; one that loses it to them alone is fragile."""
    batch = load_batch(face_batch)
    batch.items = [replace(batch.items[0], id="a")]
    s = _session([[False]] * 40, [[False]] * 40, (True, False))
    verdicts = {}
    for stability in (None, {"a": 1.0}, {"a": 0.0}):
        s.stability = stability
        verdicts[None if stability is None else stability["a"]] = channel_verdict(s, batch)
    assert verdicts[None].verdict == verdicts[1.0].verdict == "camera-limited"
    assert verdicts[None].baseline is None and verdicts[1.0].baseline == 1.0
    lost = verdicts[0.0]
    assert lost.baseline == 0.0 and lost.verdict != "camera-limited"
    assert lost.verdict == "model-fragile" and "mild resampling" in lost.why


def test_a_phone_in_chromium_captures_a_face_batch_and_the_report_reads_it(face_batch: Path, tmp_path: Path) -> None:
    """The phone path end to end on a face batch: Chromium's fake camera plays the simulated camera's close-ups of
    the printed face sheet; CenterFace runs on each tile; the session's boxes land in SQLite and in the face report."""
    chromium_exe()
    from capture.facetarget import FaceTarget
    from capture.phones import PhoneCapture
    from channel.simulate import SimulatedCamera
    from contracts.batchdir import model_path
    from contracts.profile import load_profile

    out = tmp_path / "batch"
    shutil.copytree(face_batch, out)
    with SimulatedCamera.from_batch(out, load_profile("office-laser-webcam"), seed=3, n_frames=12) as cam:
        y4m = write_y4m(tmp_path / "camera.y4m", (f.image for f in cam.frames()), fps=10)
    model = model_path(out, "centerface")
    pc = PhoneCapture(out, model, FaceTarget(model), bind="127.0.0.1", port=0, per_tile=1, session="phone",
                      cert_dir=tmp_path / "config")  # fmt: skip
    br = Chromium(tmp_path / "chromium", pc.start(), y4m)
    try:
        assert br.wait_for("document.body && document.body.dataset.done", 120) == "1"
        assert "Done" in br.evaluate("document.getElementById('done').innerText")
        assert pc.wait() == "every phone finished"
    finally:
        br.close()
        pc.stop()
    ((s,),) = [pc.results()]
    assert s.error is None and s.db is not None
    con = open_db_readonly(s.db)
    try:
        rows = con.execute("SELECT item_id, role, boxes FROM observations WHERE good").fetchall()
    finally:
        con.close()
    assert {(item, role) for item, role, _ in rows} == {(it.id, r) for it in load_batch(out).items for r in ROLES}
    assert all(isinstance(json.loads(b), list) for _, _, b in rows)  # the detector's boxes, recorded per observation
    r = run_cli("report", str(out), "--format", "html,csv")
    assert r.returncode == 0, r.stderr[-2000:]
    assert any(row.get("session") == "phone-phone1" for row in _table(out, "faces_recall")), _table(out, "faces_recall")

"""The batch contract's own pieces: names, session rule, sweep.json schema, profile writer, PNG reader, errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contracts import batchdir
from contracts.errors import UserError
from contracts.images import batch_images, read_item_image, read_png
from contracts.manifest import load_batch
from contracts.profile import load_profile, render_toml, write_profile
from contracts.sweep import SCHEMA, SCHEMA_VERSION, SweepRecord, read_sweep, write_sweep


def test_user_errors_are_value_errors() -> None:
    assert issubclass(UserError, ValueError)
    with pytest.raises(ValueError, match="--session"):
        batchdir.check_session_name("../escape")


@pytest.mark.parametrize("name", ["20261201-101500-camera", "demo-office-laser-webcam", "a.b_c-1"])
def test_session_names_that_are_file_names_pass(name: str, tmp_path: Path) -> None:
    assert batchdir.check_session_name(name) == name
    assert batchdir.capture_db(tmp_path, name) == tmp_path / "captures" / f"{name}.sqlite"


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a\\b", "x" * 65, "sp ace"])
def test_other_session_names_are_refused(name: str) -> None:
    with pytest.raises(UserError, match="--session"):
        batchdir.check_session_name(name)


def test_capture_dbs_lists_only_databases(tmp_path: Path) -> None:
    assert batchdir.capture_dbs(tmp_path) == []
    (tmp_path / "captures" / "s1" / "crops").mkdir(parents=True)
    for n in ("b.sqlite", "a.sqlite", "a.sqlite-wal"):
        (tmp_path / "captures" / n).write_bytes(b"")
    assert [p.name for p in batchdir.capture_dbs(tmp_path)] == ["a.sqlite", "b.sqlite"]


def _rows() -> tuple[list[SweepRecord], list[SweepRecord]]:
    digital = [SweepRecord("digital", 0.0, "i1", "clean", (3, 4, 5, 6, 7), (0.9, 0.05, 0.02, 0.02, 0.01), "lite0")]
    rows = [SweepRecord("blur", 1.5, "i1", "adv", (8, 3, 5, 6, 7), (0.5, 0.3, 0.1, 0.05, 0.05), "lite0")]
    return digital, rows


def test_sweep_json_round_trips_and_is_stamped(tmp_path: Path) -> None:
    digital, rows = _rows()
    out = write_sweep(tmp_path, {"seed": 3, "model": {"name": "lite0"}}, digital, rows)
    doc = json.loads(out.read_text())
    assert (doc["schema"], doc["schema_version"], doc["seed"]) == (SCHEMA, SCHEMA_VERSION, 3)
    assert "transform" not in doc["digital"][0] and doc["rows"][0]["top1"] == 8
    back = read_sweep(tmp_path)
    assert back is not None and back.stamped and back.digital == digital and back.rows == rows


@pytest.mark.parametrize(
    "stamp",
    [{"schema": SCHEMA, "schema_version": SCHEMA_VERSION + 1}, {"schema": "photoproof.batch", "schema_version": 1}],
)
def test_sweep_json_of_another_schema_or_version_is_refused(tmp_path: Path, stamp: dict) -> None:  # type: ignore[type-arg]
    digital, rows = _rows()
    out = write_sweep(tmp_path, {}, digital, rows)
    out.write_text(json.dumps({**json.loads(out.read_text()), **stamp}))
    with pytest.raises(UserError, match=r"sweep\.json: schema .* is not photoproof\.sweep version 1"):
        read_sweep(tmp_path)


def test_an_unstamped_list_of_rows_is_read_without_a_baseline(tmp_path: Path) -> None:
    _, rows = _rows()
    (tmp_path / "sweep.json").write_text(json.dumps([r.to_dict() for r in rows]))
    back = read_sweep(tmp_path)
    assert back is not None and not back.stamped and back.digital == [] and back.rows == rows
    assert read_sweep(tmp_path / "nowhere") is None


def test_profile_writer_round_trips_through_the_reader(tmp_path: Path) -> None:
    prof = load_profile("inkjet-phone")
    changed = replace(prof, name="mine", printer=replace(prof.printer, tone_gamma=1.234, paper_white=(0.9, 0.91, 0.92)))
    out = tmp_path / "mine.toml"
    text = write_profile(out, changed, header=["a header"], notes={"printer.tone_gamma": "estimated"})
    assert text.startswith("# a header") and "# estimated\ntone_gamma = 1.234" in text
    assert load_profile(str(out)) == changed
    assert render_toml(changed) == out.read_text().split("\n", 1)[1].replace("# estimated\n", "")


def test_one_png_reader_for_the_batch(synthetic_batch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d = synthetic_batch(n_items=2, size=16)
    batch = load_batch(d)
    images = list(batch_images(d, batch))
    assert [(i, r) for i, r, _ in images] == [(it.id, r) for it in batch.items for r in ("clean", "adv")]
    assert all(im.shape == (16, 16, 3) and im.dtype == np.uint8 for _, _, im in images)
    it = batch.items[1]
    path = d / it.adv.path
    Image.new("RGB", (16, 16), (1, 2, 3)).save(path, format="JPEG")
    with pytest.raises(UserError, match=rf"{it.adv.path}: cannot read the adv PNG of item {it.id} \(is a JPEG file"):
        read_item_image(d, it, "adv")
    rgba = np.zeros((4, 4, 4), np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    with pytest.raises(UserError, match="transparent"):
        read_png(tmp_path / "t.png")
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    assert read_png(tmp_path / "o.png").mode == "RGB"  # an opaque alpha channel is dropped


def test_isp_section_round_trips_and_refuses_what_no_camera_does(tmp_path: Path) -> None:
    from contracts.profile import IDENTITY_TONE, load_profile, parse_profile, write_profile

    prof = load_profile("careful-lab")
    assert prof.isp.sharpen_amount > 0 and not prof.isp.is_identity()
    out = tmp_path / "p.toml"
    write_profile(out, prof)
    assert load_profile(str(out)).isp == prof.isp
    bad_curve = list(IDENTITY_TONE)
    bad_curve[4] = 0.9  # the curve falls after this knot
    with pytest.raises(UserError, match=r"\[isp\]\.tone_g: a tone curve must not decrease"):
        parse_profile({"isp": {"tone_g": bad_curve}}, "x", "x.toml")
    with pytest.raises(UserError, match="colour_matrix: the matrix is singular"):
        parse_profile({"isp": {"colour_matrix": [1, 1, 1, 1, 1, 1, 0, 0, 1]}}, "x", "x.toml")
    with pytest.raises(UserError, match="tone_r: expected a list of 17 numbers"):
        parse_profile({"isp": {"tone_r": [0, 1]}}, "x", "x.toml")
    for bad in ("desk-1", ["../desk"], [1]):  # calibrate writes a list of session names, nothing else
        with pytest.raises(UserError, match="x.toml: calibrated_from must list the capture sessions"):
            parse_profile({"calibrated_from": bad}, "x", "x.toml")
    fitted = replace(prof, calibrated_from=("desk-1", "desk.2"))
    write_profile(out, fitted)
    assert load_profile(str(out)).calibrated_from == ("desk-1", "desk.2")

"""Hostile files: manifests, layouts, profiles, capture databases, labels and paths.

Each file is generated (by hand for the classes of defect seen, by hypothesis for
the rest) and read by the real loaders. The only outcomes allowed: the file is
accepted and correct, or a one-line ``UserError`` that names the file.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.load import load_input
from analysis.tables import Table, csv_safe, table_csv
from contracts.classes import parse_label
from contracts.errors import UserError
from contracts.layout import load_layout
from contracts.manifest import load_batch
from contracts.profile import load_profile, parse_profile
from testkit.batch import write_batch as make_synthetic_batch
from testkit.scenes import make_layout

HYP = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid batch with a layout, read once; tests copy its JSON."""
    d = tmp_path_factory.mktemp("good") / "batch"
    make_synthetic_batch(d, n_items=3, size=32)
    make_layout(d)
    return d


def _write(d: Path, name: str, obj: Any) -> None:
    (d / name).write_text(json.dumps(obj))


# -- batch.json --------------------------------------------------------------------


def _manifest(good: Path) -> dict[str, Any]:
    return json.loads((good / "batch.json").read_text())


@pytest.mark.parametrize(
    "field, value, needle",
    [
        (("items", 0, "label", "index"), "243", "items[0].label.index: expected an integer"),
        (("items", 0, "label", "index"), True, "items[0].label.index: expected an integer"),
        (("items", 0, "label", "index"), 10**30, "items[0].label.index: expected 0..999,"),
        (("items", 0, "label", "index"), 5000, "items[0].label.index: expected 0..999,"),
        (("items", 0, "target"), 1000, "items[0].target: expected 0..999,"),
        (("items", 0, "clean", "top5", "lite0", 0, 0), 1000, "items[0].clean.top5.lite0[0][0]: expected 0..999,"),
        (("items", 1, "eps"), "16", "items[1].eps: expected a finite number"),
        (("items", 0, "clean", "top5", "lite0", 0, 0), "7", "items[0].clean.top5.lite0[0][0]"),
        (("items", 0, "clean", "path"), 5, "items[0].clean.path"),
        (("models", 0, "preprocess"), [], "models[0].preprocess: expected an object"),
        (("items", 0, "target"), 1.5, "items[0].target"),
        (("items",), {"a": 1}, "items: expected a list"),
    ],
    ids=[
        "label-as-string",
        "label-as-bool",
        "label-absurd",
        "label-past-the-label-set",
        "target-past-the-label-set",
        "top5-past-the-label-set",
        "eps-as-string",
        "top5-id-as-string",
        "path-as-int",
        "preprocess-list",
        "target-float",
        "items-object",
    ],
)
def test_manifest_types_are_checked_and_named(
    good: Path, tmp_path: Path, field: tuple, value: Any, needle: str
) -> None:
    d = _manifest(good)
    node = d
    for k in field[:-1]:
        node = node[k]
    node[field[-1]] = value
    bad = tmp_path / "b"
    bad.mkdir()
    _write(bad, "batch.json", d)
    with pytest.raises(UserError) as e:
        load_batch(bad)
    assert str(bad / "batch.json") in str(e.value) and needle in str(e.value) and "\n" not in str(e.value)


def test_duplicate_item_ids_are_refused(good: Path, tmp_path: Path) -> None:
    d = _manifest(good)
    d["items"][2]["id"] = d["items"][0]["id"]
    _write(tmp_path, "batch.json", d)
    with pytest.raises(UserError, match=r"items\[2\]\.id: duplicate item id .* \(also items\[0\]\)"):
        load_batch(tmp_path)


def test_a_journal_record_of_the_wrong_type_is_refused_naming_file_and_line(good: Path, tmp_path: Path) -> None:
    from contracts import journal

    d = _manifest(good)
    items = d["items"]
    d["items"] = items[:1]
    _write(tmp_path, "batch.json", d)
    bad = json.loads(json.dumps(items[2]))
    bad["label"]["index"] = "243"  # would halve the accuracy if coerced
    with journal.JournalWriter(tmp_path) as w:
        w.append([items[1], bad, items[2]])
    f = journal.journal_files(tmp_path)[0]
    with pytest.raises(UserError) as e:
        load_batch(tmp_path)
    assert f"{f}:2: item.label.index: expected an integer" in str(e.value) and "\n" not in str(e.value)


def test_duplicate_ids_in_batch_json_are_refused_also_beside_a_journal(good: Path, tmp_path: Path) -> None:
    from contracts import journal

    d = _manifest(good)
    d["items"][1]["id"] = d["items"][0]["id"]  # the fold, keyed by id, would hide this
    _write(tmp_path, "batch.json", d)
    with journal.JournalWriter(tmp_path) as w:
        w.append([d["items"][2]])
    with pytest.raises(UserError, match=r"items\[1\]\.id: duplicate item id .* \(also items\[0\]\)"):
        load_batch(tmp_path)


_BAD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _paths(obj: Any, at: tuple = ()) -> list[tuple]:
    out = [at] if at else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*at, i))
    return out


def _mutated(base: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    d = copy.deepcopy(base)
    path = data.draw(st.sampled_from(_paths(d)))
    node = d
    for k in path[:-1]:
        node = node[k]
    if data.draw(st.booleans()) and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = data.draw(_BAD_VALUES)
    return d


@HYP
@given(data=st.data())
def test_any_mutated_manifest_loads_or_gives_a_one_line_error(good: Path, tmp_path: Path, data: st.DataObject) -> None:
    _write(tmp_path, "batch.json", _mutated(_manifest(good), data))
    try:
        batch = load_batch(tmp_path)
    except UserError as e:
        assert "batch.json" in str(e) and "\n" not in str(e)
        return
    for it in batch.items:  # accepted: then the types downstream code relies on hold
        assert isinstance(it.label.index, int) and isinstance(it.id, str) and isinstance(it.eps, float)
    assert len({it.id for it in batch.items}) == len(batch.items)


# -- layout.json -------------------------------------------------------------------


def _layout(good: Path) -> dict[str, Any]:
    return json.loads((good / "layout.json").read_text())


@pytest.mark.parametrize(
    "field, value, needle",
    [
        (("sheets", 0, "size_mm"), [1e7, 1e7], "sheets[0].size_mm[0]"),
        (("sheets", 0, "markers", 0, "id"), "3", "sheets[0].markers[0].id: expected an integer"),
        (("sheets", 0, "tiles", 0, "box_mm"), ["a", 1, 2, 3], "sheets[0].tiles[0].box_mm[0]"),
        (("marker_size_mm",), float("nan"), "marker_size_mm: expected a finite number"),
        (("sheets", 0, "tiles", 0, "role"), "evil", "sheets[0].tiles[0].role"),
        (("sheets", 0, "tiles", 0, "box_mm"), [0, 0, 5000, 10], "sheets[0].tiles[0].box_mm"),
    ],
    ids=["sheet-100-GiB", "marker-id-string", "box-string", "marker-size-nan", "role", "tile-off-sheet"],
)
def test_layout_types_and_sizes_are_checked(good: Path, tmp_path: Path, field: tuple, value: Any, needle: str) -> None:
    d = _layout(good)
    node = d
    for k in field[:-1]:
        node = node[k]
    node[field[-1]] = value
    _write(tmp_path, "layout.json", d)
    with pytest.raises(UserError) as e:
        load_layout(tmp_path)
    assert "layout.json" in str(e.value) and needle in str(e.value)


@HYP
@given(data=st.data())
def test_any_mutated_layout_loads_or_gives_a_one_line_error(good: Path, tmp_path: Path, data: st.DataObject) -> None:
    _write(tmp_path, "layout.json", _mutated(_layout(good), data))
    try:
        layout = load_layout(tmp_path)
    except UserError as e:
        assert "layout.json" in str(e) and "\n" not in str(e)
        return
    for s in layout.sheets:
        assert all(10 <= v <= 2000 for v in s.size_mm) and all(isinstance(m.id, int) for m in s.markers)


# -- channel profiles ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[camera]\nwidth = 1000000\nheight = 1000000\n", "[camera].width: 1e+06 is outside"),
        ("[scene]\ntilt_deg = ['a', 'b']\n", "[scene].tilt_deg: expected a finite number"),
        ("camera = 5\n", "[camera]: expected a table"),
        ("[camera]\nfps = nan\n", "[camera].fps: expected a finite number"),
        ("[camera]\nfps = 0\n", "[camera].fps: 0 is outside"),
        ("[printer]\ndpi = 1e9\n", "[printer].dpi"),
        ("[camera]\nwidth = 640.5\n", "[camera].width: expected a whole number"),
    ],
    ids=["100-GiB-frame", "range-of-strings", "section-scalar", "nan", "fps-zero", "dpi-huge", "width-fraction"],
)
def test_profile_values_are_typed_and_bounded(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(UserError) as e:
        load_profile(str(p))
    assert str(p) in str(e.value) and needle in str(e.value)


def test_profile_not_utf8_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "p.toml"
    p.write_bytes(b"\xff\xfe[camera]\n")
    with pytest.raises(UserError, match="not UTF-8"):
        load_profile(str(p))


_TOML_VALUES = st.one_of(
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(),
    st.text(max_size=5),
    st.lists(st.floats(), max_size=3),
    st.lists(st.text(max_size=2), max_size=2),
)


@settings(max_examples=80, deadline=None)
@given(
    section=st.sampled_from(["printer", "scene", "camera"]),
    key=st.sampled_from(
        [
            "dpi",
            "tone_gamma",
            "paper_white",
            "halftone",
            "sheet_fill",
            "tilt_deg",
            "width",
            "height",
            "fps",
            "jpeg_quality",
            "gamma",
            "exposure",
        ]
    ),
    value=_TOML_VALUES,
)
def test_any_profile_value_is_accepted_in_bounds_or_refused(section: str, key: str, value: Any) -> None:
    try:
        prof = parse_profile({section: {key: value}}, "x", "x.toml")
    except UserError as e:
        assert "x.toml" in str(e)
        return
    assert prof.camera.width * prof.camera.height <= 8192 * 8192 and 0.1 <= prof.camera.fps


# -- capture databases ----------------------------------------------------------------


def _db_with(good: Path, tmp_path: Path, sql: str) -> Path:
    """A copy of the batch with one recorded session whose rows were then damaged by ``sql``."""
    import shutil

    from capture.record import Observation, Recorder
    from capture.sessionrow import SessionStart
    from capture.sheets.quality import TileQuality

    b = tmp_path / "b"
    shutil.copytree(good, b)
    rec = Recorder(b / "captures" / "s1.sqlite", "s1", "btest-0001")
    rec.start_session(
        SessionStart(source="test", model="m", model_sha256="0", provider="CPU", profile=None, seed=None, config={})
    )
    items = load_batch(b).items
    rec.write_digital(
        [(it.id, r, [1, 2, 3, 4, 5], [0.5, 0.2, 0.1, 0.1, 0.1]) for it in items for r in ("clean", "adv")]
    )
    rec.add_frame(0, 0.0, ["s0"])
    rec.add_observations(
        [
            Observation(
                0,
                "s0",
                it.id,
                "clean",
                TileQuality(100.0, 80.0, 5.0, 0.0),
                True,
                [1, 2, 3, 4, 5],
                [0.5, 0.2, 0.1, 0.1, 0.1],
            )
            for it in items
        ]
    )
    rec.close({})
    con = sqlite3.connect(b / "captures" / "s1.sqlite")
    con.execute(sql)
    con.commit()
    con.close()
    return b


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE sessions SET started='abc'",
        "UPDATE observations SET top5_ids='xx'",
        "UPDATE observations SET top5_ids='{\"a\": 1}'",
        "UPDATE digital SET top5_probs='nope'",
        "UPDATE observations SET sharpness='x'",
        "UPDATE observations SET frame_idx='x'",
        "UPDATE sessions SET config='[1, 2]'",
        "UPDATE observations SET top5_probs='[0.5]'",
    ],
    ids=[
        "started",
        "top5-garbage",
        "top5-object",
        "digital-garbage",
        "sharpness",
        "frame-idx",
        "config-array",
        "top5-unpaired",
    ],
)
def test_malformed_capture_rows_give_a_one_line_error_naming_the_file(good: Path, tmp_path: Path, sql: str) -> None:
    b = _db_with(good, tmp_path, sql)
    if "config" in sql:  # tolerated: a config that is not an object is read as empty
        assert len(load_input(b).sessions) == 1
        return
    with pytest.raises(UserError) as e:
        load_input(b)
    assert "s1.sqlite" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("char", ["#", "?", "%41"])
def test_uri_characters_in_the_batch_path_are_not_sqlite_syntax(good: Path, tmp_path: Path, char: str) -> None:
    b = _db_with(good, tmp_path, "SELECT 1")
    odd = tmp_path / f"run{char}1"
    b.rename(odd)
    inp = load_input(odd)
    assert [s.id for s in inp.sessions] == ["s1"] and len(inp.sessions[0].observations) == 3
    assert [p.name for p in tmp_path.iterdir()] == [odd.name]  # no stray files beside it


# -- labels ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["²", "¹²", "٣", "n0²"])
def test_unicode_digits_are_not_class_indices(text: str) -> None:
    with pytest.raises(UserError, match="label"):
        parse_label(text)


def test_labels_csv_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    from PIL import Image

    from craft.images import user_photos

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_bytes(b"file,label\na.png,caf\xe9\n")
    with pytest.raises(UserError, match=r"labels.csv: not UTF-8"):
        user_photos(tmp_path)


def test_high_bit_depth_photos_for_craft_are_scaled_not_clipped(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from craft.images import SourcePhoto, load_rgb

    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    Image.fromarray(ramp.astype(np.float32) / 65535, mode="F").save(tmp_path / "f.tif")
    for name in ("g16.png", "f.tif"):
        a = np.asarray(load_rgb(SourcePhoto("k", name, tmp_path / name, "user", None, None)))
        assert a.dtype == np.uint8 and a[0, 0, 0] == 0 and a[0, -1, 0] == 255 and 100 < a[0, 32, 0] < 160, name


def test_heic_photos_for_craft_are_read_and_a_heic_bomb_or_fake_is_refused(tmp_path: Path) -> None:
    """craft --images reads a phone's HEIC photo (pi-heif; the test writes it with pillow-heif) like its JPEG; a
    forged or oversized one is one of the unreadable files, refused before its pixels are decoded."""
    import numpy as np
    import pillow_heif
    from PIL import Image

    from contracts.imageio import has_image_header
    from craft.images import SourcePhoto, load_rgb, user_photos

    rgb = np.zeros((96, 128, 3), np.uint8)
    rgb[:, :64] = (200, 40, 40)
    rgb[:, 64:] = (30, 160, 220)
    pillow_heif.from_pillow(Image.fromarray(rgb)).save(tmp_path / "IMG_0001.HEIC", quality=95)
    a = np.asarray(load_rgb(SourcePhoto("k", "IMG_0001.HEIC", tmp_path / "IMG_0001.HEIC", "user", None, None)))
    assert a.shape == rgb.shape and np.abs(a[8:-8, 8:56].astype(int) - rgb[8:-8, 8:56]).max() < 12
    assert [p.path.name for p in user_photos(tmp_path)] == ["IMG_0001.HEIC"]

    (tmp_path / "fake.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    assert not has_image_header(tmp_path / "fake.heic") and has_image_header(tmp_path / "IMG_0001.HEIC")
    with pytest.raises(UserError, match=r"fake.heic: not a readable image \(ValueError"):
        load_rgb(SourcePhoto("f", "fake.heic", tmp_path / "fake.heic", "user", None, None))
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 96 * 128 // 4  # the photo is 4 x the limit: a bomb by Pillow's rule (over 2 x)
    try:
        with pytest.raises(UserError, match="IMG_0001.HEIC: not a readable image \\(DecompressionBombError"):
            load_rgb(SourcePhoto("k", "IMG_0001.HEIC", tmp_path / "IMG_0001.HEIC", "user", None, None))
    finally:
        Image.MAX_IMAGE_PIXELS = old


# -- CSV exports ------------------------------------------------------------------------


def test_csv_cells_from_outside_never_become_formulas() -> None:
    t = Table(
        "t",
        "t",
        ["model", "value"],
        [
            {"model": '=HYPERLINK("http://x")', "value": -0.5},
            {"model": "@SUM(A1)", "value": "-1e3"},
            {"model": "+cmd", "value": "\tx"},
            {"model": "-x", "value": "\rx"},
        ],
        [],
        "",
    )
    import csv
    import io

    rows = list(csv.reader(io.StringIO(table_csv(t), newline="")))
    assert rows[1:] == [['\'=HYPERLINK("http://x")', "-0.5"], ["'@SUM(A1)", "-1e3"], ["'+cmd", "'\tx"], ["'-x", "'\nx"]]
    assert csv_safe("'\tx") == "'\tx" and csv_safe(3) == 3


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=12))
def test_no_csv_cell_starts_with_a_formula_character_unless_it_is_a_number(text: str) -> None:
    v = csv_safe(text)
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        float(v)  # only plain numbers keep their sign


# -- models ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["garbage", "empty", "wrong-output-shape", "bad-spec-metadata", "huge-input-size"])
def test_hostile_onnx_models_give_a_one_line_error_naming_the_model(tmp_path: Path, kind: str) -> None:
    import onnx

    from capture.classify import OnnxClassifier
    from testkit.scenes import identity_model, tiny_classifier

    path = tmp_path / "m.onnx"
    if kind == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong-output-shape":
        identity_model(path)
    else:
        tiny_classifier(path, size=32)
        m = onnx.load(str(path))
        for prop in m.metadata_props:
            if prop.key == "photoproof.preprocess":
                spec = json.loads(prop.value)
                spec["input_size"] = "big" if kind == "bad-spec-metadata" else 10**6
                prop.value = json.dumps(spec)
        onnx.save(m, str(path))
    with pytest.raises(UserError) as e:
        OnnxClassifier(path)
    assert "\n" not in str(e.value) and "m.onnx" in str(e.value)


@pytest.mark.parametrize("name", ["batch.json", "layout.json"])
def test_deeply_nested_json_is_a_one_line_error(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("[" * 200_000)
    with pytest.raises(UserError, match=f"{name}: corrupt JSON"):
        (load_batch if name == "batch.json" else load_layout)(tmp_path)


# -- the TensorRT engine cache ------------------------------------------------------------


def test_engine_cache_is_per_user_and_refuses_folders_others_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import stat

    from capture.cachedir import private_dir, user_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    d = user_cache_dir() / "trt"
    assert d.is_relative_to(tmp_path) and private_dir(d) and stat.S_IMODE(d.stat().st_mode) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # a /tmp-like folder: anyone may plant an engine there
    assert not private_dir(shared)
    if os.getuid() == 0:  # as root, also a folder owned by another user
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, 65534, 65534)
        assert not private_dir(theirs)

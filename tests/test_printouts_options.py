"""The printouts stage: options, re-runs, the ``print`` command and bad input.

The renders themselves are checked in ``test_printouts.py``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from contracts.errors import UserError
from contracts.layout import load_layout, load_layouts
from contracts.manifest import load_batch, save_batch
from printouts import cli
from printouts import geometry as geo
from printouts.markers import MAX_SHEETS, choose_dictionary, marker_id_offset, sheet_marker_ids
from printouts.plan import check_images, plan_layout, roles_for
from printouts.qr import QUIET_MM
from printouts.sheets import print_batch

PT_PER_MM = 72.0 / 25.4


def test_without_cover_sheets_start_at_page_zero(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=7, size=32)
    lay = print_batch(d, paper="letter", cover=False)
    assert [s.page for s in lay.sheets] == list(range(len(lay.sheets)))
    assert len(pdfium.PdfDocument(str(d / "sheets.pdf"))) == len(lay.sheets) == 3


def test_rerun_overwrites_atomically_and_reproducibly(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=2, size=32)
    first = print_batch(d, paper="a4")
    second = print_batch(d, paper="letter", tile_mm=40.0, layout="adversarial-only")
    assert first.paper == "a4" and load_layout(d) == second
    assert json.loads((d / "layout.json").read_text())["paper"] == "letter"
    assert pdfium.PdfDocument(str(d / "sheets.pdf"))[0].get_size()[1] / PT_PER_MM == pytest.approx(279.4, abs=0.01)
    assert sorted(p.name for p in d.iterdir()) == [
        "batch.json",
        "cover.pdf",
        "images",
        "layout.json",
        "layouts",
        "sheets.pdf",
    ]
    # both prints' layouts are kept, by id: photos of the first print's sheets are still read with it
    assert sorted(p.stem for p in (d / "layouts").iterdir()) == sorted([first.id, second.id])
    assert first.id != second.id and load_layouts(d)[first.id].paper == "a4"
    pdf = (d / "sheets.pdf").read_bytes()
    print_batch(d, paper="letter", tile_mm=40.0, layout="adversarial-only")
    assert (d / "sheets.pdf").read_bytes() == pdf  # same inputs, same bytes


@pytest.mark.parametrize("n_sheets", [1, 6, 7, 32, 125])
def test_dictionary_is_always_the_largest_4x4(n_sheets: int) -> None:
    assert choose_dictionary(n_sheets) == "DICT_4X4_1000"
    assert MAX_SHEETS == 125


def test_each_batch_gets_its_own_block_of_marker_ids() -> None:
    offsets = [marker_id_offset(f"b20261122-{k:08x}") for k in range(2000)]
    assert offsets[:3] == [marker_id_offset(f"b20261122-{k:08x}") for k in range(3)]  # deterministic
    assert all(o % 8 == 0 and 0 <= o < 1000 for o in offsets)
    counts = Counter(offsets)
    assert len(counts) == 125 and max(counts.values()) < 3 * 2000 / 125  # spread over every block
    assert sheet_marker_ids(0, 992) == list(range(992, 1000)) and sheet_marker_ids(1, 992) == list(
        range(8)
    )  # wraps round
    assert sheet_marker_ids(3) == list(range(24, 32))


def test_two_batches_print_different_marker_ids(synthetic_batch: Callable[..., Path]) -> None:
    a = print_batch(synthetic_batch(name="a", n_items=7, size=32, batch_id="b20261122-3f9c1a2e"), paper="letter")
    b = print_batch(synthetic_batch(name="b", n_items=7, size=32, batch_id="b20261122-77aa0b01"), paper="letter")
    for lay in (a, b):
        ids = [m.id for s in lay.sheets for m in s.markers]
        first = lay.extra["marker_id_offset"]
        assert first == marker_id_offset(lay.batch_id)
        assert ids == [(first + k) % 1000 for k in range(len(ids))]
    assert not {m.id for s in a.sheets for m in s.markers} & {m.id for s in b.sheets for m in s.markers}


def _cli_app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)  # keep 'print' a sub-command
    cli.register(app)
    return app


def test_cli_print(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=3, size=32)
    res = CliRunner().invoke(
        _cli_app(),
        ["print", str(d), "--paper", "letter", "--tile-mm", "45", "--layout", "adversarial-only", "--no-cover"],
    )
    assert res.exit_code == 0, res.output
    assert "sheets.pdf" in res.output and "100%" in res.output
    lay = load_layout(d)
    assert (lay.paper, lay.tile_mm, lay.extra["layout"], lay.sheets[0].page) == ("letter", 45.0, "adversarial-only", 0)


def test_cli_bad_tile_size_is_a_user_error(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=1, size=32)
    res = CliRunner().invoke(_cli_app(), ["print", str(d), "--tile-mm", "500"])
    assert isinstance(res.exception, UserError) and "--tile-mm 500" in str(res.exception)


# -- bad input --------------------------------------------------------------------


def test_batch_without_items(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=1, size=32)
    batch = load_batch(d)
    batch.items = []
    save_batch(d, batch)
    with pytest.raises(UserError, match=r"batch\.json: the batch has no items"):
        print_batch(d)


def test_missing_png_names_the_file(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=2, size=32)
    (d / "images" / "syn-01-adv.png").unlink()
    with pytest.raises(UserError, match=r"images/syn-01-adv\.png: missing \(adv image of item syn-01-fgsm-e16\)"):
        print_batch(d)
    assert not (d / "sheets.pdf").exists() and not (d / "layout.json").exists()


def test_changed_png_is_refused(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=1, size=32)
    Image.new("RGB", (32, 32), (1, 2, 3)).save(d / "images" / "syn-00-clean.png")
    with pytest.raises(UserError, match=r"syn-00-clean\.png: its sha256 differs"):
        print_batch(d)


def test_missing_batch_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such batch directory"):
        print_batch(tmp_path / "nope")


@pytest.mark.parametrize(
    ("paper", "layout", "biggest"),
    [
        ("a4", "pairs", 74.5),
        ("letter", "pairs", 77.4),
        ("a4", "adversarial-only", 152.0),
        ("letter", "adversarial-only", 157.9),
    ],
)
def test_tile_too_big_names_the_maximum(
    synthetic_batch: Callable[..., Path], paper: str, layout: str, biggest: float
) -> None:
    d = synthetic_batch(n_items=1, size=16)
    with pytest.raises(UserError, match=rf"--tile-mm {biggest + 0.1:g}: .* the maximum that fits is {biggest:g} mm"):
        print_batch(d, paper=paper, layout=layout, tile_mm=biggest + 0.1)
    lay = print_batch(d, paper=paper, layout=layout, tile_mm=biggest, cover=False)
    assert lay.sheets[0].tiles[0].box_mm[2] == biggest


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"paper": "a3"}, r"--paper 'a3': unknown paper size; choose one of a4, letter"),
        ({"layout": "clean-only"}, r"--layout 'clean-only': unknown layout; choose one of pairs, adversarial-only"),
        ({"tile_mm": 5.0}, r"--tile-mm 5: tiles must be at least 10 mm wide"),
        ({"tile_mm": float("nan")}, r"--tile-mm nan: expected a number"),
    ],
    ids=["paper", "layout", "tile-small", "tile-nan"],
)
def test_bad_options_name_the_option(
    synthetic_batch: Callable[..., Path], kwargs: dict[str, object], message: str
) -> None:
    d = synthetic_batch(n_items=1, size=16)
    with pytest.raises(UserError, match=message):
        print_batch(d, **kwargs)  # type: ignore[arg-type]


def test_more_sheets_than_markers(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=MAX_SHEETS + 1, size=8)  # one 150 mm tile per A4 sheet
    with pytest.raises(
        UserError,
        match=r"126 sheets need 1008 marker ids, .*DICT_4X4_1000.* has 1000.*split the batch into batches of at most "
        r"125 items",
    ):
        print_batch(d, tile_mm=150.0, layout="adversarial-only")


def test_qr_code_never_overlaps_tiles_captions_or_the_strip(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=60, size=64)
    batch = load_batch(d)
    for paper in ("a4", "letter"):
        for layout in ("pairs", "adversarial-only"):
            sizes = check_images(d, batch, roles_for(layout))
            for tile_mm in (20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 65.0, 70.0, 74.5):
                lay = plan_layout(batch, sizes, paper, tile_mm, layout, cover=False)
                s = lay.sheets[0]
                qx, qy, qs, _ = s.qr["box_mm"]
                assert (
                    17.0 <= qs <= 36.0 and qx + qs <= s.size_mm[0] - 8.0 - 18.0 - 3.9 and qy + qs <= s.size_mm[1] - 8.0
                )
                gap = QUIET_MM - 1e-6
                for t in s.tiles:  # tile and caption
                    x, y, w, h = t.box_mm
                    assert x + w + gap <= qx or y + h + geo.CAPTION_MM + gap <= qy, (
                        paper,
                        layout,
                        tile_mm,
                        t.box_mm,
                        s.qr["box_mm"],
                    )
                assert max(p.box_mm[0] + p.box_mm[2] for p in s.calibration) + gap <= qx

"""The printouts stage: options, re-runs, the ``print`` command and bad input.

The renders themselves are checked in ``test_printouts.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from contracts.errors import UserError
from contracts.layout import load_layout
from contracts.manifest import load_batch, save_batch
from printouts import cli
from printouts.markers import MAX_SHEETS, choose_dictionary
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
    assert pdfium.PdfDocument(str(d / "sheets.pdf"))[1].get_size()[1] / PT_PER_MM == pytest.approx(279.4, abs=0.01)
    assert sorted(p.name for p in d.iterdir()) == ["batch.json", "images", "layout.json", "sheets.pdf"]
    pdf = (d / "sheets.pdf").read_bytes()
    print_batch(d, paper="letter", tile_mm=40.0, layout="adversarial-only")
    assert (d / "sheets.pdf").read_bytes() == pdf  # same inputs, same bytes


@pytest.mark.parametrize(
    ("n_sheets", "expected"),
    [(1, "DICT_4X4_50"), (6, "DICT_4X4_50"), (7, "DICT_4X4_100"), (12, "DICT_4X4_100"), (13, "DICT_4X4_250"), (32, "DICT_4X4_1000"), (125, "DICT_4X4_1000")],
)
def test_dictionary_is_the_smallest_that_fits(n_sheets: int, expected: str) -> None:
    assert choose_dictionary(n_sheets) == expected
    assert MAX_SHEETS == 125


def _cli_app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)  # keep 'print' a sub-command
    cli.register(app)
    return app


def test_cli_print(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=3, size=32)
    res = CliRunner().invoke(_cli_app(), ["print", str(d), "--paper", "letter", "--tile-mm", "45", "--layout", "adversarial-only", "--no-cover"])
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
    [("a4", "pairs", 74.5), ("letter", "pairs", 77.4), ("a4", "adversarial-only", 152.0), ("letter", "adversarial-only", 157.9)],
)
def test_tile_too_big_names_the_maximum(synthetic_batch: Callable[..., Path], paper: str, layout: str, biggest: float) -> None:
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
def test_bad_options_name_the_option(synthetic_batch: Callable[..., Path], kwargs: dict[str, object], message: str) -> None:
    d = synthetic_batch(n_items=1, size=16)
    with pytest.raises(UserError, match=message):
        print_batch(d, **kwargs)  # type: ignore[arg-type]


def test_more_sheets_than_markers(synthetic_batch: Callable[..., Path]) -> None:
    d = synthetic_batch(n_items=MAX_SHEETS + 1, size=8)  # one 150 mm tile per A4 sheet
    with pytest.raises(UserError, match=r"126 sheets need 1008 marker ids, .*DICT_4X4_1000.* has 1000.*split the batch into batches of at most 125 items"):
        print_batch(d, tile_mm=150.0, layout="adversarial-only")

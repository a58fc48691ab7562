"""Figures and tables fit for a paper (issue 28, point 6): no text box overlaps another in any SVG as a browser
renders it, top-1 and top-5 told apart without colour, integer ticks on counts, and wide tables split into
parts that repeat the key columns (HTML and PDF), never with hidden columns."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest
from reportlab.platypus import Table as PdfTable

from analysis import plots
from analysis.html import TABLE_ROOM_PX, _col_px
from analysis.report import ReportResult, make_report
from analysis.stats import Rate
from analysis.synthetic import Odds, write_capture_db
from analysis.table_parts import column_parts, key_columns
from analysis.tables import Table
from testkit.batch import write_batch
from testkit.chromium import Chromium, chromium_exe

# Session ids as capture names them (date, time, source, random suffix): long legend entries.
GOOD, BAD, THIRD = "20261206-205624-simulate-51bf4a", "20261206-211044-camera0-2b9367", "20261207-090000-phone1"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportResult]:
    d = tmp_path_factory.mktemp("figures") / "batch"
    b = write_batch(d, n_items=36, attacks=("fgsm", "bim", "ll"), eps=(2.0, 8.0, 16.0), batch_id="bsynthetic-0028")
    common: dict[str, Any] = dict(input_size=260, n_frames=12)
    write_capture_db(d / "captures" / f"{GOOD}.sqlite", b, GOOD, odds=Odds(clean_photo=0.95), **common)
    write_capture_db(
        d / "captures" / f"{BAD}.sqlite",
        b,
        BAD,
        odds=Odds(clean_photo=0.2, adv_photo=0.1),
        tile_px=(60, 110),
        angle_deg=(35, 60),
        seed=3,
        **common,
    )
    write_capture_db(d / "captures" / f"{THIRD}.sqlite", b, THIRD, odds=Odds(clean_photo=0.8), seed=5, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return d, make_report(d)


OVERLAPS_JS = """(() => {
  const boxes = Array.from(document.querySelectorAll("text")).filter(t => t.textContent.trim()).map(t => {
    const r = t.getBoundingClientRect();
    return {s: t.textContent.trim(), x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
  });
  const out = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    const w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0), h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
    if (w > 1 && h > 1) out.push(a.s + " | " + b.s);
  }
  return JSON.stringify({n: boxes.length, overlaps: out});
})()"""


def test_no_text_overlaps_another_in_any_svg_as_rendered(report: tuple[Path, ReportResult], tmp_path: Path) -> None:
    chromium_exe()
    d, _ = report
    svgs = sorted((d / "report" / "figures").glob("*.svg"))
    assert len(svgs) >= 8
    br = Chromium(tmp_path / "chromium", "about:blank")
    try:
        for svg in svgs:
            br.call("Page.navigate", url=svg.as_uri())
            br.wait_for("document.readyState === 'complete' && document.querySelectorAll('text').length", 30)
            got = json.loads(br.evaluate(OVERLAPS_JS))
            assert got["n"] >= 5 and got["overlaps"] == [], (svg.name, got["overlaps"])
    finally:
        br.close()
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


def test_top1_and_top5_are_told_apart_without_colour(report: tuple[Path, ReportResult]) -> None:
    _, result = report
    fig = plots.destruction_vs_eps.figure(result.summary, "destruction", limited={BAD})  # type: ignore[attr-defined]
    (legend,) = fig.legends
    styles = {}
    for ax in fig.axes:
        for c in ax.containers:
            line = c.lines[0]
            style = (line.get_marker(), line.get_linestyle(), line.get_markerfacecolor() == "none")
            assert styles.setdefault(c.get_label(), style) == style  # the same in every panel
    assert sorted(styles) == sorted(t.get_text() for t in legend.get_texts()) and len(styles) == 6
    assert len(set(styles.values())) == len(styles)  # every series has its own marker/line/fill: greyscale is enough
    for session in (GOOD, BAD, THIRD):
        (top1,) = [v for k, v in styles.items() if k.startswith(f"{session} top-1")]
        (top5,) = [v for k, v in styles.items() if k.startswith(f"{session} top-5")]
        assert top1[0] != top5[0] and top1[1] != top5[1], session  # marker and line style both differ


def test_counts_have_integer_ticks() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = plots._prob_hist.figure([0.91, 0.95], [0.3], "good observations (count)", "three observations")  # type: ignore[attr-defined]
    FigureCanvasAgg(fig).draw()
    (ax,) = fig.axes
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def _wide(n_rates: int = 18) -> Table:
    cols = ["session", "model", "attack", "eps"] + [f"rate_{i}" for i in range(n_rates)]
    rows = [
        {
            "session": GOOD,
            "model": "lite2",
            "attack": a,
            "eps": 8.0,
            **{c: Rate(0.5, 0.3, 0.7, 10, 20, 20, "wilson") for c in cols[4:]},
        }
        for a in ("fgsm", "bim")
    ]
    return Table("wide", "A wide table", cols, rows, rate_columns=cols[4:])


def test_a_wide_table_is_split_into_parts_that_repeat_its_keys_never_hiding_a_column() -> None:
    t = _wide()
    parts = column_parts(t, lambda c: _col_px(t, c), TABLE_ROOM_PX)
    assert len(parts) >= 2 and key_columns(t) == ["session", "model", "attack", "eps"]
    assert {c for p in parts for c in p} == set(t.columns)  # nothing hidden
    for p in parts:
        assert p[:4] == ["session", "model", "attack", "eps"]  # each part says which rows it holds
        assert sum(_col_px(t, c) for c in p) <= TABLE_ROOM_PX
    narrow = Table("narrow", "n", ["session", "rate_0"], t.rows, rate_columns=["rate_0"])
    assert column_parts(narrow, lambda c: _col_px(narrow, c), TABLE_ROOM_PX) == [["session", "rate_0"]]


def test_wide_tables_in_the_pdf_keep_every_column_at_its_width() -> None:
    from reportlab.lib.units import mm

    from analysis.pdf import MARGIN, PAGE, _styles, _table

    t = _wide()
    tables = [f for f in _table(t, _styles()) if isinstance(f, PdfTable)]
    assert len(tables) >= 2
    shown = set()
    for tbl in tables:
        widths = tbl._colWidths
        assert sum(widths) <= PAGE[0] - 2 * MARGIN + 0.01
        header = [p.text for p in tbl._cellvalues[0]]
        shown.update(header)
        assert all(w >= 21 * mm - 0.01 for w, h in zip(widths, header, strict=True) if h.startswith("rate"))
    assert shown == {t.label(c) for c in t.columns}


def test_the_report_page_wraps_cells_and_prints_every_column(report: tuple[Path, ReportResult]) -> None:
    d, result = report
    html = (d / "report" / "index.html").read_text(encoding="utf-8")
    assert "white-space:nowrap}" not in html.split("td.rate")[0]  # cells wrap; only a rate stays on its lines
    assert "@media print{.scroll{overflow:visible}}" in html
    t = result.headline
    parts = column_parts(t, lambda c: _col_px(t, c), TABLE_ROOM_PX)
    section = html.split(f'id="t-{t.name}"')[1].split("<h3")[0]
    assert section.count("<table>") == len(parts)
    for c in t.columns:
        assert f"<th>{t.label(c)}</th>" in section, c

"""The channel check, paired survival, honest intervals at the edges, the paper-shaped table and vector figures."""

from __future__ import annotations

import json
import shutil
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from analysis.cli import register
from analysis.gallery import gallery
from analysis.load import load_input
from analysis.report import ReportResult, make_report
from analysis.stats import bootstrap_weights, rate_from_counts, wilson, wilson_p
from analysis.synthetic import Odds, write_capture_db
from contracts.capturedb import create_db, encode_top5
from testkit.batch import write_batch


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ReportResult]:
    """36 items (fgsm, bim, ll at ε 2, 8, 16); a good session and a degraded one (small, oblique tiles, clean mostly
    wrong).
    """
    d = tmp_path_factory.mktemp("channel") / "batch"
    b = write_batch(d, n_items=36, attacks=("fgsm", "bim", "ll"), eps=(2.0, 8.0, 16.0), batch_id="bsynthetic-0001")
    write_capture_db(
        d / "captures" / "good.sqlite",
        b,
        "good",
        odds=Odds(clean_photo=0.95),
        tile_px=(250, 400),
        angle_deg=(0, 20),
        input_size=260,
        n_frames=30,
    )
    write_capture_db(
        d / "captures" / "bad.sqlite",
        b,
        "bad",
        odds=Odds(clean_photo=0.2, adv_photo=0.1),
        tile_px=(60, 110),
        angle_deg=(35, 60),
        input_size=260,
        n_frames=30,
        seed=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # matplotlib must not warn
        result = make_report(d)
    return d, result


def _rows(d: Path, table: str) -> list[dict[str, Any]]:
    return json.loads((d / "report" / f"{table}.json").read_text())["rows"]


# ---------------------------------------------------------------- channel check


def test_channel_check_fires_on_a_degraded_session_and_stays_quiet_on_a_good_one(
    two_sessions: tuple[Path, ReportResult],
) -> None:
    d, result = two_sessions
    bad, good = result.checks["bad"], result.checks["good"]
    assert bad.verdict == "camera-limited" and good.verdict == "ok"
    assert (
        bad.tile.photo.hi is not None and bad.tile.digital is not None and bad.tile.photo.hi < bad.tile.digital - 0.10
    )
    why = " ".join(bad.reasons)
    assert "px" in why and "260" in why and "off the sheet's normal" in why
    assert any("--frame-size" in a and "--model lite2" in a for a in bad.advice)
    assert any("frontal" in a for a in bad.advice)
    # marked wherever its figures appear: every table and the long summary carry the verdict
    for table in ("headline", "accuracy", "destruction", "destruction_eps", "channel", "sessions", "summary"):
        rows = _rows(d, table)
        assert {r["channel_check"] for r in rows if r["session"] == "bad"} == {"camera-limited"}, table
        assert {r["channel_check"] for r in rows if r["session"] == "good"} == {"ok"}, table
    meta = json.loads((d / "report" / "report.json").read_text())
    assert meta["channel_check"]["sessions"]["bad"]["verdict"] == "camera-limited"
    assert any("CAMERA-LIMITED" in n and "What to do" in n for n in meta["notes"])
    assert not any("CAMERA-LIMITED" in n for n in result.notes) and result.warnings  # the warning is not a mere note
    html = (d / "report" / "index.html").read_text(encoding="utf-8")
    assert 'class="warn"' in html and '<tr class="limited">' in html
    entries = gallery(load_input(d), {"bad"})
    assert {e.session for e in entries} == {"bad", "good"}
    assert all(
        "camera-limited" in e.verdict and not e.verdict.startswith(("survived", "destroyed"))
        for e in entries
        if e.session == "bad" and "digitally" not in e.verdict
    )


def test_report_cli_prints_the_warning_and_the_key_figures_last(
    two_sessions: tuple[Path, ReportResult], tmp_path: Path
) -> None:
    d = tmp_path / "batch"
    shutil.copytree(two_sessions[0], d, ignore=shutil.ignore_patterns("report"))
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    res = CliRunner().invoke(app, ["report", str(d), "--format", "csv"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert (
        "CAMERA-LIMITED" in out
        and "warning:" in out
        and "what to do:" in out
        and "Channel check, session good (lite2): passed" in out
    )
    tail = out[out.index("report written to") :]
    for words in ("clean photographed", "adversarial photographed", "paired survival", "destruction", "n="):
        assert words in tail, words
    assert "destruction (camera-limited: measures the camera)" in tail


# ---------------------------------------------------------------- paired survival by hand

LABELS = [0, 7, 14, 21]  # conftest's synthetic batch: item i has label 7 i


def _pred(cls: int, p: float = 0.8) -> tuple[list[int], list[float]]:
    ids = [cls, 900, 901, 902, 903]  # the true labels (< 30) never appear below the first place
    return ids, [p, 0.05, 0.04, 0.03, 0.02]


def test_paired_survival_matches_a_hand_count(tmp_path: Path) -> None:
    d = tmp_path / "batch"
    b = write_batch(d, n_items=4)
    ids = [it.id for it in b.items]
    con = create_db(d / "captures" / "hand.sqlite")
    con.execute("INSERT OR REPLACE INTO meta VALUES ('batch_id', ?)", (b.batch_id,))
    con.execute(
        "INSERT INTO sessions (id, batch_id, source, model, provider, started, config) VALUES ('hand', ?, 'photos', "
        "'lite2', 'CPU', 0, '{}')",
        (b.batch_id,),
    )
    W = 500  # some wrong class
    fooled = {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: True}  # C's adversarial PNG does not fool lite2
    for it, lab in zip(ids, LABELS, strict=True):
        con.execute("INSERT INTO digital VALUES ('hand', ?, 'clean', ?, ?)", (it, *encode_top5(*_pred(lab))))
        con.execute(
            "INSERT INTO digital VALUES ('hand', ?, 'adv', ?, ?)", (it, *encode_top5(*_pred(W if fooled[it] else lab)))
        )
    R = "right"
    obs = [  # (item index, role, frame, right or wrong, prob, good)
        (0, "clean", 0, R, 0.8, 1),
        (0, "adv", 0, W, 0.8, 1),  # A f0: pair counts, survives
        (0, "clean", 1, R, 0.8, 1),
        (0, "adv", 1, R, 0.8, 1),  # A f1: pair counts, destroyed
        (0, "clean", 2, W, 0.8, 1),
        (0, "adv", 2, W, 0.8, 1),  # A f2: clean wrong, not counted
        (1, "clean", 0, W, 0.8, 1),
        (1, "adv", 0, W, 0.8, 1),  # B: clean never right
        (1, "clean", 1, W, 0.8, 1),
        (1, "adv", 1, W, 0.8, 1),
        (1, "adv", 2, R, 0.8, 1),  # B f2: no clean tile in that frame
        (2, "clean", 0, R, 0.8, 1),
        (2, "adv", 0, W, 0.8, 1),  # C: not fooled digitally, never counted
        (3, "clean", 0, R, 0.8, 1),
        (3, "adv", 0, W, 0.6, 1),  # D f0: survives
        (3, "clean", 1, R, 0.8, 1),
        (3, "adv", 1, W, 0.9, 0),  # D f1: adversarial tile failed the gates
        (3, "clean", 2, R, 0.8, 1),
        (3, "adv", 2, R, 0.9, 1),  # D f2: destroyed
    ]
    for i, role, f, what, p, good in obs:
        cls = LABELS[i] if what == R else W
        top = _pred(cls, p)
        con.execute(
            "INSERT INTO observations (session_id, frame_idx, sheet_id, item_id, role, sharpness, tile_px, angle_deg, "
            "clipped, good, top1, top1_prob, top5_ids, top5_probs) VALUES ('hand', ?, 's0', ?, ?, 100, 300, 5, 0, ?, "
            "?, ?, ?, ?)",
            (f, ids[i], role, good, cls, p, *encode_top5(*top)),
        )
    for f in range(3):
        con.execute("INSERT INTO frames VALUES ('hand', ?, ?, 1, '[]')", (f, f / 10))
    con.commit()
    con.close()
    make_report(d, formats=("csv",))
    rows = _rows(d, "summary")
    for k in (1, 5):
        # per frame: A f0 survives, A f1 destroyed; D f0 survives, D f2 destroyed -> 2 of 4
        fr = next(
            r
            for r in rows
            if r["session"] == "hand" and r["view"] == "frame" and r["metric"] == "paired_survival" and r["topk"] == k
        )
        assert (fr["num"], fr["n"], fr["n_items"]) == (2, 4, 2)
        assert fr["ci_low"] < 0.5 < fr["ci_high"]
        # per tile: A votes clean right, adversarial wrong (2 of 3) -> survives; D votes adversarial 1:1, the right
        # class has the higher mean probability (0.9 vs 0.6) -> destroyed; B's clean vote is wrong; C is not fooled
        # digitally -> 1 of 2
        ti = next(
            r
            for r in rows
            if r["session"] == "hand" and r["view"] == "tile" and r["metric"] == "paired_survival" and r["topk"] == k
        )
        assert (ti["num"], ti["n"], ti["ci_method"]) == (1, 2, "wilson")
        assert (ti["ci_low"], ti["ci_high"]) == pytest.approx(wilson(1, 2))
    head = _rows(d, "headline")
    cap = next(r for r in head if r["session"] == "hand")
    assert (cap["paired_survival_tile"], cap["paired_survival_tile_n"]) == (0.5, 2)
    assert cap["clean_photo_tile"] == pytest.approx(3 / 4) and cap["transfer_source"] == "lite0"


# ---------------------------------------------------------------- intervals at the edges


def test_per_frame_intervals_at_0_and_n_are_not_degenerate() -> None:
    zeros = [(0, 5), (0, 3), (0, 8)]
    w = bootstrap_weights(3, 0, "edge", 500)
    r = rate_from_counts(zeros, w)
    floor = 16**2 / (5**2 + 3**2 + 8**2)  # Kish's effective size when an item's frames all agree
    assert r.value == 0.0 and r.lo == 0.0 and r.hi == pytest.approx(wilson_p(0.0, floor)[1])
    assert r.hi > wilson(0, 16)[1] > 0  # type: ignore[index]  # wider than 16 independent frames would give
    ones = rate_from_counts([(5, 5), (3, 3), (8, 8)], w)
    assert ones.value == 1.0 and ones.hi == 1.0 and ones.lo == pytest.approx(1 - r.hi)  # type: ignore[operator]
    for k, n in ((0, 7), (7, 7)):  # per tile: Wilson, never a point
        t = rate_from_counts([(1 if i < k else 0, 1) for i in range(n)])
        assert t.hi - t.lo > 0.2  # type: ignore[operator]


def test_no_interval_in_a_report_collapses_at_the_edges(two_sessions: tuple[Path, ReportResult]) -> None:
    d, _ = two_sessions
    edge = 0
    for r in _rows(d, "summary"):
        if r["n"] and r["ci_low"] is not None and r["value"] in (0.0, 1.0):
            edge += 1
            assert r["ci_high"] - r["ci_low"] > 0.05, r
    assert edge > 10


# ---------------------------------------------------------------- the paper-shaped table and the figures


def test_markdown_and_latex_tables_hold_the_figures(two_sessions: tuple[Path, ReportResult]) -> None:
    d, _ = two_sessions
    md = (d / "report" / "destruction-table.md").read_text(encoding="utf-8")
    tex = (d / "report" / "destruction-table.tex").read_text(encoding="utf-8")
    rows = _rows(d, "destruction_eps")
    cell = next(
        r
        for r in rows
        if r["session"] == "good" and r["attack"] == "fgsm" and r["case"] == "average" and r["topk"] == 1
    )
    v, lo, hi, n = cell["eps_16"], cell["eps_16_low"], cell["eps_16_high"], cell["eps_16_n"]
    assert f"{100 * v:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}] n={n}" in md
    assert f"{100 * v:.1f} {{\\scriptsize [{100 * lo:.1f}--{100 * hi:.1f}] $n{{=}}${n}}}" in tex
    assert md.count("| attack | case | top-k | ε = 2 | ε = 8 | ε = 16 |") == 2 and "| bim | prefiltered | top-5 |" in md
    assert "CAMERA-LIMITED session" in md and "\\begin{tabular}{lllrrr}" in tex and tex.count("\\begin{table}") == 2
    assert "\\toprule" in tex and "$\\epsilon=16$" in tex
    html = (d / "report" / "index.html").read_text(encoding="utf-8")
    assert "Destruction rate by attack and ε" in html and "ε = 16" in html


def test_every_figure_has_an_svg_and_a_pdf_that_parse(two_sessions: tuple[Path, ReportResult]) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    d, _ = two_sessions
    figs = d / "report" / "figures"
    svgs, pdfs = sorted(figs.glob("*.svg")), sorted(figs.glob("*.pdf"))
    assert {p.stem for p in svgs} == {p.stem for p in pdfs}
    assert {
        "channel-check",
        "destruction-average",
        "destruction-prefiltered",
        "paired-survival",
        "accuracy-good",
        "accuracy-bad",
    } <= {p.stem for p in svgs}
    for svg in svgs:
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg") and len(list(root.iter())) > 20, svg.name
        text = svg.read_text(encoding="utf-8")
        assert "Date" not in text.split("</metadata>")[0] or "<dc:date>" not in text  # reproducible bytes
    for pdf_path in pdfs:
        pdf = pdfium.PdfDocument(str(pdf_path))
        try:
            assert len(pdf) == 1
            img = np.asarray(pdf[0].render(scale=0.5).to_pil().convert("L"))
            assert img.min() < 100 and img.mean() > 180, pdf_path.name  # ink on white
        finally:
            pdf.close()
    html = (d / "report" / "index.html").read_text(encoding="utf-8")
    assert 'href="figures/destruction-average.svg"' in html and 'href="figures/channel-check.pdf"' in html
    meta = json.loads((d / "report" / "report.json").read_text())
    assert "figures/channel-check.svg" in meta["files"]


def test_axes_name_their_units_and_legends_stay_outside(two_sessions: tuple[Path, ReportResult]) -> None:
    d, _ = two_sessions
    figs = d / "report" / "figures"
    for name, words in (
        ("destruction-average", ("destruction rate (%)", "ε (0–255 pixel levels)")),
        ("channel-check", ("clean top-1 accuracy (%)",)),
        ("accuracy-bad", ("top-1 accuracy (%)",)),
        ("confidence-good", ("top-1 probability (0–1)", "(count)")),
    ):
        text = (figs / f"{name}.svg").read_text(encoding="utf-8")
        for w in words:
            assert w in text, (name, w)  # labels are <text>, not paths
    pdf = (figs / "destruction-average.pdf").read_bytes()
    assert b"/Type3" not in pdf and b"/FontFile2" in pdf  # embedded TrueType fonts, as publishers ask


def test_legends_never_cover_data(two_sessions: tuple[Path, ReportResult]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from analysis import plots

    _, result = two_sessions
    figs = [
        plots.destruction_vs_eps.figure(result.summary, "destruction", limited={"bad"}),  # type: ignore[attr-defined]
        plots.accuracy_bars.figure(result.summary, "bad", "lite2"),  # type: ignore[attr-defined]
        plots.channel_check.figure(list(result.checks.values()), 0.10),
    ]  # type: ignore[attr-defined]
    for fig in figs:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        assert fig.legends, "a figure without a legend"
        for leg in fig.legends:
            box = leg.get_window_extent(renderer)
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent(renderer)), (fig.get_suptitle(), ax.get_title())
        labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
        if fig is figs[0]:
            assert any("camera-limited" in t for t in labels) and any("good top-1" == t for t in labels)


def test_a_session_without_digital_predictions_gets_na_not_a_verdict(tmp_path: Path) -> None:
    d = tmp_path / "batch"
    b = write_batch(d, n_items=3)
    write_capture_db(d / "captures" / "dark.sqlite", b, "dark", n_frames=3, odds=Odds(good=0.0))
    r = make_report(d, formats=("csv",))
    assert r.checks["dark"].verdict == "n/a" and not r.warnings
    assert "n/a" in r.checks["dark"].sentence()

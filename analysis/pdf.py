"""``report/report.pdf``: the same content as the HTML page, laid out with reportlab.

Landscape A4. Text is set in DejaVu Sans (shipped with matplotlib) and embedded,
so ε, ≥ and en dashes print everywhere; without it, Helvetica is used.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from xml.sax.saxutils import escape

from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    Preformatted,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from analysis.content import Plot, ReportContent
from analysis.gallery import GalleryEntry
from analysis.stats import Rate
from analysis.table_parts import column_parts
from analysis.tables import CHECK_COLUMN, fmt_cell, pct
from analysis.tables import Table as ReportTable
from contracts.verdict import FLAGGED

log = logging.getLogger(__name__)

PAGE = landscape(A4)
MARGIN = 12 * mm
MAX_CONFIG_LINES = 80


def _fonts() -> tuple[str, str]:
    """Register DejaVu Sans from matplotlib's data folder; fall back to Helvetica."""
    if "DejaVuSans" in pdfmetrics.getRegisteredFontNames():
        return "DejaVuSans", "DejaVuSans-Bold"
    try:
        import matplotlib

        ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(ttf / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(ttf / "DejaVuSans-Bold.ttf")))
        return "DejaVuSans", "DejaVuSans-Bold"
    except Exception as e:  # a stripped matplotlib install
        log.warning("DejaVu Sans not found (%s); the PDF uses Helvetica", e)
        return "Helvetica", "Helvetica-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    regular, bold = _fonts()
    base = getSampleStyleSheet()
    return {
        "h1": ParagraphStyle("h1", parent=base["Title"], fontName=bold, fontSize=18, alignment=0),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, fontSize=13),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontName=bold, fontSize=10.5),
        "body": ParagraphStyle("body", parent=base["BodyText"], fontName=regular, fontSize=8.5, leading=11),
        "small": ParagraphStyle("small", parent=base["BodyText"], fontName=regular, fontSize=6.5, leading=8),
        "warn": ParagraphStyle(
            "warn",
            parent=base["BodyText"],
            fontName=regular,
            fontSize=8.5,
            leading=11,
            backColor=colors.HexColor("#fdecea"),
            borderPadding=3,
        ),
        "note": ParagraphStyle(
            "note",
            parent=base["BodyText"],
            fontName=regular,
            fontSize=8.5,
            leading=11,
            backColor=colors.HexColor("#fff4d6"),
            borderPadding=3,
        ),
        "mono": ParagraphStyle("mono", parent=base["Code"], fontName="Courier", fontSize=6, leading=7),
    }


def _image(png: bytes, max_w: float, max_h: float) -> Image:
    with PILImage.open(io.BytesIO(png)) as im:
        w, h = im.size
    scale = min(max_w / w, max_h / h)
    return Image(io.BytesIO(png), width=w * scale, height=h * scale)


def _cell(v: object, st: dict[str, ParagraphStyle], rate: bool = False) -> Paragraph:
    if isinstance(v, Rate) or rate:
        if not isinstance(v, Rate) or v.value is None:
            text = "n/a (n=0)"
        else:
            ci = "" if v.lo is None or v.hi is None else f"<br/>[{100 * v.lo:.1f}–{100 * v.hi:.1f}]"
            text = f"{pct(v.value)} n={v.n}{ci}"
        return Paragraph(text, st["small"])
    return Paragraph(escape(fmt_cell(v)), st["small"])


def _col_width(t: ReportTable, c: str) -> float:
    """Rate columns 21 mm; other columns sized to their longest text (6.5 pt type), up to 45 mm (then wrapped)."""
    if c in t.rate_columns:
        return 21 * mm
    longest = max([len(fmt_cell(r.get(c))) for r in t.rows] + [min(len(c), 12)])
    return float(min(45 * mm, max(8 * mm, longest * 1.3 * mm + 3 * mm)))


def _widths(t: ReportTable, columns: list[str]) -> list[float]:
    """The widths of ``columns``, shrunk to the page only when a part holds one oversized column."""
    out = [_col_width(t, c) for c in columns]
    room = PAGE[0] - 2 * MARGIN
    total = sum(out)
    return out if total <= room else [w * room / total for w in out]


def _table(t: ReportTable, st: dict[str, ParagraphStyle], max_rows: int = 400) -> list:
    """The table's title, note and rows; a table wider than the page is split into parts that each repeat
    the key columns (every column printed at its own width, none squeezed out of sight)."""
    out: list = [Paragraph(escape(t.title), st["h3"])]
    if t.note:
        out.append(Paragraph(escape(t.note), st["small"]))
    if not t.rows:
        return out + [Paragraph("no rows", st["body"])]
    parts = column_parts(t, lambda c: _col_width(t, c), PAGE[0] - 2 * MARGIN)
    for i, cols in enumerate(parts):
        if len(parts) > 1:
            out.append(Paragraph(f"part {i + 1} of {len(parts)} (the first columns repeat in each part)", st["small"]))
        out.append(_table_part(t, cols, st, max_rows))
    if len(t.rows) > max_rows:
        out.append(Paragraph(f"{len(t.rows) - max_rows} more rows in {t.name}.csv / {t.name}.json", st["small"]))
    return out + [Spacer(1, 4 * mm)]


def _table_part(t: ReportTable, columns: list[str], st: dict[str, ParagraphStyle], max_rows: int) -> Table:
    data = [[Paragraph(escape(t.label(c)), st["small"]) for c in columns]]
    data += [[_cell(r.get(c), st, c in t.rate_columns) for c in columns] for r in t.rows[:max_rows]]
    tbl = Table(data, colWidths=_widths(t, columns), repeatRows=1, hAlign="LEFT")
    flagged = [i + 1 for i, r in enumerate(t.rows[:max_rows]) if r.get(CHECK_COLUMN) in FLAGGED]
    tbl.setStyle(
        TableStyle(
            [
                *[("BACKGROUND", (0, i), (-1, i), colors.HexColor("#fdecea")) for i in flagged],
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return tbl


def _plot(p: Plot, st: dict[str, ParagraphStyle]) -> list:
    w = PAGE[0] - 2 * MARGIN
    vec = f" (vector: figures/{p.name}.svg, .pdf)" if p.name and p.svg is not None else ""
    return [
        KeepTogether(
            [
                _image(p.png, w, 120 * mm),
                Paragraph(escape(p.title + (": " + p.caption if p.caption else "") + vec), st["small"]),
            ]
        ),
        Spacer(1, 3 * mm),
    ]


def _top3(rows: list[tuple[str, float]]) -> str:
    return "<br/>".join(f"{i + 1}. {escape(n)} {100 * p:.1f}%" for i, (n, p) in enumerate(rows))


def _entry(e: GalleryEntry, st: dict[str, ParagraphStyle]) -> list:
    where = f"session {e.session}, model {e.model}" if e.session else f"source model {e.model}"
    head = Paragraph(
        f"<b>{escape(e.item_id)}</b> · true class {escape(e.label)} · {escape(where)} · <i>{escape(e.verdict)}</i>",
        st["body"],
    )
    cols = [
        [_image(s.png, 32 * mm, 32 * mm), Paragraph(escape(s.caption) + "<br/>" + _top3(s.top3), st["small"])]
        for s in e.shots
    ]
    if e.photo_top3 and not any("crop" in s.caption for s in e.shots):
        cols.append(
            [
                Paragraph(
                    f"photographed, voted over {e.n_good} good observations (no crop stored)<br/>"
                    + _top3(e.photo_top3),
                    st["small"],
                )
            ]
        )
    if not cols:
        return [head]
    tbl = Table([cols], colWidths=[45 * mm] * len(cols), hAlign="LEFT")
    tbl.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [KeepTogether([head, tbl]), Spacer(1, 3 * mm)]


def render_pdf(c: ReportContent) -> bytes:
    """The whole PDF as bytes."""
    st = _styles()
    story: list = [
        Paragraph(escape(c.title), st["h1"]),
        Paragraph(
            f"batch {escape(c.batch_id)} · generated {escape(c.generated)} · measures of Kurakin, Goodfellow &amp; "
            "Bengio 2016 (arXiv:1607.02533)",
            st["body"],
        ),
        Spacer(1, 3 * mm),
    ]
    for n in c.warnings:
        story += [Paragraph(escape(n), st["warn"]), Spacer(1, 2 * mm)]
    story += [Paragraph(escape(n), st["note"]) for n in c.notes]
    story += [Spacer(1, 3 * mm), Paragraph("Summary", st["h2"])]
    for t in c.tables:
        story += _table(t, st)
        if t.name == "scene" and c.scene_plot is not None:
            story += _plot(c.scene_plot, st)
    if c.destruction_eps is not None:
        story += [Paragraph("Destruction rate by attack and ε", st["h2"])] + _table(c.destruction_eps, st)
        story.append(Paragraph("Also in destruction-table.md and destruction-table.tex.", st["small"]))
    story += [PageBreak(), Paragraph("Figures", st["h2"])]
    for p in c.plots:
        story += _plot(p, st)
    story += [PageBreak(), Paragraph("Gallery", st["h2"])]
    for e in c.gallery:
        story += _entry(e, st)
    if c.sweep_table is not None:
        story += [PageBreak(), Paragraph("Transformation sweep", st["h2"])]
        if c.sweep_plot is not None:
            story += _plot(c.sweep_plot, st)
        story += _table(c.sweep_table, st)
    story += [PageBreak(), Paragraph("Methods", st["h2"])]
    for s in c.methods:
        story.append(Paragraph(escape(s.title), st["h3"]))
        if s.rows:
            tbl = Table(
                [[Paragraph(escape(k), st["small"]), Paragraph(escape(v), st["small"])] for k, v in s.rows],
                colWidths=[60 * mm, PAGE[0] - 2 * MARGIN - 62 * mm],
                hAlign="LEFT",
            )
            tbl.setStyle(
                TableStyle(
                    [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LINEBELOW", (0, 0), (-1, -1), 0.2, colors.lightgrey)]
                )
            )
            story.append(tbl)
        for text in s.text:
            if text.startswith("{"):
                lines = text.splitlines()
                cut = lines[:MAX_CONFIG_LINES] + (
                    [f"... {len(lines) - MAX_CONFIG_LINES} more lines in report.json"]
                    if len(lines) > MAX_CONFIG_LINES
                    else []
                )
                story.append(Preformatted("\n".join(cut), st["mono"]))
            else:
                story.append(Paragraph(escape(text), st["body"]))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=c.title,
        author="Photoproof",
        subject=f"batch {c.batch_id}",
        invariant=1,
    )
    doc.build(story)
    return buf.getvalue()

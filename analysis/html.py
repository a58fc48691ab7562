"""``report/index.html``: one self-contained page.

Inline CSS, images as base64 ``data:`` URIs, no script, no font, no request of
any kind: a Content-Security-Policy meta tag forbids everything but inline
styles and ``data:`` images, so the page reads the same offline, years later.
"""

from __future__ import annotations

import base64
from html import escape

from analysis.content import Plot, ReportContent
from analysis.gallery import GalleryEntry
from analysis.methods import Section
from analysis.stats import Rate
from analysis.table_parts import column_parts, text_width
from analysis.tables import CHECK_COLUMN, Table, fmt_cell, pct
from contracts.verdict import FLAGGED

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1b1b1b;
  background:#fafafa;line-height:1.4}
main{max-width:1200px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0}
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-bottom:.3rem}
.meta{color:#555;font-size:.9rem}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:.5rem .8rem;margin:.4rem 0}
.warn{background:#fdecea;border-left:4px solid #c62828;padding:.5rem .8rem;margin:.4rem 0}
tr.limited td{background:#fdecea}td.limited{color:#b71c1c;font-weight:600}
.scroll{overflow-x:auto}.part{font-size:.75rem;color:#555;margin:.6rem 0 0}
table{border-collapse:collapse;font-size:.8rem;margin:.4rem 0;background:#fff}
th,td{border:1px solid #ddd;padding:.2rem .45rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{background:#f0f0f0;white-space:normal;min-width:2.5rem}
td.rate{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
@media print{.scroll{overflow:visible}}td.rate small{color:#666}
td.na{color:#999}
.tnote{font-size:.8rem;color:#555;margin:.2rem 0 .8rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee;background:#fff}
figcaption{font-size:.8rem;color:#555}
.entry{background:#fff;border:1px solid #ddd;border-radius:4px;padding:.6rem;margin:.8rem 0}
.shots{display:flex;flex-wrap:wrap;gap:.8rem}
.shot{width:160px;font-size:.75rem}
.shot img{width:144px;height:auto;image-rendering:pixelated;border:1px solid #ccc}
.shot ol{margin:.2rem 0;padding-left:1.2rem}
dl{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem;font-size:.85rem}
dt{font-weight:600}dd{margin:0;word-break:break-all}
pre{font-size:.75rem;background:#fff;border:1px solid #ddd;padding:.5rem;overflow-x:auto}
"""


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _rate_cell(r: Rate | None) -> str:
    """``62.5% n=21`` over ``[41.0–80.2]``; ``n/a`` for an empty cell."""
    if r is None or r.value is None:
        return '<td class="rate na">n/a</td>'
    ci = (
        "<br><small>[no interval: 1 item]</small>"
        if r.lo is None or r.hi is None
        else f"<br><small>[{100 * r.lo:.1f}–{100 * r.hi:.1f}]</small>"
    )
    return f'<td class="rate">{pct(r.value)} <small>n={r.n}</small>{ci}</td>'


# A table wider than this (px, at the table's type size) is split into parts that each repeat the row's
# key columns: every column is read on the page and in print, none hidden behind a scroll bar.
TABLE_ROOM_PX = 1000


def _col_px(t: Table, c: str) -> float:
    return 7.0 * text_width(t, c) + 15.0


def _table(t: Table, files: set[str]) -> str:
    parts = column_parts(t, lambda c: _col_px(t, c), TABLE_ROOM_PX)
    links = " · ".join(
        f'<a href="{escape(f)}">{escape(f)}</a>' for f in (f"{t.name}.csv", f"{t.name}.json") if f in files
    )
    out = [
        f'<h3 id="t-{escape(t.name)}">{escape(t.title)}</h3>'
        f'<p class="tnote">{escape(t.note)}{f" ({links})" if links else ""}</p>'
    ]
    for i, cols in enumerate(parts):
        if len(parts) > 1:
            out.append(f'<p class="part">part {i + 1} of {len(parts)} (the first columns repeat in each part)</p>')
        out.append(_table_part(t, cols))
    return "".join(out)


def _table_part(t: Table, columns: list[str]) -> str:
    head = "".join(f"<th>{escape(t.label(c))}</th>" for c in columns)
    body = []
    for r in t.rows:
        cells = []
        flagged = r.get(CHECK_COLUMN) in FLAGGED
        for c in columns:
            v = r.get(c)
            if c in t.rate_columns:
                cells.append(_rate_cell(v if isinstance(v, Rate) else None))
                continue
            text = fmt_cell(v)
            if c == CHECK_COLUMN and flagged:
                cells.append(f'<td class="limited">{escape(text)}</td>')
                continue
            cells.append('<td class="na">—</td>' if text == "—" else f"<td>{escape(text)}</td>")
        body.append(('<tr class="limited">' if flagged else "<tr>") + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{max(1, len(columns))}" class="na">no rows</td></tr>')
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _plot(p: Plot, files: set[str] | None = None) -> str:
    vec = [f"figures/{p.name}.{ext}" for ext in ("svg", "pdf")] if p.name else []
    links = " · ".join(
        f'<a href="{escape(f)}">{escape(f.rsplit(".", 1)[1].upper())}</a>' for f in vec if files is None or f in files
    )
    caption = escape(p.title) + (": " + escape(p.caption) if p.caption else "") + (f" ({links})" if links else "")
    return f'<figure><img src="{data_uri(p.png)}" alt="{escape(p.title)}"><figcaption>{caption}</figcaption></figure>'


def _top3(rows: list[tuple[str, float]]) -> str:
    if not rows:
        return ""
    return "<ol>" + "".join(f"<li>{escape(n)} {100 * p:.1f}%</li>" for n, p in rows) + "</ol>"


def _entry(e: GalleryEntry) -> str:
    shots = "".join(
        f'<div class="shot"><img src="{data_uri(s.png)}" '
        f'alt="{escape(s.caption)}"><div>{escape(s.caption)}</div>{_top3(s.top3)}</div>'
        for s in e.shots
    )
    if e.photo_top3 and not any("crop" in s.caption for s in e.shots):
        shots += (
            f'<div class="shot"><div>photographed, voted over {e.n_good} good observations (no crop '
            f"stored)</div>{_top3(e.photo_top3)}</div>"
        )
    where = f"session {e.session}, model {e.model}" if e.session else f"source model {e.model}"
    return (
        f'<div class="entry"><b>{escape(e.item_id)}</b> · true class {escape(e.label)} · {escape(where)} · '
        f'<i>{escape(e.verdict)}</i><div class="shots">{shots}</div></div>'
    )


def _section(s: Section) -> str:
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in s.rows)
    text = "".join(f"<pre>{escape(t)}</pre>" if t.startswith("{") else f"<p>{escape(t)}</p>" for t in s.text)
    return f"<h3>{escape(s.title)}</h3>" + (f"<dl>{rows}</dl>" if rows else "") + text


def render_html(c: ReportContent) -> str:
    """The whole page as a string."""
    notes = "".join(f'<div class="warn">{escape(n)}</div>' for n in c.warnings)
    notes += "".join(f'<div class="note">{escape(n)}</div>' for n in c.notes)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(c.title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(c.title)}</h1>",
        f'<p class="meta">batch {escape(c.batch_id)} · generated {escape(c.generated)} · measures of Kurakin, '
        'Goodfellow &amp; Bengio 2016, "Adversarial examples in the physical world" (arXiv:1607.02533)</p>',
        notes,
        "<h2>Summary</h2>",
        "".join(
            _table(t, set(c.files)) + (_plot(c.scene_plot, set(c.files)) if t.name == "scene" and c.scene_plot else "")
            for t in c.tables
        ),
    ]
    if c.destruction_eps is not None:
        md = " · ".join(
            f'<a href="{f}">{f}</a>' for f in ("destruction-table.md", "destruction-table.tex") if f in c.files
        )
        parts += [
            "<h2>Destruction rate by attack and ε</h2>",
            _table(c.destruction_eps, set(c.files)),
            f'<p class="tnote">Also as Markdown and LaTeX: {md}</p>' if md else "",
        ]
    parts += [
        "<h2>Figures</h2>",
        "".join(_plot(p, set(c.files)) for p in c.plots) or "<p>No figure: no data.</p>",
        "<h2>Gallery</h2>",
        "".join(_entry(e) for e in c.gallery) or "<p>No example to show.</p>",
    ]
    if c.sweep_table is not None:
        parts += [
            "<h2>Transformation sweep</h2>",
            _plot(c.sweep_plot, set(c.files)) if c.sweep_plot else "",
            _table(c.sweep_table, set(c.files)),
        ]
    parts += ["<h2>Methods</h2>", "".join(_section(s) for s in c.methods)]
    if c.files:
        parts.append(
            "<h2>Files</h2><p>" + " · ".join(f'<a href="{escape(f)}">{escape(f)}</a>' for f in c.files) + "</p>"
        )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)

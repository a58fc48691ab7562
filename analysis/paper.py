"""The destruction rate as an attack × ε table, in the shape of Kurakin et al. 2016 (tables 1-3).

Kurakin, Goodfellow & Bengio, "Adversarial examples in the physical world"
(https://arxiv.org/abs/1607.02533) report the destruction rate of each attack
and ε, in the average and the prefiltered case, at top-1 and top-5. Here: one
block per capture session, rows attack × case × top-k, columns ε, each cell the
per-tile destruction rate with its 95% interval and n. The same table goes into
the page and the PDF (as a :class:`~analysis.tables.Table`) and into
``report/destruction-table.md`` and ``report/destruction-table.tex``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.stats import Rate
from analysis.summary import SummaryRow
from analysis.tables import CHECK_COLUMN, NA, Table
from contracts.paths import atomic_write_text
from contracts.verdict import FLAGGED

CASES = (("average", "destruction"), ("prefiltered", "destruction_prefiltered"))
VIEW = "tile"
MD_FILE = "destruction-table.md"
TEX_FILE = "destruction-table.tex"
LIMITED_CAPTION = (
    "CAMERA-LIMITED session: these rates measure the camera, not the perturbation (see the channel check)."
)


def eps_column(eps: float) -> str:
    return f"eps_{eps:g}"


def paper_table(rows: list[SummaryRow]) -> Table:
    """Per session: rows attack × case × top-k, columns ε; cells per-tile destruction rates."""
    sel = [r for r in rows if r.view == VIEW and r.metric in dict((m, c) for c, m in CASES) and r.source_model is None]
    eps = sorted({r.eps for r in sel})
    cols = [eps_column(e) for e in eps]
    wide: dict[tuple[Any, ...], dict[str, Any]] = {}
    case_of = {m: c for c, m in CASES}
    order = {c: i for i, (c, _) in enumerate(CASES)}
    for r in sel:
        key = (r.session, r.model, r.attack, case_of[r.metric], r.topk)
        row = wide.setdefault(
            key,
            {
                "session": r.session,
                "model": r.model,
                CHECK_COLUMN: r.channel_check,
                "attack": r.attack,
                "case": case_of[r.metric],
                "topk": r.topk,
                **{c: None for c in cols},
            },
        )
        row[eps_column(r.eps)] = r.rate
    out = sorted(wide.values(), key=lambda d: (d["session"] or "", d["attack"], order[d["case"]], d["topk"]))
    t = Table(
        "destruction_eps",
        "Destruction rate by attack and ε (per tile; Kurakin et al. 2016, tables 1-3 layout)",
        ["session", "model", CHECK_COLUMN, "attack", "case", "topk", *cols],
        out,
        cols,
        "Destruction rate: of the items whose adversarial PNG fools the session's model digitally, the share it "
        "classifies correctly once printed and photographed (majority vote per tile). Average case: all items; "
        "prefiltered: clean right with confidence >= 0.8 and adversarial wrong at top-1 and top-5. 95% Wilson "
        "intervals and n. Rows of a camera-limited or inconclusive session measure the camera, not the perturbation.",
    )
    t.labels = {c: f"ε = {e:g}" for c, e in zip(cols, eps, strict=True)}
    return t


def _cell_text(r: Rate | None, pct: str = "%", dash: str = "–") -> tuple[str, str]:
    """(value, "[lo–hi] n=N") or ("n/a", "n=0")."""
    if not isinstance(r, Rate) or r.value is None:
        return NA, "(n=0)"
    ci = "" if r.lo is None or r.hi is None else f"[{100 * r.lo:.1f}{dash}{100 * r.hi:.1f}] "
    return f"{100 * r.value:.1f}{pct}", f"{ci}n={r.n}"


def _blocks(t: Table) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for row in t.rows:
        if not blocks or blocks[-1][0]["session"] != row["session"]:
            blocks.append((row, []))
        blocks[-1][1].append(row)
    return blocks


def _caption(head: dict[str, Any]) -> str:
    check = head.get(CHECK_COLUMN) or "n/a"
    text = f"Session {head['session']} ({head['model']}), channel check: {check}."
    if check in FLAGGED:
        text += " " + LIMITED_CAPTION
    return text


def to_markdown(t: Table) -> str:
    """GitHub-flavoured Markdown: one table per session."""
    eps_cols = t.rate_columns
    out = [f"# {t.title}", "", t.note, ""]
    if not t.rows:
        out.append("No photographed destruction rate: no capture session.")
    for head, rows in _blocks(t):
        out += [
            f"## {_caption(head)}",
            "",
            "| attack | case | top-k | " + " | ".join(t.labels.get(c, c) for c in eps_cols) + " |",
            "|---|---|---|" + "---:|" * len(eps_cols),
        ]
        for r in rows:
            cells = [" ".join(_cell_text(r.get(c))) for c in eps_cols]
            out.append(f"| {_md(r['attack'])} | {r['case']} | top-{r['topk']} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out) + "\n"


def _md(s: Any) -> str:
    return str(s).replace("|", "\\|")


TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def tex_escape(s: Any) -> str:
    return "".join(TEX_SPECIAL.get(ch, ch) for ch in str(s))


def to_latex(t: Table) -> str:
    """A LaTeX ``table`` per session (needs ``\\usepackage{booktabs}``)."""
    eps_cols = t.rate_columns
    out = [f"% {t.title}", "% Generated by photoproof report; needs \\usepackage{booktabs}.", f"% {t.note}"]
    for head, rows in _blocks(t):
        out += [
            "\\begin{table}[ht]",
            "\\centering",
            "\\small",
            f"\\caption{{Destruction rate per tile (\\%, 95\\% interval, $n$). {tex_escape(_caption(head))}}}",
            "\\begin{tabular}{lll" + "r" * len(eps_cols) + "}",
            "\\toprule",
            "Attack & Case & Top-$k$ & "
            + " & ".join(f"$\\epsilon={tex_escape(t.labels.get(c, c).split('= ')[-1])}$" for c in eps_cols)
            + " \\\\",
            "\\midrule",
        ]
        for r in rows:
            cells = []
            for c in eps_cols:
                value, rest = _cell_text(r.get(c), pct="", dash="--")
                cells.append(f"{tex_escape(value)} {{\\scriptsize {tex_escape(rest).replace('n=', '$n{=}$')}}}")
            out.append(f"{tex_escape(r['attack'])} & {r['case']} & {r['topk']} & " + " & ".join(cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out) + "\n"


def write_paper_tables(out_dir: Path, t: Table) -> list[Path]:
    """Write ``destruction-table.md`` and ``destruction-table.tex`` atomically."""
    md, tex = out_dir / MD_FILE, out_dir / TEX_FILE
    atomic_write_text(md, to_markdown(t))
    atomic_write_text(tex, to_latex(t))
    return [md, tex]

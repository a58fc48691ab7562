"""The report's tables: built from the long summary, exported as CSV and JSON.

A :class:`Table` holds plain values and :class:`~analysis.stats.Rate` cells.
Exports flatten a rate column ``x`` into ``x``, ``x_low``, ``x_high`` and ``x_n``;
the HTML and PDF show it as ``62.5% [41.0–80.2] n=21``.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.load import ReportInput
from analysis.stats import Rate
from analysis.summary import SUMMARY_COLUMNS, SummaryRow
from contracts.paths import atomic_write_json, atomic_write_text

NA = "n/a"

# (column, view, metric) of the two wide tables.
ACCURACY_COLUMNS = (
    ("clean_digital", "digital", "clean_acc"),
    ("clean_photo_tile", "tile", "clean_acc"),
    ("clean_photo_frame", "frame", "clean_acc"),
    ("adv_digital", "digital", "adv_acc"),
    ("adv_photo_tile", "tile", "adv_acc"),
    ("adv_photo_frame", "frame", "adv_acc"),
)
ATTACK_COLUMNS = (
    ("success_digital", "digital", "attack_success"),
    ("success_photo_tile", "tile", "attack_success"),
    ("success_photo_frame", "frame", "attack_success"),
    ("destruction_tile", "tile", "destruction"),
    ("destruction_frame", "frame", "destruction"),
    ("destruction_prefiltered_tile", "tile", "destruction_prefiltered"),
    ("destruction_prefiltered_frame", "frame", "destruction_prefiltered"),
    ("paired_survival_tile", "tile", "paired_survival"),
    ("paired_survival_frame", "frame", "paired_survival"),
)
KEY_COLUMNS = ("session", "model", "model_kind", "attack", "eps", "topk")
CHECK_COLUMN = (
    "channel_check"  # the session's channel-check verdict (analysis.channel): ok, camera-limited, inconclusive, n/a
)


@dataclass
class Table:
    """A named table: ``name`` is the file stem of its CSV and JSON exports."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    rate_columns: list[str] = field(default_factory=list)
    note: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # column -> header shown in the page and the PDF

    def label(self, column: str) -> str:
        return self.labels.get(column, column.replace("_", " "))

    def flat_columns(self) -> list[str]:
        out: list[str] = []
        for c in self.columns:
            out += [c, f"{c}_low", f"{c}_high", f"{c}_n"] if c in self.rate_columns else [c]
        return out

    def flat_rows(self) -> list[dict[str, Any]]:
        out = []
        for r in self.rows:
            d: dict[str, Any] = {}
            for c in self.columns:
                v = r.get(c)
                if c in self.rate_columns:
                    rate = v if isinstance(v, Rate) else Rate.empty()
                    d.update({c: rate.value, f"{c}_low": rate.lo, f"{c}_high": rate.hi, f"{c}_n": rate.n})
                else:
                    d[c] = v
            out.append(d)
        return out


def pct(v: float | None, digits: int = 1) -> str:
    """``0.625`` -> ``62.5%``; ``None`` -> ``n/a``."""
    return NA if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.{digits}f}%"


def fmt_rate(r: Rate | None) -> str:
    """``62.5% [41.0–80.2] n=21``, or ``n/a (n=0)`` for an empty cell."""
    if r is None or r.value is None:
        return f"{NA} (n=0)"
    ci = "" if r.lo is None or r.hi is None else f" [{100 * r.lo:.1f}–{100 * r.hi:.1f}]"
    return f"{pct(r.value)}{ci} n={r.n}"


def fmt_cell(v: Any) -> str:
    """Text for a plain table cell."""
    if isinstance(v, Rate):
        return fmt_rate(v)
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    s = str(v)
    if len(s) == 64 and all(ch in "0123456789abcdef" for ch in s):
        return s[:12] + "…"  # a sha256: the full value is in the CSV and JSON
    return s


def summary_table(rows: list[SummaryRow]) -> Table:
    """The long table of every figure (``summary.csv``/``summary.json``)."""
    return Table("summary", "Every figure, long format", list(SUMMARY_COLUMNS), [r.to_dict() for r in rows])


def _pivot(rows: list[SummaryRow], spec: tuple[tuple[str, str, str], ...], name: str, title: str, note: str) -> Table:
    wide: dict[tuple[Any, ...], dict[str, Any]] = {}
    want = {(view, metric): col for col, view, metric in spec}
    for r in rows:
        col = want.get((r.view, r.metric))
        if col is None or r.source_model is not None:
            continue
        key = (r.session, r.model, r.model_kind, r.attack, r.eps, r.topk)
        row = wide.setdefault(key, {**dict(zip(KEY_COLUMNS, key, strict=True)), CHECK_COLUMN: r.channel_check})
        row[col] = r.rate
    cols = [c for c, _, _ in spec]
    for row in wide.values():
        for c in cols:
            row.setdefault(c, None)
    return Table(name, title, [*KEY_COLUMNS, CHECK_COLUMN, *cols], list(wide.values()), cols, note)


def accuracy_table(rows: list[SummaryRow]) -> Table:
    return _pivot(
        rows,
        ACCURACY_COLUMNS,
        "accuracy",
        "Accuracy, digital and photographed",
        "Accuracy = share of images whose true class is in the model's top-k. Photographed columns count good "
        "observations only.",
    )


def attack_table(rows: list[SummaryRow]) -> Table:
    return _pivot(
        rows,
        ATTACK_COLUMNS,
        "destruction",
        "Attack success, destruction rate and paired survival",
        "Attack success among items the model gets right when clean. Destruction rate (Kurakin et al. 2016): of the "
        "items whose adversarial image fools the model digitally, the share it classifies correctly once printed and "
        "photographed. Paired survival: of the photographed pairs whose clean tile the model recognises (per frame: "
        "in the same frame) and whose adversarial PNG fools it digitally, the share whose photographed adversarial "
        "tile still fools it. A camera-limited session's figures measure the camera, not the perturbation.",
    )


HEADLINE_COLUMNS = (
    ("clean_digital", "digital", "clean_acc"),
    ("clean_photo_tile", "tile", "clean_acc"),
    ("adv_digital", "digital", "adv_acc"),
    ("adv_photo_tile", "tile", "adv_acc"),
    ("paired_survival_tile", "tile", "paired_survival"),
    ("destruction_tile", "tile", "destruction"),
    ("destruction_prefiltered_tile", "tile", "destruction_prefiltered"),
)


def headline_table(rows: list[SummaryRow], source_models: list[str] | None = None) -> Table:
    """Top-1, per tile: the few figures a reader looks at first.

    Clean photographed accuracy stands beside adversarial photographed accuracy;
    for a black-box session (its model is not a source model) the digital
    transfer rate from the first source model stands there too.
    """
    t = _pivot(
        [r for r in rows if r.topk == 1],
        HEADLINE_COLUMNS,
        "headline",
        "Key figures (top-1, per tile)",
        "Clean and adversarial accuracy, digital and once photographed; for a black-box target the digital transfer "
        "rate from the source model; paired survival and the destruction rate (average and prefiltered case); 95% "
        "intervals and n. channel check: camera-limited or inconclusive rows measure the camera, not the perturbation "
        "(see the channel check table).",
    )
    t.columns.remove("topk")
    sources = list(source_models or [])
    transfer = {
        (r.session, r.source_model, r.attack, r.eps): r.rate for r in rows if r.metric == "transfer" and r.topk == 1
    }
    for row in t.rows:
        src = (
            next((m for m in sources if m != row["model"]), None)
            if row["model_kind"] == "capture" and row["model"] not in sources
            else None
        )
        row["transfer_source"] = src
        row["transfer"] = transfer.get((row["session"], src, row["attack"], row["eps"])) if src else None
    at = t.columns.index("adv_photo_tile") + 1
    t.columns[at:at] = ["transfer_source", "transfer"]
    t.rate_columns.append("transfer")
    return t


def transfer_table(rows: list[SummaryRow]) -> Table:
    out = []
    for r in rows:
        if r.metric == "transfer":
            out.append(
                {
                    "source_model": r.source_model,
                    "session": r.session,
                    "model": r.model,
                    "attack": r.attack,
                    "eps": r.eps,
                    "topk": r.topk,
                    "transfer": r.rate,
                }
            )
    return Table(
        "transfer",
        "Digital transfer from source to target model",
        ["source_model", "session", "model", "attack", "eps", "topk", "transfer"],
        out,
        ["transfer"],
        "Of the items whose adversarial image fools the source model, the share that also fools the target model on "
        "the saved PNG.",
    )


def sessions_table(inp: ReportInput, checks: dict[str, str] | None = None) -> Table:
    rows = []
    for s in inp.sessions:
        rows.append(
            {
                "session": s.id,
                CHECK_COLUMN: (checks or {}).get(s.id),
                "file": s.path.name,
                "source": s.source,
                "model": s.model,
                "model_sha256": s.model_sha256,
                "provider": s.provider,
                "profile": s.profile,
                "seed": s.seed,
                "duration_s": None if s.duration_s is None else round(s.duration_s, 1),
                "frames": s.n_frames,
                "observations": s.n_obs,
                "good": s.n_good,
                "tiles": len({(o.item_id, o.role) for o in s.observations}),
            }
        )
    cols = [
        "session",
        CHECK_COLUMN,
        "file",
        "source",
        "model",
        "model_sha256",
        "provider",
        "profile",
        "seed",
        "duration_s",
        "frames",
        "observations",
        "good",
        "tiles",
    ]
    return Table(
        "sessions",
        "Capture sessions",
        cols,
        rows,
        [],
        "Only good observations (passed the quality gates) enter any figure.",
    )


def plain_table(name: str, title: str, rows: list[dict[str, Any]], note: str = "") -> Table:
    cols = list(rows[0]) if rows else []
    return Table(name, title, cols, rows, [], note)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(v: Any) -> Any:
    """A cell that a spreadsheet shows as text, never runs as a formula (OWASP "CSV injection").

    Text from outside (model names from ONNX metadata, session sources, item ids)
    that starts with ``= + - @``, a tab or a carriage return gets a leading ``'``;
    numbers, and text that is a plain number such as ``-0.5``, pass unchanged. A
    carriage return inside text becomes a newline, which the writer quotes (it
    would leave a lone CR bare, and readers would split the row there).
    """
    if not isinstance(v, str):
        return v
    out = v.replace("\r\n", "\n").replace("\r", "\n")
    if not v.startswith(_FORMULA_START):
        return out
    try:
        float(v)
        return out
    except ValueError:
        return "'" + out


def table_csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[csv_safe(c) for c in t.flat_columns()], lineterminator="\n")
    w.writeheader()
    for r in t.flat_rows():
        w.writerow({csv_safe(k): "" if v is None else csv_safe(v) for k, v in r.items()})
    return buf.getvalue()


def table_json(t: Table) -> dict[str, Any]:
    return {"table": t.name, "title": t.title, "note": t.note, "columns": t.flat_columns(), "rows": t.flat_rows()}


def write_table(out_dir: Path, t: Table, csv_too: bool) -> list[Path]:
    """Write ``<name>.json`` (always) and ``<name>.csv`` (if asked), atomically."""
    paths = [out_dir / f"{t.name}.json"]
    atomic_write_json(paths[0], _finite(table_json(t)))
    if csv_too:
        paths.append(out_dir / f"{t.name}.csv")
        atomic_write_text(paths[1], table_csv(t))
    return paths


def _finite(obj: Any) -> Any:
    """Replace NaN and infinities by ``None`` so that the JSON is strict."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


__all__ = [
    "Table",
    "accuracy_table",
    "attack_table",
    "headline_table",
    "fmt_cell",
    "fmt_rate",
    "pct",
    "plain_table",
    "sessions_table",
    "summary_table",
    "transfer_table",
    "write_table",
]

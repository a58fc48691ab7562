"""The files of ``BATCH/report/`` beside the tables: figure files, the HTML and PDF, ``report.json``, the file list.

Exports of tables a run did not produce are removed, so no stale numbers remain. Every file is written
atomically (``contracts.paths``); :mod:`analysis.report` decides what goes in them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.channel import DROP_POINTS, ChannelCheck
from analysis.content import Plot, ReportContent
from analysis.html import render_html
from analysis.load import ReportInput
from analysis.paper import MD_FILE, TEX_FILE
from analysis.pdf import render_pdf
from contracts.paths import atomic_write_bytes, atomic_write_text
from contracts.verdict import RULE

TABLES = (
    "headline",
    "channel",
    "sessions",
    "accuracy",
    "destruction",
    "destruction_eps",
    "transfer",
    "summary",
    "tiles",
    "sweep",
)
FIGURES = "figures"


def remove_stale(out_dir: Path, written: set[str]) -> None:
    """Delete the exports of tables this run did not produce (a sweep since
    removed, say), so no stale numbers remain.
    """
    for name in TABLES:
        if name not in written:
            for ext in (".csv", ".json"):
                (out_dir / f"{name}{ext}").unlink(missing_ok=True)
    if "destruction_eps" not in written:
        for f in (MD_FILE, TEX_FILE):
            (out_dir / f).unlink(missing_ok=True)


def write_figures(out_dir: Path, figs: list[Plot]) -> list[Path]:
    """``figures/<name>.svg`` and ``.pdf`` for every figure; stale ones of earlier runs are removed."""
    folder = out_dir / FIGURES
    written: list[Path] = []
    seen: set[str] = set()
    for p in figs:
        stem, i = p.name or "figure", 2
        while stem in seen:
            stem, i = f"{p.name}-{i}", i + 1
        seen.add(stem)
        p.name = stem
        for ext, data in (("svg", p.svg), ("pdf", p.pdf)):
            if data is not None:
                path = folder / f"{stem}.{ext}"
                atomic_write_bytes(path, data)
                written.append(path)
    if folder.is_dir():
        for old in folder.iterdir():
            if old.suffix in (".svg", ".pdf") and old not in written:
                old.unlink(missing_ok=True)
    return written


def file_names(written: list[str], fmts: tuple[str, ...]) -> list[str]:
    """Every file of the report as the report lists it: index.html and report.pdf first, report.json last."""
    names = list(written)
    if "html" in fmts:
        names.insert(0, "index.html")
    if "pdf" in fmts:
        names.insert(1 if "html" in fmts else 0, "report.pdf")
    return [*names, "report.json"]


def render(out_dir: Path, content: ReportContent, fmts: tuple[str, ...]) -> tuple[Path | None, list[Path]]:
    """Write index.html and report.pdf as asked; return the index (if any) and the files written."""
    index, files = None, []
    if "html" in fmts:
        index = out_dir / "index.html"
        atomic_write_text(index, render_html(content))
        files.append(index)
    if "pdf" in fmts:
        pdf = out_dir / "report.pdf"
        atomic_write_bytes(pdf, render_pdf(content))
        files.append(pdf)
    return index, files


def report_json(
    inp: ReportInput, content: ReportContent, checks: dict[str, ChannelCheck], seed: int, resamples: int
) -> dict[str, Any]:
    """``report.json``: the batch, the sessions, every note, the bootstrap and the channel-check rule, the files."""
    return {
        "schema": "photoproof.report",
        "schema_version": 1,
        "batch_id": inp.batch.batch_id,
        "generated": content.generated,
        "sessions": [s.id for s in inp.sessions],
        "digital_only": not inp.sessions,
        "notes": content.warnings + content.notes,
        "bootstrap": {
            "seed": seed,
            "resamples": resamples,
            "unit": "item",
            "interval": "percentile 95%, widened to the Wilson interval on the effective number of observations "
            "(Korn & Graubard 1998)",
        },
        "interval_rates_over_items_and_tiles": "Wilson score 95%",
        "channel_check": {
            "rule": RULE,
            "threshold_points": 100 * DROP_POINTS,
            "sessions": {sid: c.to_dict() for sid, c in checks.items()},
        },
        "config": inp.batch.config,
        "files": content.files,
    }

"""``photoproof report BATCH``: the analysis stage's command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table as RichTable
from rich.markup import escape

from analysis.report import FORMATS, ReportResult, make_report
from analysis.tables import fmt_rate
from contracts.console import console


def _summary(result: ReportResult) -> RichTable:
    """The key figures (top-1, per tile) as a rich table."""
    t = RichTable(title="Key figures (top-1, per tile, 95% intervals)", title_justify="left")
    cols = [("session", "session"), ("model", "model"), ("attack", "attack"), ("ε", "eps"),
            ("adv acc, digital", "adv_digital"), ("adv acc, photographed", "adv_photo_tile"), ("destruction", "destruction_tile")]
    for label, _ in cols:
        t.add_column(label, justify="right" if label not in ("session", "model", "attack") else "left")
    for row in result.headline.rows:
        cells = []
        for _, key in cols:
            v = row.get(key)
            if key in result.headline.rate_columns:
                cells.append(fmt_rate(v) if row.get("model_kind") == "capture" or key == "adv_digital" else "—")
            else:
                cells.append("—" if v is None else f"{v:g}" if isinstance(v, float) else escape(str(v)))
        t.add_row(*cells)
    return t


def show(result: ReportResult) -> None:
    """Print a finished report's notes, key figures and location on the CLI console."""
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    if result.digital_only:
        console.print("[bold yellow]No captures found: the report holds digital results only.[/]")
    console.print(_summary(result))
    console.print(f"report written to [bold]{escape(str(result.main_path))}[/] ({len(result.files)} files in {escape(str(result.out_dir))})", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the Photoproof CLI."""

    @app.command("report")
    def report(
        batch: Path = typer.Argument(..., help="Batch directory (holds batch.json and captures/)."),
        session: Optional[list[str]] = typer.Option(None, "--session", "-s", help="Only this capture session (id or file stem); repeat for several."),
        fmt: str = typer.Option(",".join(FORMATS), "--format", "-f", help="Comma-separated: html, pdf, csv. JSON tables are always written."),
    ) -> None:
        """Report which adversarial perturbations survived printing and photography.

        Writes BATCH/report/: index.html (self-contained), report.pdf, and a CSV and
        JSON file per table, with Kurakin et al.'s destruction rate and 95% intervals.
        """
        show(make_report(batch, list(session) if session else None, tuple(fmt.split(","))))

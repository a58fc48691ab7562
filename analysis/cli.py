"""``photoproof report BATCH``: the analysis stage's command line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from analysis.report import FORMATS, ReportResult, make_report
from analysis.tables import fmt_rate
from contracts.console import console


FLAGGED = ("camera-limited", "inconclusive")


def _summary(result: ReportResult) -> RichTable:
    """The key figures (top-1, per tile) as a rich table; camera-limited rows in red."""
    t = RichTable(title="Key figures (top-1, per tile, 95% intervals)", title_justify="left")
    cols = [("session", "session"), ("model", "model"), ("attack", "attack"), ("ε", "eps"), ("channel check", "channel_check"),
            ("clean acc, digital", "clean_digital"), ("clean acc, photographed", "clean_photo_tile"),
            ("adv acc, digital", "adv_digital"), ("adv acc, photographed", "adv_photo_tile"),
            ("paired survival", "paired_survival_tile"), ("destruction", "destruction_tile")]
    if any(r.get("transfer_source") for r in result.headline.rows):
        cols.insert(9, ("digital transfer", "transfer"))
    for label, _ in cols:
        t.add_column(label, justify="left" if label in ("session", "model", "attack", "channel check") else "right")
    for row in result.headline.rows:
        cells = []
        for _, key in cols:
            v = row.get(key)
            if key in result.headline.rate_columns:
                show_it = row.get("model_kind") == "capture" or key in ("adv_digital", "clean_digital")
                cells.append(fmt_rate(v) if show_it and (key != "transfer" or row.get("transfer_source")) else "—")
            else:
                cells.append("—" if v is None else f"{v:g}" if isinstance(v, float) else str(v))
        t.add_row(*cells, style="red" if row.get("channel_check") in FLAGGED else None)
    return t


def key_lines(result: ReportResult) -> list[str]:
    """The last lines of ``report`` and ``demo``: per session its channel-check verdict, then per attack and ε
    clean and adversarial photographed accuracy, paired survival and the destruction rate (top-1, per tile), each with interval and n."""
    out: list[str] = []
    for sid in result.sessions:
        check = result.checks.get(sid)
        if check is not None:
            colour = {"ok": "green", "camera-limited": "bold red", "inconclusive": "bold yellow"}.get(check.verdict, "yellow")
            out.append(f"[{colour}]{escape(check.sentence())}[/]")
            if check.flagged:
                out.append(f"[bold red]warning:[/] {escape(check.consequence())}")
                out.append(f"  why: {escape('; '.join(check.reasons))}")
                out.append(f"  what to do: {escape('; '.join(check.advice))}")
        flagged = check is not None and check.flagged
        for row in result.headline.rows:
            if row.get("session") != sid:
                continue
            parts = [f"clean photographed {fmt_rate(row.get('clean_photo_tile'))}", f"adversarial photographed {fmt_rate(row.get('adv_photo_tile'))}"]
            if row.get("transfer_source"):
                parts.append(f"digital transfer {row['transfer_source']}→{row['model']} {fmt_rate(row.get('transfer'))}")
            tag = " (camera-limited: measures the camera)" if flagged else ""
            parts += [f"paired survival{tag} {fmt_rate(row.get('paired_survival_tile'))}", f"destruction{tag} {fmt_rate(row.get('destruction_tile'))}"]
            out.append(f"{escape(sid)} · {escape(str(row['model']))} · {escape(str(row['attack']))} ε={row['eps']:g} (top-1, per tile): " + " · ".join(parts))
    return out


def show(result: ReportResult) -> None:
    """Print a finished report's notes, key figures and location, then the channel check and key figures per session."""
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    if result.digital_only:
        console.print("[bold yellow]No captures found: the report holds digital results only.[/]")
    console.print(_summary(result))
    console.print(f"report written to [bold]{escape(str(result.main_path))}[/] ({len(result.files)} files in {escape(str(result.out_dir))})", soft_wrap=True)
    for line in key_lines(result):
        console.print(line, soft_wrap=True)


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

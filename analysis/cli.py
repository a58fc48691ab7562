"""``photoproof report BATCH``: the analysis stage's command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from analysis.report import FORMATS, ReportResult, make_report
from analysis.stats import Rate
from analysis.tables import fmt_rate
from console.terminal import console
from contracts.verdict import FLAGGED

MAX_LINES_PER_SESSION = 4  # per-cell key lines printed under a session's verdict (the table holds the rest)


def _rate2(r: object) -> str:
    """A rate on two short lines for the console table: ``62.5% n=21`` over ``[41.0–80.2]``."""
    if not isinstance(r, Rate) or r.value is None:
        return "n/a (n=0)"
    ci = "" if r.lo is None or r.hi is None else f"\n[{100 * r.lo:.1f}–{100 * r.hi:.1f}]"
    return f"{100 * r.value:.1f}% n={r.n}{ci}"


def _summary(result: ReportResult) -> RichTable:
    """The key figures (top-1, per tile) as a rich table; camera-limited rows in red.

    With capture sessions: clean and adversarial photographed accuracy, the
    digital transfer rate for a black-box target, paired survival and the
    destruction rate, per session. Digital-only: the source models' accuracy.
    """
    t = RichTable(title="Key figures (top-1, per tile, 95% intervals)", title_justify="left")
    if result.digital_only:
        cols = [
            ("model", "model"),
            ("attack", "attack"),
            ("ε", "eps"),
            ("clean acc, digital", "clean_digital"),
            ("adv acc, digital", "adv_digital"),
        ]
        rows = result.headline.rows
    else:
        cols = [
            ("session", "session"),
            ("attack", "attack"),
            ("ε", "eps"),
            ("channel check", "channel_check"),
            ("clean acc, photo", "clean_photo_tile"),
            ("adv acc, photo", "adv_photo_tile"),
            ("paired survival", "paired_survival_tile"),
            ("destruction", "destruction_tile"),
        ]
        rows = [r for r in result.headline.rows if r.get("model_kind") == "capture"]
        if any(r.get("transfer_source") for r in rows):
            cols.insert(6, ("digital transfer", "transfer"))
    for label, key in cols:
        t.add_column(
            label, justify="right" if key in result.headline.rate_columns or key == "eps" else "left", overflow="fold"
        )
    for row in rows:
        cells = []
        for _, key in cols:
            v = row.get(key)
            if key in result.headline.rate_columns:
                cells.append(_rate2(v) if key != "transfer" or row.get("transfer_source") else "—")
            else:
                cells.append("—" if v is None else f"{v:g}" if isinstance(v, float) else escape(str(v)))
        t.add_row(*cells, style="red" if row.get("channel_check") in FLAGGED else None)
    return t


def key_lines(result: ReportResult) -> list[str]:
    """The last lines of ``report`` and ``demo`` (rich markup).

    Per session: the channel-check verdict (and, when flagged, why and what to
    do), then per attack and ε the clean and adversarial photographed accuracy,
    paired survival and the destruction rate (top-1, per tile), each with its
    interval and n.
    """
    out: list[str] = []
    for sid in result.sessions:
        check = result.checks.get(sid)
        if check is not None:
            colour = {
                "ok": "green",
                "camera-limited": "bold red",
                "model-fragile": "bold red",
                "inconclusive": "bold yellow",
            }.get(check.verdict, "yellow")
            out.append(f"[{colour}]{escape(check.sentence())}[/]")
            if check.flagged:
                out.append(f"[bold red]warning:[/] {escape(check.consequence())}")
                out.append(f"  why: {escape('; '.join(check.reasons))}")
                if check.unstable:
                    out.append(f"  photos a mild digital change already flips: {escape(', '.join(check.unstable))}")
                out.append(f"  what to do: {escape('; '.join(check.advice))}")
            if check.sides is not None and check.sides.effect:
                out.append(
                    f"[bold yellow]side effect:[/] {escape(check.sides.sentence())}: even the light across the sheet"
                )
        flagged = check is not None and check.flagged
        mine = [r for r in result.headline.rows if r.get("session") == sid]
        for row in mine[:MAX_LINES_PER_SESSION]:
            parts = [
                f"clean photographed {fmt_rate(row.get('clean_photo_tile'))}",
                f"adversarial photographed {fmt_rate(row.get('adv_photo_tile'))}",
            ]
            if row.get("transfer_source"):
                parts.append(
                    f"digital transfer {escape(str(row['transfer_source']))}→{escape(str(row['model']))} "
                    f"{fmt_rate(row.get('transfer'))}"
                )
            tag = (
                {
                    "camera-limited": " (camera-limited: measures the camera)",
                    "model-fragile": " (model-fragile: measures the model's fragility)",
                }.get(check.verdict, f" ({check.verdict}: not about the attack)")
                if flagged and check is not None
                else ""
            )
            parts += [
                f"paired survival{tag} {fmt_rate(row.get('paired_survival_tile'))}",
                f"destruction{tag} {fmt_rate(row.get('destruction_tile'))}",
            ]
            out.append(
                f"{escape(sid)} · {escape(str(row['model']))} · {escape(str(row['attack']))} ε={row['eps']:g} (top-1, "
                "per tile): " + " · ".join(parts)
            )
        if len(mine) > MAX_LINES_PER_SESSION:
            out.append(
                f"{escape(sid)}: {len(mine) - MAX_LINES_PER_SESSION} more attack × ε cells in the table above and in "
                "headline.csv"
            )
    return out


def show(result: ReportResult) -> None:
    """Print a finished report: notes, the key-figures table, where it is, then per session the channel check and key
    figures.
    """
    if result.headline.name == "faces_transfer":  # a face batch (analysis.faces_report): its lines say it all
        for w in result.warnings:
            console.print(f"[bold yellow]warning:[/] {escape(w)}", soft_wrap=True)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
        console.print(f"report written to [bold]{escape(str(result.main_path))}[/]", soft_wrap=True)
        return
    channel_notes = {c.note() for c in result.checks.values()}
    for note in result.notes:
        if note not in channel_notes:
            console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    if result.digital_only:
        console.print("[bold yellow]No captures found: the report holds digital results only.[/]")
    console.print(_summary(result))
    console.print(
        f"report written to [bold]{escape(str(result.main_path))}[/] ({len(result.files)} files in "
        f"{escape(str(result.out_dir))})",
        soft_wrap=True,
    )
    for line in key_lines(result):
        console.print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the Photoproof CLI."""

    @app.command("report")
    def report(
        batch: Path = typer.Argument(..., help="Batch directory (holds batch.json and captures/)."),
        session: list[str] | None = typer.Option(
            None,
            "--session",
            "-s",
            metavar="<str>",
            help="Only this capture session (id or file stem); repeat for several.",
        ),
        fmt: str = typer.Option(
            ",".join(FORMATS), "--format", "-f", help="Comma-separated: html, pdf, csv. JSON tables are always written."
        ),
    ) -> None:
        """Report which adversarial perturbations survived printing and photography.

        Writes BATCH/report/: index.html (self-contained), report.pdf, and a CSV and
        JSON file per table, with Kurakin et al.'s destruction rate and 95% intervals.
        """
        show(make_report(batch, list(session) if session else None, tuple(fmt.split(","))))

"""``photoproof report``: read a batch and its captures, write ``BATCH/report/``.

``build_report`` is the stage's public entry point. It computes the measures of
Kurakin, Goodfellow & Bengio 2016 (https://arxiv.org/abs/1607.02533) per attack,
ε and model, with 95% intervals (Wilson 1927; item bootstrap), and writes:

- ``index.html``: self-contained page (inline CSS, data-URI images);
- ``report.pdf``: the same content for print;
- ``<table>.csv`` and ``<table>.json`` for every table (JSON always);
- ``report.json``: batch id, sessions, notes, bootstrap seed and file list.

Every file is written atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from analysis import plots
from analysis.attacks_compared import compare_attacks, compare_table
from analysis.channel import DROP_POINTS, ChannelCheck, check_sessions
from analysis.channel_tables import channel_table, layouts_table
from analysis.content import Plot, ReportContent
from analysis.faces_report import build_face_report
from analysis.gallery import gallery
from analysis.load import ReportInput, load_input, manifest_pred
from analysis.methods import methods
from analysis.paper import paper_table, write_paper_tables
from analysis.prediction import predict, prediction_table
from analysis.report_files import file_names, remove_stale, render, report_json, write_figures
from analysis.report_parts import calibration_part, figure_plot, fmts_visual, scene_part, sweep_part
from analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from analysis.summary import SummaryRow, compute_summary, tile_rows
from analysis.tables import (
    Table,
    _finite,
    accuracy_table,
    attack_table,
    headline_table,
    plain_table,
    sessions_table,
    summary_table,
    transfer_table,
    write_table,
)
from contracts.batchdir import REPORT
from contracts.errors import UserError, WriteError
from contracts.manifest import MANIFEST, is_face_batch, load_batch
from contracts.paths import atomic_write_json

log = logging.getLogger(__name__)

REPORT_DIR = REPORT
FORMATS = ("html", "pdf", "csv")


@dataclass
class ReportResult:
    """What :func:`make_report` wrote and found."""

    out_dir: Path
    index: Path | None
    files: list[Path]
    notes: list[str]
    summary: list[SummaryRow]
    headline: Table
    digital_only: bool
    sessions: list[str] = field(default_factory=list)
    checks: dict[str, ChannelCheck] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # channel-check notes of camera-limited or inconclusive sessions

    @property
    def main_path(self) -> Path:
        return self.index if self.index is not None else self.out_dir


def check_formats(formats: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate ``--format``: a subset of html, pdf, csv (json is always written)."""
    out = []
    for f in formats:
        f = f.strip().lower()
        if not f or f == "json":
            continue
        if f not in FORMATS:
            raise UserError(
                f"--format {f!r}: unknown format; choose from {', '.join(FORMATS)} (JSON is always written)"
            )
        if f not in out:
            out.append(f)
    return tuple(out)


def _plots(inp: ReportInput, rows: list[SummaryRow], checks: dict[str, ChannelCheck]) -> list[Plot]:
    flagged = {sid for sid, c in checks.items() if c.flagged}
    lim = (
        " Hollow markers and dotted lines: camera-limited or inconclusive sessions, whose rates measure the camera."
        if flagged
        else ""
    )
    found = [
        figure_plot(
            "Channel check: clean accuracy photographed against digital",
            plots.channel_check(list(checks.values()), DROP_POINTS),
            "top-1, same items; the grey band is the allowed drop; bars are 95% intervals",
            "channel-check",
        )
    ]
    for metric, label, name in (
        ("destruction", "Destruction rate against ε (average case)", "destruction-average"),
        ("destruction_prefiltered", "Destruction rate against ε (prefiltered case)", "destruction-prefiltered"),
        ("paired_survival", "Paired survival against ε", "paired-survival"),
    ):
        found.append(
            figure_plot(
                label,
                plots.destruction_vs_eps(rows, metric, limited=flagged),
                "per tile; solid top-1, dashed top-5; bars are 95% Wilson intervals." + lim,
                name,
            )
        )
    for m in inp.source_models:
        found.append(
            figure_plot(
                f"Accuracy of source model {m} (digital)",
                plots.accuracy_bars(rows, None, m),
                "top-1 on the saved PNGs",
                f"accuracy-{m}",
            )
        )
        clean = [p.top1_prob for it in inp.batch.items if (p := manifest_pred(it, "clean", m))]
        adv = [p.top1_prob for it in inp.batch.items if (p := manifest_pred(it, "adv", m))]
        found.append(
            figure_plot(
                f"Confidence of {m} on the saved PNGs",
                plots.digital_confidence_hist(clean, adv, m),
                "",
                f"confidence-{m}",
            )
        )
    for s in inp.sessions:
        tag = f" [{checks[s.id].verdict}]" if s.id in flagged else ""
        found.append(
            figure_plot(
                f"Accuracy digital vs photographed, session {s.id} ({s.model_name}){tag}",
                plots.accuracy_bars(rows, s.id, s.model_name),
                "top-1; photographed = per tile",
                f"accuracy-{s.id}",
            )
        )
        found.append(
            figure_plot(
                f"Confidence histogram, session {s.id}",
                plots.confidence_hist(s),
                "top-1 probability of good observations",
                f"confidence-{s.id}",
            )
        )
    return [p for p in found if p is not None]


def make_report(
    batch_dir: Path,
    sessions: list[str] | None = None,
    formats: tuple[str, ...] = FORMATS,
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> ReportResult:
    """Build the report and return what was written (the CLI prints from this).

    Raises:
        UserError: bad batch, corrupt or foreign capture database, unknown session
            or format, or a report folder that cannot be written.
    """
    if not (Path(batch_dir) / MANIFEST).is_file():
        load_batch(Path(batch_dir))  # one line naming the folder the user typed, before any temporary folder exists
    try:
        return swap_in_report(
            Path(batch_dir), lambda out_dir: _make_report(Path(batch_dir), sessions, formats, seed, resamples, out_dir)
        )
    except WriteError:
        raise  # already one line naming the file
    except OSError as e:
        where = e.filename or Path(batch_dir) / REPORT_DIR
        raise UserError(
            f"{where}: {e.strerror or e}; check that the batch is readable, that report/ is writable and that the disk "
            "has room"
        ) from None


def swap_in_report(batch_dir: Path, build: Callable[[Path], ReportResult]) -> ReportResult:
    """Run ``build(folder)`` in a fresh hidden folder inside the batch, then swap it in whole for ``report/``.

    A run killed at any point leaves either the old report or the new one, never a
    mix: the new folder is renamed into place only once complete. Hidden
    ``.report-*`` folders left by a killed run are removed by the next one.
    """
    final = batch_dir / REPORT_DIR
    if final.exists() and not final.is_dir():
        raise UserError(f"{final}: exists and is not a folder; move it away so that the report can be written there")
    for stale in batch_dir.glob(".report-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".report-new-", dir=batch_dir))
    old = batch_dir / f".report-old-{tmp.name.rsplit('-', 1)[-1]}"
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; a report folder is as readable as any other
        result = build(tmp)
        if final.is_dir():
            os.replace(final, old)
        os.replace(tmp, final)
    except WriteError as e:  # name the file the user knows, not the hidden folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise WriteError(str(e).replace(str(tmp), str(final))) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    moved = lambda q: final / q.relative_to(tmp) if q.is_relative_to(tmp) else q  # noqa: E731
    return replace(
        result,
        out_dir=final,
        index=None if result.index is None else moved(result.index),
        files=[moved(q) for q in result.files],
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_report(
    batch_dir: Path, sessions: list[str] | None, formats: tuple[str, ...], seed: int, resamples: int, out_dir: Path
) -> ReportResult:
    fmts = check_formats(formats)
    if is_face_batch(load_batch(batch_dir)):  # craft --source mtcnn: recall and hiding, not top-1 (docs/detectors.md)
        fr = build_face_report(batch_dir, sessions, fmts, out_dir)
        return ReportResult(
            out_dir, fr.index, fr.files, fr.notes, [], fr.headline, not fr.sessions, fr.sessions, {}, fr.warnings
        )
    inp = load_input(batch_dir, sessions)
    log.info("report: %d items, %d sessions", len(inp.batch.items), len(inp.sessions))
    checks = check_sessions(inp, seed, resamples)
    verdicts = {sid: c.verdict for sid, c in checks.items()}
    rows = [
        replace(r, channel_check=verdicts[r.session]) if r.session in verdicts else r
        for r in compute_summary(inp, seed, resamples)
    ]
    preds, pairs = predict(inp, seed, resamples), compare_attacks(inp, verdicts, seed, resamples)
    warnings = [c.note() for c in checks.values() if c.flagged]
    said = [p.sentence() for p in preds] + [c.sentence() for c in pairs if c.headline]  # per-ε rows: the table's
    notes = [c.note() for c in checks.values() if not c.flagged] + said + inp.notes
    headline = headline_table(rows, inp.source_models)
    paper = paper_table(rows) if inp.sessions else None
    shown = [
        headline,
        channel_table(checks),
        layouts_table(checks),
        sessions_table(inp, verdicts),
        accuracy_table(rows),
        attack_table(rows),
        transfer_table(rows),
        *([prediction_table(preds)] if preds else []),
        *([compare_table(pairs)] if pairs else []),
    ]
    if not inp.sessions:
        shown = [t for t in shown if t.name not in ("sessions", "transfer", "channel")]
    exported = [
        *shown,
        summary_table(rows),
        plain_table("tiles", "Tiles: majority vote of good observations", tile_rows(inp)),
    ]
    scene, sweep, cal = (
        scene_part(inp, fmts),
        sweep_part(batch_dir, inp, fmts, seed, resamples),
        calibration_part(batch_dir, fmts),
    )
    shown += scene.tables + cal.tables
    exported += [*scene.tables, *([paper] if paper is not None else []), *sweep.tables, *cal.tables]

    files: list[Path] = []
    for t in exported:
        files += write_table(out_dir, t, "csv" in fmts)
    if paper is not None:
        files += write_paper_tables(out_dir, paper)
    remove_stale(out_dir, {t.name for t in exported})
    figures = [*_plots(inp, rows, checks), *([cal.plot] if cal.plot else [])] if fmts_visual(fmts) else []
    files += write_figures(out_dir, figures + [p for p in (sweep.plot, scene.plot) if p is not None])
    names = file_names([str(p.relative_to(out_dir)) for p in files], fmts)
    content = ReportContent(
        title=f"Photoproof report: {inp.batch.batch_id}",
        batch_id=inp.batch.batch_id,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=notes,
        tables=shown,
        plots=figures,
        gallery=gallery(inp, {sid for sid, c in checks.items() if c.flagged}) if fmts_visual(fmts) else [],
        methods=methods(inp, seed, resamples),
        sweep_table=sweep.tables[0] if sweep.tables else None,
        sweep_plot=sweep.plot,
        scene_plot=scene.plot,
        files=names,
        digital_only=not inp.sessions,
        destruction_eps=paper,
        warnings=warnings,
    )
    index, rendered = render(out_dir, content, fmts)
    files += rendered
    meta = report_json(inp, content, checks, seed, resamples)
    atomic_write_json(out_dir / "report.json", _finite(meta))
    files.append(out_dir / "report.json")
    for n in warnings + notes:  # the CLI prints them (analysis.cli.show); a library caller reads ReportResult
        log.info("%s", n)
    return ReportResult(
        out_dir, index, files, notes, rows, headline, not inp.sessions, [s.id for s in inp.sessions], checks, warnings
    )


def build_report(
    batch_dir: Path, sessions: list[str] | None = None, formats: tuple[str, ...] = ("html", "pdf", "csv")
) -> Path:
    """Write ``BATCH/report/`` and return the path of ``index.html`` (the report folder if no HTML was asked for).

    Args:
        batch_dir: the batch directory (``batch.json``, ``captures/*.sqlite``).
        sessions: capture session ids or database file stems; ``None`` for all.
        formats: any of ``html``, ``pdf``, ``csv``; JSON tables are always written.
    Raises:
        UserError: naming the file or argument at fault.
    """
    return make_report(batch_dir, sessions, formats).main_path

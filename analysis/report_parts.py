"""The report's optional parts, each its tables and, for HTML and PDF, its figure: the ``capture --scene``
sessions, the digital sweep (``photoproof sweep``) and the calibrated profiles (``photoproof calibrate``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from analysis import plots, plots_sweep
from analysis.calibration import calibration_plot, calibration_tables
from analysis.content import Plot
from analysis.load import ReportInput
from analysis.scene import scene_report_table, scene_series
from analysis.sweep import SWEEP_METRICS, load_sweep, sweep_points, sweep_rows, sweep_units
from analysis.tables import Table
from contracts.calibration import read_calibrations


def safe_name(name: str) -> str:
    """A file stem from a title part (session ids may hold anything)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "figure"


def figure_plot(title: str, figs: plots.Figures | None, caption: str, name: str) -> Plot | None:
    return None if figs is None else Plot(title, figs.png, caption, safe_name(name), figs.svg, figs.pdf)


def fmts_visual(fmts: tuple[str, ...]) -> bool:
    """Figures and the gallery are drawn only for the HTML or the PDF."""
    return "html" in fmts or "pdf" in fmts


@dataclass
class Part:
    """An optional part of the report: its tables (none when the batch has nothing for it) and its figure."""

    tables: list[Table] = field(default_factory=list)
    plot: Plot | None = None


def scene_part(inp: ReportInput, fmts: tuple[str, ...]) -> Part:
    """The capture --scene sessions (analysis.scene): their table and, for HTML/PDF, their figure."""
    table = scene_report_table([s.path for s in inp.sessions])
    if table is None or not fmts_visual(fmts):
        return Part([table] if table else [])
    figs = plots_sweep.scene_vs_share(scene_series([s.path for s in inp.sessions]), inp.batch.class_names())
    plot = figure_plot(
        "Adversarial patch in the scene against its apparent size",
        figs,
        "points: frames with the patch, by its share of the view (bin median); dashed line and band: the "
        "session's frames without it; bars and bands are 95% Wilson intervals over frames (frames of one "
        "scene are not independent)",
        "scene-share",
    )
    return Part([table], plot)


def sweep_part(batch_dir: Path, inp: ReportInput, fmts: tuple[str, ...], seed: int, resamples: int) -> Part:
    """The digital sweep (``photoproof sweep``), if one was run: its table and, for HTML/PDF, its figure."""
    sweep_data = load_sweep(batch_dir)
    if sweep_data is None:
        return Part()
    pts = sweep_points(inp, sweep_data, seed, resamples)
    table = Table(
        "sweep",
        "Destruction rate per transform and strength",
        ["transform", "strength", "model", "topk", *SWEEP_METRICS],
        sweep_rows(pts),
        list(SWEEP_METRICS),
        "Digital predictions of the same model on the untransformed PNGs give C(X) and C(X_adv).",
    )
    figs = plots_sweep.sweep_plot(pts, sweep_units(batch_dir)) if fmts_visual(fmts) else None
    title = "Destruction rate against transform strength"
    return Part([table], figure_plot(title, figs, "95% intervals: item bootstrap", "sweep"))


def calibration_part(batch_dir: Path, fmts: tuple[str, ...]) -> Part:
    """The profiles calibrated from this batch (``BATCH/calibrations/``): the fit against its base, the tone curves,
    the grey ramp's residuals and, for HTML/PDF, the curves and the edge spread function as a figure."""
    recs = read_calibrations(batch_dir)
    if not recs:
        return Part()
    figs = calibration_plot(recs) if fmts_visual(fmts) else None
    caption = "left: the fitted tone curve per channel (dotted: identity); right: the strip's edge, observed and fitted"
    return Part(calibration_tables(recs), figure_plot("Calibrated profiles", figs, caption, "calibration"))

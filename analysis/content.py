"""What the report holds, independent of its format (HTML or PDF)."""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.gallery import GalleryEntry
from analysis.methods import Section
from analysis.tables import Table


@dataclass
class Plot:
    """A figure: its PNG bytes, a title and a one-line caption."""

    title: str
    png: bytes
    caption: str = ""


@dataclass
class ReportContent:
    """Every part of the report, ready to render."""

    title: str
    batch_id: str
    generated: str
    notes: list[str]
    tables: list[Table]
    plots: list[Plot]
    gallery: list[GalleryEntry]
    methods: list[Section]
    sweep_table: Table | None = None
    sweep_plot: Plot | None = None
    files: list[str] = field(default_factory=list)
    digital_only: bool = False

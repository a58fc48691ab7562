"""What the report holds, independent of its format (HTML or PDF)."""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis.gallery import GalleryEntry
from analysis.methods import Section
from analysis.tables import Table


@dataclass
class Plot:
    """A figure: its PNG bytes, a title and a one-line caption.

    ``name`` is the file stem of its vector copies ``figures/<name>.svg`` and
    ``.pdf`` (written beside the report when ``svg``/``pdf`` are set).
    """

    title: str
    png: bytes
    caption: str = ""
    name: str = ""
    svg: bytes | None = None
    pdf: bytes | None = None


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
    scene_plot: Plot | None = None  # shown right after the table named "scene"
    destruction_eps: Table | None = None
    warnings: list[str] = field(default_factory=list)  # channel-check warnings, shown above everything else
    files: list[str] = field(default_factory=list)
    digital_only: bool = False

"""A printed batch as the simulated camera's pages: ``BATCH/sheets.pdf`` checked against ``layout.json``, each
sheet's page rendered when first shown (pypdfium2), and the framing: whole sheets, or a dense sheet pair by pair
from close up (:mod:`channel.views`)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from channel.page import MAX_PAGE_PIXELS, default_dpi, region_dpi, render_page
from channel.views import close_up_views, needs_close_up
from contracts.batchdir import LAYOUT, SHEETS_PDF
from contracts.errors import UserError
from contracts.layout import load_layout
from contracts.profile import ChannelProfile

log = logging.getLogger(__name__)

View = tuple[int, tuple[float, float, float, float]]


@dataclass(frozen=True)
class BatchPages:
    """What :class:`channel.simulate.SimulatedCamera` needs of a printed batch: a page renderer per sheet, each
    sheet's size in mm and page number, and the close-up views (empty: whole sheets)."""

    pages: Sequence[Callable[[], np.ndarray]]
    sizes_mm: list[tuple[float, float]]
    page_ids: list[int]
    views: list[View]


def batch_pages(batch_dir: Path, profile: ChannelProfile, dpi: float | None, framing: str | None) -> BatchPages:
    """The pages of ``BATCH/sheets.pdf`` that ``BATCH/layout.json`` names, rendered at ``dpi`` (default: what the
    framing needs) when first shown.

    ``framing``: ``"sheet"`` (whole sheets), ``"block"`` (a dense sheet pair by pair, from close up:
    :func:`close_up_views`), or ``None``: pair by pair when the layout is dense and this camera framing a
    whole sheet gives its tiles fewer pixels than the layout aims at (:func:`needs_close_up`).
    """
    import pypdfium2 as pdfium

    layout = load_layout(batch_dir)
    pdf_path = batch_dir / SHEETS_PDF
    if not pdf_path.is_file():
        raise UserError(f"{pdf_path}: missing; print the batch first with 'photoproof print {batch_dir}'")
    if not layout.sheets:
        raise UserError(f"{batch_dir / LAYOUT}: no sheets to simulate")
    if framing not in (None, "sheet", "block"):
        raise ValueError(f"framing: expected 'sheet', 'block' or None, got {framing!r}")
    views = close_up_views(layout) if framing in ("block", None) else []
    if framing is None and not needs_close_up(layout, profile):
        views = []
    if framing == "block" and not views:
        raise UserError(f"{batch_dir / LAYOUT}: not a dense layout; print it with 'photoproof print --frame-size'")
    size = (profile.camera.width, profile.camera.height)
    auto = max(region_dpi(profile, r[2:], size) for _, r in views) if views else None
    dpi = float(dpi or auto or default_dpi(profile, max(s.size_mm[1] for s in layout.sheets)))
    try:
        pdf = pdfium.PdfDocument(str(pdf_path))
    except pdfium.PdfiumError as e:
        raise UserError(f"{pdf_path}: not a readable PDF ({e}); re-run 'photoproof print {batch_dir}'") from None
    try:
        n_pages = len(pdf)
        for s in layout.sheets:
            if not 0 <= s.page < n_pages:
                raise UserError(f"{pdf_path}: layout sheet {s.sheet_id} names page {s.page}, the PDF has {n_pages}")
            w_pt, h_pt = pdf[s.page].get_size()
            if w_pt * h_pt * (dpi / 72.0) ** 2 > MAX_PAGE_PIXELS:
                raise UserError(
                    f"{pdf_path}: page {s.page} is {w_pt / 72 * 25.4:.0f} x {h_pt / 72 * 25.4:.0f} mm, too large "
                    f"to render at {dpi:.0f} dpi; re-run 'photoproof print {batch_dir}'"
                )
    finally:
        pdf.close()
    # Pages are rendered when first shown (a batch of 60 sheets at 500 dpi would take gigabytes at once).
    pages = [functools.partial(render_page, pdf_path, s.page, dpi) for s in layout.sheets]
    log.info("%d sheet(s) to render at %.0f dpi", len(pages), dpi)
    if views:
        log.info("%d close-up views, one pair each", len(views))
    sizes = [(float(s.size_mm[0]), float(s.size_mm[1])) for s in layout.sheets]
    return BatchPages(pages, sizes, [s.page for s in layout.sheets], views)

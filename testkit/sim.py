"""Builders for the simulator and twin tests: a small batch (sheets.pdf + layout.json) and a test card.

The PDF is made here with reportlab, so these tests do not depend on the printouts stage.
Markers are drawn as vector squares, so their corners are exact in mm.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from contracts.layout import Layout, Marker, Sheet, Tile, save_layout

DICTIONARY = "DICT_4X4_1000"
MARKER_MM = 16.0
SIZE_MM = (148.0, 210.0)  # A5 portrait


def make_test_card(size: int = 128, seed: int = 0) -> np.ndarray:
    """RGB uint8 card: a grey ramp (top quarter), six colour patches, and band-limited texture."""
    rng = np.random.default_rng(seed)
    card = np.zeros((size, size, 3), np.uint8)
    q = size // 4
    card[:q] = np.linspace(0, 255, size).round().astype(np.uint8)[None, :, None]
    patches = [(230, 40, 40), (40, 180, 60), (40, 60, 220), (240, 220, 40), (200, 60, 200), (60, 200, 210)]
    pw = size // len(patches)
    for i, c in enumerate(patches):
        card[q : 2 * q, i * pw : (i + 1) * pw] = c
    card[q : 2 * q, len(patches) * pw :] = 128
    tex = cv2.resize(
        rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.uint8),
        (size, size - 2 * q),
        interpolation=cv2.INTER_CUBIC,
    )
    card[2 * q :] = tex
    return card


def marker_bits(dictionary: str, marker_id: int) -> np.ndarray:
    """The marker's cells including its one-cell black border: 1 = white."""
    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    n = d.markerSize + 2
    img = cv2.aruco.generateImageMarker(d, marker_id, n * 10, borderBits=1)
    return (img[5::10, 5::10] > 127).astype(np.uint8)


def _draw_marker(c: canvas.Canvas, bits: np.ndarray, x_mm: float, y_mm: float, page_h_mm: float) -> None:
    cell = MARKER_MM / bits.shape[0]
    c.setFillColorRGB(0, 0, 0)
    c.rect(x_mm * mm, (page_h_mm - y_mm - MARKER_MM) * mm, MARKER_MM * mm, MARKER_MM * mm, stroke=0, fill=1)
    c.setFillColorRGB(1, 1, 1)
    for r in range(bits.shape[0]):
        for k in range(bits.shape[1]):
            if bits[r, k]:
                c.rect(
                    (x_mm + k * cell) * mm,
                    (page_h_mm - y_mm - (r + 1) * cell) * mm,
                    cell * mm,
                    cell * mm,
                    stroke=0,
                    fill=1,
                )


def make_sim_batch(batch_dir: Path, n_sheets: int = 2, seed: int = 0, cover: bool = True) -> Layout:
    """Write ``sheets.pdf`` (an optional cover page, then ``n_sheets`` A5 sheets) and ``layout.json``.

    Each sheet has four markers near its corners and two 50 mm image tiles.
    """
    batch_dir.mkdir(parents=True, exist_ok=True)
    w, h = SIZE_MM
    c = canvas.Canvas(str(batch_dir / "sheets.pdf"), pagesize=(w * mm, h * mm))
    if cover:
        c.drawString(20 * mm, (h - 30) * mm, "cover page")
        c.showPage()
    sheets = []
    for s in range(n_sheets):
        markers = []
        for j, (x, y) in enumerate(
            [(10, 10), (w - 10 - MARKER_MM, 10), (w - 10 - MARKER_MM, h - 10 - MARKER_MM), (10, h - 10 - MARKER_MM)]
        ):
            mid = 4 * s + j
            _draw_marker(c, marker_bits(DICTIONARY, mid), x, y, h)
            markers.append(
                Marker(
                    id=mid, corners_mm=[[x, y], [x + MARKER_MM, y], [x + MARKER_MM, y + MARKER_MM], [x, y + MARKER_MM]]
                )
            )
        tiles = []
        for t, (x, y) in enumerate([(20.0, 40.0), (78.0, 110.0)]):
            img = Image.fromarray(make_test_card(128, seed=seed + 10 * s + t))
            c.drawImage(ImageReader(img), x * mm, (h - y - 50.0) * mm, 50.0 * mm, 50.0 * mm)
            tiles.append(
                Tile(
                    item=f"item-{s}-{t}",
                    role="clean" if t == 0 else "adv",
                    image=f"images/item-{s}-{t}.png",
                    box_mm=[x, y, 50.0, 50.0],
                )
            )
        sheets.append(Sheet(sheet_id=f"bsim/s{s}", page=s + int(cover), size_mm=[w, h], markers=markers, tiles=tiles))
        c.showPage()
    c.save()
    layout = Layout(
        batch_id="bsim", paper="a5", aruco_dictionary=DICTIONARY, marker_size_mm=MARKER_MM, sheets=sheets, tile_mm=50.0
    )
    save_layout(batch_dir, layout)
    return layout

"""The printouts stage: sheets.pdf and layout.json, checked on real renders.

Every page is rendered with pypdfium2 at 300 dpi and measured with OpenCV:
markers, tile edges, the QR code, the calibration patches and the ruler must
sit where layout.json says, within 0.3 mm. Embedded images are read back from
the PDF and compared with the PNGs pixel for pixel.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from contracts.layout import Layout, load_layout
from contracts.manifest import load_batch, save_batch
from printouts.markers import choose_dictionary, marker_id_offset, sheet_marker_ids
from printouts.qr import qr_modules
from printouts.sheets import print_batch
from testkit.batch import write_batch

DPI = 300.0
PX_PER_MM = DPI / 25.4
PT_PER_MM = 72.0 / 25.4
TOL_MM = 0.3
PAPER_MM = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
# (paper, layout, image side in px): real batches have 224 px images; smaller ones render as fast
CONFIGS = [
    ("a4", "pairs", 224),
    ("letter", "pairs", 64),
    ("a4", "adversarial-only", 64),
    ("letter", "adversarial-only", 96),
]


def frame_images(batch_dir: Path, border: int = 2) -> None:
    """Paint a black frame into every PNG (and update batch.json), so tile edges can be measured."""
    batch = load_batch(batch_dir)
    for it in batch.items:
        for rec in (it.clean, it.adv):
            path = batch_dir / rec.path
            a = np.asarray(Image.open(path).convert("RGB")).copy()
            a[:border], a[-border:], a[:, :border], a[:, -border:] = 0, 0, 0, 0
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG")
            path.write_bytes(buf.getvalue())
            rec.sha256 = hashlib.sha256(buf.getvalue()).hexdigest()
    save_batch(batch_dir, batch)


@dataclass
class Printed:
    """A printed batch and its pages rendered at 300 dpi (RGB), rendered once on demand."""

    batch_dir: Path
    layout: Layout
    paper: str
    pdf: pdfium.PdfDocument
    _renders: dict[int, np.ndarray] = field(default_factory=dict)

    def render(self, page: int) -> np.ndarray:
        if page not in self._renders:
            bmp = self.pdf[page].render(scale=DPI / 72.0, rev_byteorder=True)
            self._renders[page] = bmp.to_numpy()[..., :3].copy()
        return self._renders[page]


@pytest.fixture(scope="module", params=CONFIGS, ids=[f"{p}-{lay}-{n}px" for p, lay, n in CONFIGS])
def printed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Printed:
    paper, layout, size = request.param
    d = tmp_path_factory.mktemp(f"{paper}-{layout}") / "batch"
    write_batch(d, n_items=4, size=size, batch_id="btest-print")
    frame_images(d)
    lay = print_batch(d, paper=paper, tile_mm=60.0, layout=layout, cover=True)
    return Printed(d, lay, paper, pdfium.PdfDocument(str(d / "sheets.pdf")))


def mm_to_px(xy_mm: np.ndarray) -> np.ndarray:
    """Layout mm (page top-left, y down) to render pixel coordinates (pixel centres at integers)."""
    return np.asarray(xy_mm, dtype=np.float64) * PX_PER_MM - 0.5


def detect(gray: np.ndarray, dictionary: str) -> dict[int, np.ndarray]:
    """ArUco markers found in ``gray``: id -> 4x2 corners in px (TL, TR, BR, BL)."""
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    det = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary)), params)
    corners, ids, _ = det.detectMarkers(gray)
    return {} if ids is None else {int(i): c.reshape(4, 2) for i, c in zip(ids.ravel(), corners, strict=True)}


def crop_mm(img: np.ndarray, box: list[float], pad_mm: float) -> tuple[np.ndarray, int, int]:
    x, y, w, h = box
    x0, y0 = int((x - pad_mm) * PX_PER_MM), int((y - pad_mm) * PX_PER_MM)
    x1, y1 = int(np.ceil((x + w + pad_mm) * PX_PER_MM)), int(np.ceil((y + h + pad_mm) * PX_PER_MM))
    return img[y0:y1, x0:x1], x0, y0


# -- the PDF and layout.json ---------------------------------------------------


def test_page_sizes_are_exact(printed: Printed) -> None:
    w, h = PAPER_MM[printed.paper]
    assert len(printed.pdf) == len(printed.layout.sheets) + 1  # the cover
    for k in range(len(printed.pdf)):
        pw, ph = printed.pdf[k].get_size()
        assert pw / PT_PER_MM == pytest.approx(w, abs=0.01)
        assert ph / PT_PER_MM == pytest.approx(h, abs=0.01)
    assert all(s.size_mm == [w, h] for s in printed.layout.sheets)


def test_layout_json_describes_the_batch(printed: Printed) -> None:
    lay = load_layout(printed.batch_dir)
    assert lay == printed.layout
    batch = load_batch(printed.batch_dir)
    roles = {"clean", "adv"} if lay.extra["layout"] == "pairs" else {"adv"}
    seen = [(t.item, t.role) for s in lay.sheets for t in s.tiles]
    assert sorted(seen) == sorted((it.id, r) for it in batch.items for r in roles)
    ids = [m.id for s in lay.sheets for m in s.markers]
    assert len(ids) == len(set(ids)) == 8 * len(lay.sheets)
    assert lay.aruco_dictionary == choose_dictionary(len(lay.sheets)) == "DICT_4X4_1000"
    offset = lay.extra["marker_id_offset"]
    assert offset == marker_id_offset("btest-print") and offset % 8 == 0
    for k, s in enumerate(lay.sheets):
        assert s.sheet_id == f"btest-print/s{k}" and s.page == k + 1
        assert [m.id for m in s.markers] == sheet_marker_ids(k, offset)
        text = s.qr["payload"]  # the layout id names the print (as written, or a variant OpenCV reads back)
        assert text.startswith(f"photoproof:btest-print:{k}:") and text.split(":")[3].rstrip(".").lower() == lay.id
        assert s.qr == {"payload": text, "box_mm": s.qr["box_mm"], "modules": int(qr_modules(text).shape[0])}
        assert s.qr["box_mm"][2] == s.qr["box_mm"][3] >= 30.0  # 60 mm tiles leave room for a large code
        assert all(t.box_mm[2] == 60.0 for t in s.tiles)
    pdf_sha = hashlib.sha256((printed.batch_dir / "sheets.pdf").read_bytes()).hexdigest()
    assert lay.extra["sheets_pdf_sha256"] == pdf_sha


def test_pairs_sit_side_by_side(printed: Printed) -> None:
    if printed.layout.extra["layout"] == "adversarial-only":
        assert {t.role for s in printed.layout.sheets for t in s.tiles} == {"adv"}
        return
    right_total = 0
    for s in printed.layout.sheets:
        by_item: dict[str, dict[str, list[float]]] = {}
        for t in s.tiles:
            by_item.setdefault(t.item, {})[t.role] = t.box_mm
        right = 0
        for boxes in by_item.values():
            clean, adv = boxes["clean"], boxes["adv"]
            left, other = (adv, clean) if adv[0] < clean[0] else (clean, adv)
            assert clean[1] == adv[1] and left[0] + left[2] < other[0] < left[0] + left[2] + 10
            right += clean[0] > adv[0]
        # counterbalanced: clean on the right in half of the pairs of every sheet (within one)
        assert abs(2 * right - len(by_item)) <= 1, (s.sheet_id, right, len(by_item))
        right_total += right
    n = sum(len(s.tiles) // 2 for s in printed.layout.sheets)
    assert abs(2 * right_total - n) <= 1  # and across the batch


# -- measured on the 300 dpi render ---------------------------------------------


def test_every_marker_is_found_where_layout_says(printed: Printed) -> None:
    for s in printed.layout.sheets:
        found = detect(cv2.cvtColor(printed.render(s.page), cv2.COLOR_RGB2GRAY), printed.layout.aruco_dictionary)
        assert set(found) == {m.id for m in s.markers}
        for m in s.markers:
            err_mm = np.abs(found[m.id] - mm_to_px(m.corners_mm)) / PX_PER_MM
            assert err_mm.max() < TOL_MM, (m.id, err_mm)


def test_markers_have_a_white_quiet_zone(printed: Printed) -> None:
    size = printed.layout.marker_size_mm
    module = size / 6  # 4x4 bits and a one-module border
    for s in printed.layout.sheets:
        gray = cv2.cvtColor(printed.render(s.page), cv2.COLOR_RGB2GRAY)
        for m in s.markers:
            box = [*m.corners_mm[0], size, size]
            ring, _, _ = crop_mm(gray, box, module - 0.1)
            inset = int((module - 0.1) * PX_PER_MM) - 1
            ring = ring.copy()
            ring[inset:-inset, inset:-inset] = 255  # the marker and its anti-aliased edge
            assert ring.min() >= 250, m.id


def test_sheet_is_located_with_a_corner_covered(printed: Printed) -> None:
    s = printed.layout.sheets[0]
    img = printed.render(s.page).copy()
    covered = s.markers[0]  # top-left corner
    box = [*covered.corners_mm[0], printed.layout.marker_size_mm, printed.layout.marker_size_mm]
    crop, _, _ = crop_mm(img, box, 2.0)
    crop[:] = 255
    found = detect(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), printed.layout.aruco_dictionary)
    assert covered.id not in found and len(found) == 7
    known = {m.id: m.corners_mm for m in s.markers}
    src = np.concatenate([np.asarray(known[i], np.float64) for i in found])
    dst = np.concatenate([found[i] for i in found])
    hom, _ = cv2.findHomography(src, dst)
    for t in s.tiles:
        x, y, w, h = t.box_mm
        pts = np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]], np.float64)
        err = np.abs(cv2.perspectiveTransform(pts, hom)[0] - mm_to_px(pts[0])) / PX_PER_MM
        assert err.max() < TOL_MM


def test_tile_boxes_measured_from_render(printed: Printed) -> None:
    pad = 0.8  # captions start 1 mm below a tile
    for s in printed.layout.sheets:
        img = printed.render(s.page)
        for t in s.tiles:
            crop, x0, y0 = crop_mm(img, t.box_mm, pad)
            dark = crop.max(axis=2) < 100  # the black frame painted into every image
            cols = np.flatnonzero(dark.mean(axis=0) > 0.5)
            rows = np.flatnonzero(dark.mean(axis=1) > 0.5)
            measured = np.array([x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1]) / PX_PER_MM
            x, y, w, h = t.box_mm
            assert np.abs(measured - [x, y, x + w, y + h]).max() < TOL_MM, (t.item, t.role, measured)


def test_embedded_images_equal_the_pngs(printed: Printed) -> None:
    for s in printed.layout.sheets:
        page = printed.pdf[s.page]
        height_pt = page.get_height()
        objs = list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]))
        placed = {}
        for o in objs:
            left, bottom, right, top = o.get_bounds()
            placed[(round(left / PT_PER_MM, 1), round((height_pt - top) / PT_PER_MM, 1))] = o
        assert len(objs) == len(s.tiles) + sum(p.kind == "detail" for p in s.calibration)
        for t in s.tiles:
            o = placed[(round(t.box_mm[0], 1), round(t.box_mm[1], 1))]
            left, bottom, right, top = o.get_bounds()
            assert (right - left) / PT_PER_MM == pytest.approx(t.box_mm[2], abs=0.01)
            assert (top - bottom) / PT_PER_MM == pytest.approx(t.box_mm[3], abs=0.01)
            assert list(o.get_filters()) == ["FlateDecode"]
            png = np.asarray(Image.open(printed.batch_dir / t.image).convert("RGB"))
            assert tuple(o.get_px_size()) == (png.shape[1], png.shape[0])
            embedded = np.asarray(o.get_bitmap(render=False).to_pil().convert("RGB"))
            np.testing.assert_array_equal(embedded, png)


def test_qr_payload_decodes_from_render(printed: Printed) -> None:
    for s in printed.layout.sheets:
        crop, x0, y0 = crop_mm(printed.render(s.page), s.qr["box_mm"], 4.0)
        text, points, _ = cv2.QRCodeDetector().detectAndDecode(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY))
        assert text == s.qr["payload"]
        x, y, w, h = s.qr["box_mm"]
        pts = (points.reshape(-1, 2) + [x0 + 0.5, y0 + 0.5]) / PX_PER_MM
        assert pts.min(axis=0) == pytest.approx([x, y], abs=0.5)
        assert pts.max(axis=0) == pytest.approx([x + w, y + h], abs=0.5)


def test_qr_code_has_white_paper_around_it(printed: Printed) -> None:
    """Nothing (tiles, captions, strip, markers) comes within 3.5 mm of the QR code."""
    for s in printed.layout.sheets:
        gray = cv2.cvtColor(printed.render(s.page), cv2.COLOR_RGB2GRAY)
        ring, _, _ = crop_mm(gray, s.qr["box_mm"], 3.5)
        inset = int(3.5 * PX_PER_MM) - 2
        ring = ring.copy()
        ring[inset:-inset, inset:-inset] = 255  # the symbol and its anti-aliased edge
        assert ring.min() >= 250


def test_calibration_patches_print_their_nominal_values(printed: Printed) -> None:
    s = printed.layout.sheets[-1]
    greys = [p for p in s.calibration if p.kind == "grey"]
    levels = [p.rgb[0] for p in greys]
    assert len(greys) >= 11 and levels[0] == 0 and levels[-1] == 255 and levels == sorted(levels)
    colours = {p.name: p.rgb for p in s.calibration if p.kind == "colour"}
    assert colours == {
        "red": [255, 0, 0], "green": [0, 255, 0], "blue": [0, 0, 255], "cyan": [0, 255, 255],
        "magenta": [255, 0, 255], "yellow": [255, 255, 0], "white": [255, 255, 255], "black": [0, 0, 0],
    }  # fmt: skip
    img = printed.render(s.page)
    for p in greys + [p for p in s.calibration if p.kind == "colour"]:
        x, y, w, h = p.box_mm
        inner, _, _ = crop_mm(img, [x + w / 4, y + h / 4, w / 2, h / 2], 0.0)
        assert np.abs(inner.reshape(-1, 3).astype(int) - p.rgb).max() <= 2, p.name
    details = [p for p in s.calibration if p.kind == "detail"]
    assert details
    for p in details:
        inner, _, _ = crop_mm(img, p.box_mm, -0.5)
        assert inner.min() < 64 and inner.max() > 192  # black and white single-pixel detail


def test_ruler_measures_100_mm(printed: Printed) -> None:
    ruler = printed.layout.extra["ruler_mm"]
    (x, y), length = ruler["start"], ruler["length"]
    assert length == 100.0
    img = cv2.cvtColor(printed.render(printed.layout.sheets[0].page), cv2.COLOR_RGB2GRAY)
    row = img[int(round((y - 2.5) * PX_PER_MM)), int((x - 2) * PX_PER_MM) : int((x + length + 2) * PX_PER_MM)]
    dark = np.flatnonzero(row < 128)
    runs = np.split(dark, np.flatnonzero(np.diff(dark) > 1) + 1)  # only the centimetre ticks are this tall
    centres = np.array([r.mean() for r in runs])
    assert len(runs) == 11
    assert (centres[-1] - centres[0]) / PX_PER_MM == pytest.approx(100.0, abs=0.1)


def test_captions_name_item_attack_and_eps(printed: Printed) -> None:
    for s in printed.layout.sheets:
        text = printed.pdf[s.page].get_textpage().get_text_range()
        for t in s.tiles:
            assert t.item in text
        assert text.count("fgsm \u00b7 eps 16/255") == len(s.tiles)
        assert "adversarial \u00b7" in text and ("clean \u00b7" in text) == (printed.layout.extra["layout"] == "pairs")
        assert "Print at 100% / actual size; do not fit to page" in text


def test_cover_page_states_batch_and_print_settings(printed: Printed) -> None:
    text = printed.pdf[0].get_textpage().get_text_range()
    alone = pdfium.PdfDocument(str(printed.batch_dir / "cover.pdf"))  # the same page, written alone
    assert len(alone) == 1 and alone[0].get_textpage().get_text_range() == text
    w, h = PAPER_MM[printed.paper]
    needles = ("btest-print", "fgsm", "16", "lite0", "efficientnet-lite0", printed.layout.aruco_dictionary)
    needles += ("100%", "Actual size", "Fit to page", "matte", "sRGB", "colour management", f"{w:g} x {h:g} mm")
    for needle in needles:
        assert needle in text, needle
    assert "Items 4" in " ".join(text.split())

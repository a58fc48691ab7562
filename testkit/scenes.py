"""Synthetic printed sheets and camera frames for the capture tests and bench.

Not a test module. It builds a :class:`Layout` with ArUco markers at known
millimetre positions, renders each sheet onto a white page raster, and projects
the page into a camera frame through a pinhole camera with a known pose, so the
true homography (mm -> frame px) and viewing angle are known.

Raster convention: pixel ``j`` of a page rendered at ``ppm`` pixels per mm covers
``[j/ppm, (j+1)/ppm)`` mm, so its centre (OpenCV's integer coordinate) is at mm
``(j + 0.5) / ppm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from contracts.layout import Layout, Marker, Sheet, Tile, save_layout
from contracts.manifest import load_batch
from contracts.preprocess import PreprocessSpec

DICT = "DICT_4X4_1000"


def make_sheet(
    batch_dir: Path,
    sheet_id: str,
    page: int,
    marker_ids: list[int],
    *,
    cols: int = 3,
    rows: int = 2,
    tile_mm: float = 40.0,
    gap_mm: float = 6.0,
    marker_mm: float = 18.0,
    margin_mm: float = 6.0,
    item_offset: int = 0,
    qr_payload: str | None = None,
) -> Sheet:
    """A sheet with markers in the four corners (and more along the edges) and a grid of tiles.

    Tiles take the batch's items in order, clean then adversarial, from ``item_offset``.
    """
    batch = load_batch(batch_dir)
    band = margin_mm + marker_mm + gap_mm
    width = 2 * band + cols * tile_mm + (cols - 1) * gap_mm
    height = 2 * band + rows * tile_mm + (rows - 1) * gap_mm
    m0, m1x, m1y = margin_mm, width - margin_mm - marker_mm, height - margin_mm - marker_mm
    spots = [(m0, m0), (m1x, m0), (m1x, m1y), (m0, m1y), ((width - marker_mm) / 2, m0), ((width - marker_mm) / 2, m1y)]
    markers = []
    for mid, (x, y) in zip(marker_ids, spots, strict=True):
        s = marker_mm
        markers.append(Marker(id=mid, corners_mm=[[x, y], [x + s, y], [x + s, y + s], [x, y + s]]))
    tiles = []
    slots = [(it, role) for it in batch.items for role in ("clean", "adv")]
    for k in range(cols * rows):
        it, role = slots[(item_offset + k) % len(slots)]
        r, c = divmod(k, cols)
        box = [band + c * (tile_mm + gap_mm), band + r * (tile_mm + gap_mm), tile_mm, tile_mm]
        tiles.append(Tile(item=it.id, role=role, image=it.image(role).path, box_mm=box))
    qr = None
    if qr_payload is not None:
        qs = band - margin_mm - 2
        qr = {"payload": qr_payload, "box_mm": [width / 2 + marker_mm, height - margin_mm - qs, qs, qs]}
    return Sheet(sheet_id=sheet_id, page=page, size_mm=[width, height], markers=markers, tiles=tiles, qr=qr)


def make_layout(
    batch_dir: Path, n_sheets: int = 1, first_id: int = 0, save: bool = True, qr: bool = False, **kw: Any
) -> Layout:
    """A layout of ``n_sheets`` sheets with 6 markers each, ids from ``first_id``; saved as layout.json."""
    batch = load_batch(batch_dir)
    sheets = []
    per = int(kw.get("cols", 3)) * int(kw.get("rows", 2))
    for s in range(n_sheets):
        ids = list(range(first_id + 6 * s, first_id + 6 * s + 6))
        payload = f"photoproof:{batch.batch_id}:{s}" if qr else None
        sheets.append(
            make_sheet(batch_dir, f"{batch.batch_id}/s{s}", s, ids, item_offset=s * per, qr_payload=payload, **kw)
        )
    layout = Layout(
        batch_id=batch.batch_id,
        paper="custom",
        aruco_dictionary=DICT,
        marker_size_mm=float(kw.get("marker_mm", 18.0)),
        sheets=sheets,
    )
    if save:
        save_layout(batch_dir, layout)
    return layout


def render_sheet(batch_dir: Path, sheet: Sheet, ppm: float = 4.0, marker_scale: float = 1.0) -> np.ndarray:
    """The sheet as a white BGR page raster at ``ppm`` pixels per mm.

    ``marker_scale`` draws every marker that much larger or smaller about its centre
    than ``layout.json`` says (to test the scale warning).
    """
    W, H = round(sheet.size_mm[0] * ppm), round(sheet.size_mm[1] * ppm)
    page = np.full((H, W, 3), 255, np.uint8)
    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, DICT))
    for m in sheet.markers:
        c = np.asarray(m.corners_mm)
        side = (c[1, 0] - c[0, 0]) * marker_scale
        cx, cy = c.mean(axis=0)
        x0, y0, n = round((cx - side / 2) * ppm), round((cy - side / 2) * ppm), round(side * ppm)
        img = cv2.aruco.generateImageMarker(d, m.id, n, borderBits=1)
        page[y0 : y0 + n, x0 : x0 + n] = img[..., None]
    for t in sheet.tiles:
        x, y, w, h = t.box_mm
        x0, y0, n = round(x * ppm), round(y * ppm), round(w * ppm)
        im = Image.open(batch_dir / t.image).convert("RGB").resize((n, n), Image.Resampling.BICUBIC)
        page[y0 : y0 + n, x0 : x0 + n] = np.asarray(im)[..., ::-1]
    if sheet.qr:  # the symbol fills the box, as printouts draws it
        x, y, w, h = sheet.qr["box_mm"]
        q = cv2.QRCodeEncoder.create().encode(sheet.qr["payload"])
        dark = np.flatnonzero((q < 128).any(axis=1))
        q = q[dark[0] : dark[-1] + 1, dark[0] : dark[-1] + 1]
        n = round(w * ppm)
        q = cv2.resize(q, (n, n), interpolation=cv2.INTER_NEAREST)
        x0, y0 = round(x * ppm), round(y * ppm)
        page[y0 : y0 + n, x0 : x0 + n] = q[..., None]
    return page


def render_pdf_page(pdf_path: Path, page: int, ppm: float = 6.0) -> np.ndarray:
    """Page ``page`` of a PDF (e.g. ``sheets.pdf``) as a BGR raster at
    ``ppm`` pixels per mm, for :func:`compose_frame`.
    """
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        rgb = pdf[page].render(scale=ppm * 25.4 / 72.0, rev_byteorder=True).to_numpy()[..., :3]
    finally:
        pdf.close()
    return np.ascontiguousarray(rgb[..., ::-1])


def camera_K(width: int = 1280, height: int = 720) -> np.ndarray:
    return np.array([[float(width), 0, width / 2], [0, float(width), height / 2], [0, 0, 1.0]])


def pose_homography(
    size_mm: list[float],
    *,
    tilt_deg: float = 0.0,
    tilt_axis: str = "y",
    roll_deg: float = 0.0,
    fill: float = 0.8,
    shift: tuple[float, float] = (0.0, 0.0),
    frame: tuple[int, int] = (1280, 720),
) -> np.ndarray:
    """Homography mm -> frame px of a sheet seen by a pinhole camera (focal = frame width).

    The sheet is tilted out of plane by ``tilt_deg`` about ``tilt_axis``, rolled in
    plane by ``roll_deg``, and placed so that its larger extent fills about
    ``fill`` of the frame height; ``shift`` moves it by that fraction of the frame.
    """
    fw, fh = frame
    K = camera_K(fw, fh)
    t, r = math.radians(tilt_deg), math.radians(roll_deg)
    if tilt_axis == "y":
        Rt = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    else:
        Rt = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    Rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    R = Rz @ Rt
    w, h = size_mm
    Z = fw * max(w, h) / (fill * fh)
    tvec = np.array([shift[0] * fw * Z / fw, shift[1] * fh * Z / fw, Z])
    C = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1.0]])
    H = K @ np.column_stack([R[:, 0], R[:, 1], tvec]) @ C
    return H / H[2, 2]


def view_angle(H: np.ndarray, point_mm: tuple[float, float], frame: tuple[int, int] = (1280, 720)) -> float:
    """True viewing angle of a point of the sheet (for pose_homography frames)."""
    K = camera_K(*frame)
    B = np.linalg.solve(K, H)
    n = np.cross(B[:, 0], B[:, 1])
    p = B @ np.array([point_mm[0], point_mm[1], 1.0])
    return math.degrees(math.acos(abs(float(n @ p)) / (np.linalg.norm(n) * np.linalg.norm(p))))


def compose_frame(
    pages: list[tuple[np.ndarray, np.ndarray]],
    ppm: float = 4.0,
    frame: tuple[int, int] = (1280, 720),
    *,
    blur_sigma: float = 0.0,
    noise_std: float = 0.0,
    jpeg_quality: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Warp each ``(page_raster, H_mm_to_frame)`` into a grey textured frame; blur, noise and JPEG."""
    fw, fh = frame
    rng = np.random.default_rng(seed)
    bg = cv2.resize(
        rng.integers(60, 140, (fh // 16, fw // 16, 3), dtype=np.uint8), (fw, fh), interpolation=cv2.INTER_LINEAR
    )
    out = bg.copy()
    raster_to_mm = np.array([[1 / ppm, 0, 0.5 / ppm], [0, 1 / ppm, 0.5 / ppm], [0, 0, 1.0]])
    for page, H in pages:
        M = H @ raster_to_mm
        warped = cv2.warpPerspective(page, M, (fw, fh), flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(np.full(page.shape[:2], 255, np.uint8), M, (fw, fh), flags=cv2.INTER_LINEAR)
        a = (mask.astype(np.float32) / 255.0)[..., None]
        out = (warped * a + out * (1 - a)).astype(np.uint8)
    if blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur_sigma)
    if noise_std > 0:
        out = np.clip(out + rng.normal(0, noise_std, out.shape), 0, 255).astype(np.uint8)
    if jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        assert decoded is not None  # we just encoded it
        out = decoded
    return out


def reference_crop(batch_dir: Path, tile: Tile, size: int) -> np.ndarray:
    """The tile's PNG resized to ``size`` (what a perfect photograph would give), RGB uint8."""
    im = Image.open(batch_dir / tile.image).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(im)


# -- tiny ONNX models ---------------------------------------------------------


def tiny_classifier(
    path: Path,
    *,
    size: int = 32,
    n_classes: int = 1000,
    layout: str = "NCHW",
    metadata: bool = True,
    name: str = "tiny",
    spec: PreprocessSpec | None = None,
    classes: list[str] | None = None,
    static_size: bool = True,
) -> Path:
    """A weight-light image classifier: global average pool, then a 3 x C matrix (runs in microseconds).

    With ``metadata`` it carries the Photoproof ONNX metadata (preprocessing spec,
    class names, model name) like the lead's export does.
    """
    rng = np.random.default_rng(0)
    W = numpy_helper.from_array(rng.standard_normal((3, n_classes)).astype(np.float32) * 4, "W")
    nodes = []
    x = "input"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", ["input"], ["nchw"], perm=[0, 3, 1, 2]))
        x = "nchw"
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["logits"]),
    ]
    s: str | int = size if static_size else "S"
    shape: list[str | int | None] = ["N", 3, s, s] if layout == "NCHW" else ["N", s, s, 3]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", n_classes])],
        [W],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        import json

        sp = spec or PreprocessSpec(input_size=size, layout=layout)  # type: ignore[arg-type]  # a str here: tests also build malformed layouts
        if classes is None and n_classes == 1000:  # it stands for an ImageNet model: capture maps labels by name
            from contracts.classes import imagenet_names

            classes = list(imagenet_names())
        names = classes or [f"class {i}" for i in range(n_classes)]
        helper.set_model_props(
            model,
            {"photoproof.preprocess": sp.to_json(), "photoproof.classes": json.dumps(names), "photoproof.model": name},
        )
    onnx.save(model, str(path))
    return path


def identity_model(path: Path, size: int = 32) -> Path:
    """An ONNX model that returns its image input: not an image classifier."""
    shape: list[str | int | None] = ["N", 3, size, size]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])],
        "ident",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@dataclass
class Scene:
    """A rendered frame and the ground truth behind it."""

    frame: np.ndarray
    H: dict[str, np.ndarray]  # sheet_id -> true mm -> frame homography


def scene(
    batch_dir: Path, layout: Layout, poses: dict[str, dict[str, Any]], ppm: float = 4.0, **frame_kw: Any
) -> Scene:
    """Render the sheets named in ``poses`` (sheet_id -> pose_homography kwargs) into one frame."""
    pages, Hs = [], {}
    for s in layout.sheets:
        if s.sheet_id in poses:
            H = pose_homography(s.size_mm, **poses[s.sheet_id])
            pages.append((render_sheet(batch_dir, s, ppm), H))
            Hs[s.sheet_id] = H
    return Scene(frame=compose_frame(pages, ppm, **frame_kw), H=Hs)

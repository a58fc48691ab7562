"""Sheets laid out for a camera and a model: ``photoproof print --frame-size 1280x720 --model lite2``.

A tile can only be judged when the camera gives it enough pixels: the capture's size
gate asks for a side of at least ``MIN_TILE_FRACTION`` of the model's input size
(``capture.sheets.quality``, measured by ``bench/gates.py``). The gate is the floor;
through a whole webcam channel (print, pose, light, blur, noise, MJPEG:
``bench/stages.py --curve``) clean accuracy keeps rising to ``PLATEAU_TILE_FRACTION``
of the input size, where lite2 is back within a point of digital
(``docs/physical-fidelity.md``), so the layout aims there. When a sheet fills
``FRAME_FILL`` of the frame along its limiting side, one millimetre of paper spans
``FRAME_FILL * min(W / paper_w, H / paper_h)`` camera pixels; the tile is made
``VIEW_MARGIN x PLATEAU_TILE_FRACTION x input size`` of those (the margin keeps tiles
seen up to 35° off the sheet's normal at the target). Both orientations of the paper
are tried (a 16:9 frame sees a landscape sheet larger): among those that reach the
target, the one with the most items per sheet wins; when none does, the largest tile
that fits (it must still clear ``VIEW_MARGIN x`` the gate), and the plan says so.
The tile then grows to the largest size that keeps the same number of items on a
sheet: the same paper, more camera pixels per tile.
Tiles never shrink below ``MIN_PRINT_TILE_MM``: a 224-pixel image then
keeps about 1.6 cells of a 150-lpi printer screen per image pixel.

Torch-free: a zoo name's input size comes from ``contracts.preprocess``, an
``.onnx`` file's from its metadata (the spec ``photoproof models export`` stores)
or its static input shape.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from console.options import DEFAULT_CAMERA, DEFAULT_TARGET
from contracts.errors import UserError

# shared with capture's resolution warning and craft's default EOT range (VIEW_MARGIN: the oblique-view margin)
from contracts.framing import EOT_RANGE as EOT_RANGE
from contracts.framing import FRAME_FILL, PLATEAU_TILE_FRACTION, VIEW_MARGIN, eot_tile_px, focal_px
from contracts.preprocess import ZOO_INPUT_SIZES, PreprocessSpec
from printouts import blocks as bl
from printouts import geometry as geo

MIN_PRINT_TILE_MM = 60.0  # the default tile: never print smaller, whatever the camera
# The capture's size gate, as a fraction of the model's input size (capture.sheets.quality.MIN_TILE_FRACTION;
# the printouts stage does not import capture, a test checks that the two agree).
MIN_TILE_FRACTION = 0.75
# Where clean accuracy through the whole office-webcam channel levels off (bench/stages.py --curve, 20 photos
# x 6 draws, with the ISP stage; intervals clustered by photo): lite2 77 % at 1.0 x, 83 % at 1.25 x, 93 % at 1.5 x,
# 94 % [81-98] at 1.75 x (digital 90 %); lite1 88 % [68-96] at 1.75 x (digital 95 %). Resolution alone
# (bench/gates.py: blur only) levels off earlier, at 1.25 x; the camera's noise and JPEG cost less the more pixels
# a tile gets. The size the layout aims at.
# PLATEAU_TILE_FRACTION (contracts.framing) = 1.75: the size the layout aims at.


@dataclass(frozen=True)
class CameraPlan:
    """The paper and tile size chosen for a camera and a model (recorded in ``layout.json`` as ``extra.camera``)."""

    width: int
    height: int
    model: str
    input_size: int
    min_tile_px: int
    frame_fill: float
    paper: str
    tile_mm: float
    tile_px: float  # the tile's side in camera pixels when the sheet fills ``frame_fill`` of the frame
    items_per_sheet: int
    target_px: int = 0  # PLATEAU_TILE_FRACTION x input size: the side the layout aims at (0: an old layout.json)
    # "sheet": hold the camera so that the whole sheet fills ``frame_fill`` of the frame; "block": a dense sheet
    # (printouts.blocks) framed one pair and its four markers at a time, from ``distance_mm``
    framing: str = "sheet"
    distance_mm: float = 0.0  # camera to paper for that framing, with a DIAGONAL_FOV_DEG lens (0: an old layout.json)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sentence(self) -> str:
        """One line for the console and the cover page: how to hold the camera, and what the tiles then get."""
        head = f"laid out for a {self.width}x{self.height} camera and {self.model} ({self.input_size} px input)"
        tile = f"a {self.tile_mm:g} mm tile"
        gate = f"{self.tile_px:.0f} camera pixels; the capture gate needs >= {self.min_tile_px}"
        if self.framing == "block":
            line = (
                f"{head}: {self.items_per_sheet} pairs per {self.paper} sheet, each with four markers of its own; hold "
                f"the camera about {self.distance_mm / 10:.0f} cm from the paper, so that one pair and its four "
                "markers fill the frame, and move from pair to pair (once per sheet, step back to frame its bottom "
                f"row with the calibration strip and QR code): {tile} then spans about {gate}"
            )
            why = ""
        else:
            away = f" (about {self.distance_mm / 10:.0f} cm away)" if self.distance_mm else ""
            fill = f"with the sheet filling {100 * self.frame_fill:.0f} % of the frame{away}"
            line = f"{head}: {fill}, {tile} spans about {gate}"
            why = " the largest tile that fits is smaller, so"
        if self.target_px and self.tile_px < self.target_px:
            line += (
                f", and clean accuracy holds from about {self.target_px} px:{why} expect the camera to cost clean "
                "accuracy (use a camera with more pixels, or photos instead of video)"
            )
        return line


def model_input_size(model: str) -> tuple[str, int]:
    """The name and input size of a zoo model or an ``.onnx`` file (read without onnxruntime or torch)."""
    if model in ZOO_INPUT_SIZES:
        return model, ZOO_INPUT_SIZES[model]
    path = Path(model)
    if path.suffix.lower() != ".onnx":
        raise UserError(f"--model {model!r}: expected a zoo name ({', '.join(ZOO_INPUT_SIZES)}) or an .onnx file")
    if not path.is_file():
        raise UserError(f"--model {model}: no such file")
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # a hostile or truncated file: any parser error is the file's fault
        raise UserError(f"--model {model}: not a readable ONNX model ({type(e).__name__}); export it again") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    name = meta.get("photoproof.model") or path.stem
    if "photoproof.preprocess" in meta:
        return name, PreprocessSpec.from_json(meta["photoproof.preprocess"]).input_size
    try:
        dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    except (IndexError, AttributeError):
        dims = []
    sides = [d for d in dims[1:] if d > 3]
    if len(sides) == 2 and sides[0] == sides[1]:
        return name, int(sides[0])
    raise UserError(
        f"--model {model}: its input size is neither in its metadata nor a static square input; pass a zoo name or "
        "--tile-mm"
    )


def _px_per_mm(camera: tuple[int, int], paper_mm: tuple[float, float], fill: float) -> float:
    return fill * min(camera[0] / paper_mm[0], camera[1] / paper_mm[1])


def _rank(plan: CameraPlan) -> tuple[bool, float, float]:
    """Plans that reach the target first; among those, the most items per sheet; else the largest tile."""
    reached = plan.tile_px >= VIEW_MARGIN * plan.target_px
    return (True, plan.items_per_sheet, plan.tile_px) if reached else (False, plan.tile_px, plan.items_per_sheet)


def dense_plan(
    camera: tuple[int, int], model: str, paper: str, aspect: float = 1.0, fill: float = FRAME_FILL
) -> CameraPlan:
    """A dense sheet (``printouts.blocks``) for ``camera`` and ``model``: the most pairs per page.

    Tiles are ``MIN_PRINT_TILE_MM`` (grown while the count per page stays the same): framed one block
    at a time, a tile's side in camera pixels depends on the frame's width, not on the tile's size in
    millimetres, so a larger tile would only cost paper. When the whole sheet framed at ``fill`` already
    gives tiles the target, the plan says to frame it whole (a 12 MP still); otherwise to fill the
    frame with one block, and how far from the paper that is.

    Raises:
        UserError: when not one pair fits the paper, or a block filling the frame misses the gate.
    """
    name, size = model_input_size(model)
    need = math.ceil(MIN_TILE_FRACTION * size)
    target = math.ceil(PLATEAU_TILE_FRACTION * size)
    base = paper.removesuffix("-landscape")
    best: CameraPlan | None = None
    f = focal_px(camera)
    for key in (base, f"{base}-landscape"):
        if not bl.pairs_per_sheet(key, MIN_PRINT_TILE_MM, aspect):
            continue
        tile = bl.largest_tile(key, MIN_PRINT_TILE_MM, aspect)
        ppm = _px_per_mm(camera, geo.paper_size(key), fill)
        framing = "sheet"
        if tile * ppm < VIEW_MARGIN * target:
            ppm, framing = _px_per_mm(camera, bl.block_size_mm(tile, aspect), fill), "block"
        plan = CameraPlan(
            camera[0], camera[1], name, size, need, fill, key, float(tile), round(tile * ppm, 1),
            bl.pairs_per_sheet(key, tile, aspect), target, framing, round(f / ppm, 1),
        )  # fmt: skip
        rank = (plan.items_per_sheet, plan.tile_px)  # in block framing a larger tile gains the camera little
        if plan.tile_px >= VIEW_MARGIN * need and (best is None or rank > (best.items_per_sheet, best.tile_px)):
            best = plan
    if best is None:
        raise UserError(
            f"--frame-size {camera[0]}x{camera[1]} --model {model}: one pair of {MIN_PRINT_TILE_MM:g} mm tiles filling "
            f"the frame spans under {VIEW_MARGIN * need:.0f} camera pixels, and {name} needs >= {need} (plus "
            f"{100 * (VIEW_MARGIN - 1):.0f} % for oblique views); use a camera with more pixels, or --tile-mm for "
            "whole-sheet framing"
        )
    return best


def plan_for_camera(
    camera: tuple[int, int], model: str, paper: str, layout: str, aspect: float = 1.0, fill: float = FRAME_FILL
) -> CameraPlan:
    """Choose the paper orientation and tile size for ``camera`` and ``model`` (see the module docstring).

    Pairs get a dense sheet (:func:`dense_plan`); ``adversarial-only`` a classic one, framed whole.

    Raises:
        UserError: when no tile that fits the paper reaches the gate at this camera resolution.
    """
    if layout == "pairs":
        return dense_plan(camera, model, paper, aspect, fill)
    return sheet_plan(camera, model, paper, layout, aspect, fill)


def sheet_plan(
    camera: tuple[int, int], model: str, paper: str, layout: str, aspect: float = 1.0, fill: float = FRAME_FILL
) -> CameraPlan:
    """A classic sheet (eight frame markers, ``printouts.geometry``) framed whole (see the module docstring).

    Before dense sheets, ``print --frame-size`` laid pairs out this way too: at 1920x1080 for lite2, one
    pair of 118 mm tiles per A4 sheet.
    """
    name, size = model_input_size(model)
    need = math.ceil(MIN_TILE_FRACTION * size)
    target = math.ceil(PLATEAU_TILE_FRACTION * size)
    base = paper.removesuffix("-landscape")
    best: CameraPlan | None = None
    largest = 0.0
    for key in (base, f"{base}-landscape"):
        ppm = _px_per_mm(camera, geo.paper_size(key), fill)
        top = geo.max_tile_mm(key, layout, aspect)
        largest = max(largest, top * ppm)
        tile = min(max(MIN_PRINT_TILE_MM, math.ceil(VIEW_MARGIN * target / ppm)), math.floor(top))
        if tile < MIN_PRINT_TILE_MM or tile * ppm < VIEW_MARGIN * need:
            continue
        g = geo.grid(key, tile, layout, aspect)
        while tile + 1 <= top and geo.grid(key, tile + 1, layout, aspect).units_per_sheet == g.units_per_sheet:
            tile += 1  # the same paper: a larger tile costs nothing and gives the camera more pixels
        plan = CameraPlan(
            camera[0],
            camera[1],
            name,
            size,
            need,
            fill,
            key,
            float(tile),
            round(tile * ppm, 1),
            g.units_per_sheet,
            target,
        )
        if best is None or _rank(plan) > _rank(best):
            best = plan
    if best is None:
        raise UserError(
            f"--frame-size {camera[0]}x{camera[1]} --model {model}: the largest tile that fits {base} paper spans only "
            f"{largest:.0f} camera pixels with the sheet filling {100 * fill:.0f} % of the frame, and {name} needs >= "
            f"{need} (plus {100 * (VIEW_MARGIN - 1):.0f} % for oblique views); use a camera with more pixels, larger "
            "paper, or --layout adversarial-only"
        )
    return best


def eot_mismatch(plan: CameraPlan, items: list[Any]) -> str | None:
    """A warning when EOT items were optimised for tiles far from this layout's size in camera pixels, else ``None``.

    ``craft --eot`` records the range of tile sides (camera pixels) its channel twin
    sampled (``params.eot.tile_px``: ``--eot-tile-px``, by default what the default layout for the
    profile's camera gives, ``contracts.framing.default_tile_px_range``). A layout for the camera
    that prints tiles outside ``[0.8 lo, 1.25 hi]`` photographs them at a resolution the expectation never covered;
    the warning names the ``--eot-tile-px`` range for this layout.
    """
    ranges = [
        it.params["eot"]["tile_px"]
        for it in items
        if isinstance(it.params.get("eot"), dict)
        and isinstance(it.params["eot"].get("tile_px"), list)
        and len(it.params["eot"]["tile_px"]) == 2
    ]
    if not ranges:
        return None
    want_lo, want_hi = eot_tile_px(plan.tile_px)
    lo, hi = min(float(r[0]) for r in ranges), max(float(r[1]) for r in ranges)
    if 0.8 * lo <= plan.tile_px <= 1.25 * hi:
        return None
    return (
        f"{len(ranges)} EOT item(s) were optimised through the channel twin for tiles of {lo:.0f}-{hi:.0f} camera "
        f"pixels, and this layout gives about {plan.tile_px:.0f}: their expectation did not cover this camera's view "
        "of the tiles (craft them for this layout with --eot-tile-px "
        f"{want_lo:.0f}-{want_hi:.0f}, or print with --frame-size for the camera they were crafted for)"
    )


def camera_defaults(
    tile_mm: float | None, camera: tuple[int, int] | None, model: str | None
) -> tuple[tuple[int, int] | None, str | None, list[str]]:
    """The camera and model to lay out for, and what was assumed (to say so).

    A fixed ``--tile-mm`` needs neither. Otherwise a missing camera is capture's default
    webcam mode and a missing model capture's default target, so that ``craft``, ``print``
    and ``capture`` with no options give tiles that pass the capture's size gate.
    """
    if tile_mm is not None:
        return None, None, []
    assumed = []
    if camera is None:
        camera = DEFAULT_CAMERA
        assumed.append(f"the default webcam, {DEFAULT_CAMERA[0]}x{DEFAULT_CAMERA[1]} (--frame-size WxH for another)")
    if model is None:
        model = DEFAULT_TARGET
        assumed.append(f"the default target model, {DEFAULT_TARGET} (--model for another)")
    return camera, model, assumed

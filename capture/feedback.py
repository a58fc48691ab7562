"""What a session tells a source about each frame (:class:`contracts.frames.FrameReport`), and how to draw it.

The phone page outlines each tile green when the model is fooled and red when it
sees the true class, and names the first quality gate a tile fails ("move closer",
"too steep", "blurred", ...), so that the person holding the phone knows what to
change. ``capture --preview`` and the ``--phone`` window draw the same report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from capture.coverage import Coverage
from capture.pipeline import TileKey, TileResult
from capture.sheets.hits import SheetHit, TileCrop
from capture.sheets.quality import QualityGates
from contracts.frames import FrameReport, TileView

GREEN, RED, GREY, BLACK, WHITE = (60, 200, 60), (50, 50, 230), (160, 160, 160), (0, 0, 0), (255, 255, 255)


GATE_ORDER = (
    "size",
    "angle",
    "sharpness",
    "clipped",
    "reproj",
    "pair",
)  # gate names (QualityGates.failures), most actionable first
_WORDS = {
    "size": "move closer",
    "angle": "too steep",
    "sharpness": "blurred",
    "clipped": "glare or too dark",
    "reproj": "hold still",
    "pair": "keep whole pairs in view",
}


def reject_reason(gates: QualityGates, c: TileCrop) -> str:
    """The first gate ``c`` fails, in words a person holding the camera can act on; ``""`` when it counts.

    The one reason function: the phone page, ``--preview`` and the overlay's labels all say this.
    Its own gates come first; a tile that passes them but whose clean/adversarial partner does not
    (``quality.judge_pairs``, recorded in ``c.fail``) does not count either, and says why.
    """
    own = gates.failures(c.quality, c.reproj_px)
    if own:
        return _WORDS[min(own, key=GATE_ORDER.index)]
    if c.fail:
        gate = min(c.fail, key=GATE_ORDER.index)
        return _WORDS[gate] if gate == "pair" else f"its pair: {_WORDS[gate]}"
    return ""


_VALUE = {"size": "tile_px", "angle": "angle_deg", "sharpness": "sharpness", "clipped": "clipped"}


def gate_hint(crops: Sequence[TileCrop], gates: QualityGates) -> str:
    """The status line's why: the commonest failing gate of one frame's tiles, its median value, what to do
    (``QualityGates.hint``).
    """
    failing = [c for c in crops if c.fail]
    if not failing or len(failing) * 2 < len(crops):
        return ""
    counts = {g: sum(g in c.fail for c in failing) for g in GATE_ORDER}
    gate = max(GATE_ORDER, key=lambda g: (counts[g], -GATE_ORDER.index(g)))
    values = (
        [c.reproj_px if gate == "reproj" else getattr(c.quality, _VALUE[gate]) for c in failing if gate in c.fail]
        if gate != "pair"
        else [0.0]
    )
    return gates.hint(gate, float(np.median(values)))


def build_report(
    frame_index: int,
    shape: tuple[int, ...],
    hits: Sequence[SheetHit],
    crops: Sequence[TileCrop],
    quads: Sequence[tuple[str, str, str, np.ndarray]],
    results: Mapping[TileKey, TileResult],
    good_counts: Mapping[TileKey, int],
    true_class: Mapping[str, int],
    class_names: Sequence[str],
    gates: QualityGates,
    *,
    min_good: int,
    per_tile: int | None,
    observations: int,
    good: int,
    done: bool = False,
    stopped_by: str = "",
    coverage: Coverage | None = None,
) -> FrameReport:
    """One frame's report: the measured ``crops`` (with reasons), else the outlined ``quads`` (sheet, item, role, 4 x
    2).
    """
    tiles: list[TileView] = []
    seen: set[TileKey] = set()
    entries: list[tuple[TileKey, np.ndarray, str | None]] = [
        ((c.sheet_id, c.tile.item, c.tile.role), c.quad_px, reject_reason(gates, c)) for c in crops
    ]
    entries += [((s, i, r), q, None) for s, i, r, q in quads]
    for key, quad, reason in entries:
        if key in seen:
            continue
        seen.add(key)
        r, truth = results.get(key), true_class.get(key[1])
        if r is None or truth is None:
            verdict, label, prob = "pending", "", 0.0
        else:
            verdict = "seen" if r.top1 == truth else "fooled"
            label = class_names[r.top1] if 0 <= r.top1 < len(class_names) else str(r.top1)
            prob = round(float(r.prob), 4)
        tiles.append(
            TileView(
                sheet_id=key[0],
                item=key[1],
                role=key[2],
                quad=[[round(float(x), 1), round(float(y), 1)] for x, y in np.asarray(quad)],
                verdict=verdict,
                label=label,
                prob=prob,
                reason=reason,
                good=int(good_counts.get(key, 0)),
            )
        )
    return FrameReport(
        frame_index=frame_index,
        width=int(shape[1]),
        height=int(shape[0]),
        tiles=tiles,
        sheets=[h.sheet.sheet_id for h in hits],
        min_good=min_good,
        per_tile=per_tile,
        observations=observations,
        good=good,
        done=done,
        stopped_by=stopped_by,
        **(_coverage_fields(coverage) if coverage is not None else {}),
    )


def _coverage_fields(c: Coverage) -> dict[str, Any]:
    return dict(
        sheets_seen=c.sheets_seen,
        sheets_total=c.sheets_total,
        tiles_enough=c.tiles_enough,
        tiles_total=c.tiles_total,
        enough=c.enough,
        unseen=list(c.unseen),
        failing=list(c.failing),
        progress=c.counts(),
    )


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, BLACK, 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def draw_report(frame_bgr: np.ndarray, report: FrameReport, status: str = "") -> np.ndarray:
    """A copy of the frame with the report's tiles outlined (green fooled, red seen, grey pending) and their reasons."""
    img = frame_bgr.copy()
    sx, sy = img.shape[1] / max(1, report.width), img.shape[0] / max(1, report.height)
    for t in report.tiles:
        colour = {"fooled": GREEN, "seen": RED}.get(t.verdict, GREY)
        quad = (np.asarray(t.quad) * [sx, sy]).astype(np.int32)
        cv2.polylines(img, [quad], True, colour, 1 if t.reason else 3, cv2.LINE_AA)
        x, y = int(quad[:, 0].min()), int(quad[:, 1].min())
        label = t.reason or (f"{t.label[:16]} {t.prob:.2f}" if t.label else t.role)
        _text(img, label, (x + 3, max(14, y - 5)), 0.45, colour)
    if status:
        cv2.rectangle(img, (0, 0), (img.shape[1], 24), BLACK, -1)
        _text(img, status, (6, 17), 0.5, WHITE)
    return img

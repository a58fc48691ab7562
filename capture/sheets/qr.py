"""Tell this batch's sheets from another batch's by the QR code each sheet carries.

Marker ids usually suffice (a batch's ids start at an offset drawn from its id,
see ``printouts.markers``), but two batches can share a block of ids. Each sheet
also carries ``photoproof:<batch_id>:<sheet index>`` as a QR code (ISO/IEC 18004)
at a place known from ``layout.json``. The code is read where the layout puts it,
resampled through the sheet's homography, so the decoder need not find it first.

The code also names the print: ``photoproof:<batch_id>:<sheet>:<layout_id>``
(``printouts.qr``). A batch printed more than once keeps every print's layout
(``contracts.layout.load_layouts``), so the code says which layout a photographed
sheet is read with; a sheet of this batch whose layout is not kept is refused.

Reading costs a few milliseconds, so it is not done in every frame: each
physical sheet is followed from frame to frame by where it is, and its verdict
is kept between reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from capture.sheets.hits import SheetHit
from capture.sheets.quality import quad_side_px

log = logging.getLogger(__name__)

QR_PX_PER_MODULE = 8  # the QR code is resampled to this many pixels per module before decoding
QR_RETRY_FRAMES = 5  # a code not read yet is tried again after 5 frames, then 10, 20, ... up to ``qr_every``
TRACK_FRAMES = 2  # a sheet is followed across gaps of up to this many frames


@dataclass(eq=False)  # compared by identity
class _Tracked:
    """A physical sheet followed from frame to frame, with what its QR code said."""

    sheet_id: str
    centre: np.ndarray  # frame px
    size: float  # px
    seen: int  # frame number
    read: int = -(10**9)  # frame of the last attempt to read its QR code
    wait: int = 0  # frames from ``read`` until the next attempt
    verdict: str | bool | None = None  # a layout id: this batch's, read with it; False: refused; None: not read yet


class SheetQr:
    """Each detected sheet's QR verdict, for one capture session.

    Call :meth:`start_frame`, then :meth:`check` for every sheet found in the
    frame, then :meth:`end_frame`.

    Args:
        qr_every: re-read a sheet's code every this many frames once it reads as ours (0: never read).
        payloads: every kept layout's QR payloads: payload -> (layout id, sheet id); empty: a
            code is ours when it is the payload of the sheet found (one layout).
        batch_id: this batch, to tell a sheet of an unkept print of it from another batch's.
    """

    def __init__(
        self, qr_every: int = 30, payloads: dict[str, tuple[str, str]] | None = None, batch_id: str = ""
    ) -> None:
        self.qr_every = qr_every
        self.payloads = dict(payloads or {})
        self.batch_id = batch_id
        self.foreign: set[str] = set()  # payloads of other batches' sheets seen so far
        self.unkept: set[str] = set()  # layout ids of this batch's prints whose layout is not kept
        self._decoder = cv2.QRCodeDetector()
        self._tracked: list[_Tracked] = []
        self._claimed: list[_Tracked] = []
        self._frame_no = 0
        self._warned = False

    def start_frame(self, frame_no: int) -> None:
        """Begin frame ``frame_no`` (increasing)."""
        self._frame_no = frame_no
        self._claimed = []

    def end_frame(self) -> None:
        """Forget sheets not seen for more than ``TRACK_FRAMES`` frames."""
        kept = [t for t in self._tracked if t not in self._claimed and self._frame_no - t.seen <= TRACK_FRAMES]
        self._tracked = self._claimed + kept

    def check(
        self, grey: np.ndarray, hit: SheetHit, others: Callable[[], list[SheetHit]] | None = None
    ) -> str | bool | None:
        """What ``hit``'s QR code says: the layout id it is read with, ``False`` when refused, ``None`` when not read.

        Refused: the code names another batch, another sheet, or a print of this batch
        whose layout is not kept. Two copies of one sheet (two batches, or two prints)
        are told apart by where they are. A sheet's code is read when it comes into
        view, then every ``qr_every`` frames once it reads as ours, every
        ``QR_RETRY_FRAMES`` while refused, and after 5, 10, 20, ... frames while it has
        not been read. ``others``: the same sheet fitted with the other kept layouts,
        whose QR codes may sit elsewhere; tried when the code is not where ``hit``'s
        layout puts it. A frame in which the code cannot be read keeps the verdict.
        Sets ``hit.qr_verified``.
        """
        t = self._follow(hit)
        qr = hit.sheet.qr or {}
        if self.qr_every > 0 and "box_mm" in qr and "payload" in qr and self._frame_no - t.read >= t.wait:
            text = self.read(grey, hit)
            for other in others() if others is not None and not text else []:
                text = self.read(grey, other)
                if text:
                    break
            if text:
                t.verdict = self._resolve(text, hit)
            t.read = self._frame_no
            if t.verdict is None:
                t.wait = min(self.qr_every, max(QR_RETRY_FRAMES, 2 * t.wait))
            else:
                t.wait = self.qr_every if t.verdict else min(self.qr_every, QR_RETRY_FRAMES)
        hit.qr_verified = None if t.verdict is None else t.verdict is not False
        return t.verdict

    def _resolve(self, text: str, hit: SheetHit) -> str | bool:
        """The layout id a read payload names for ``hit``'s sheet, or ``False`` (warned about once)."""
        ours = str((hit.sheet.qr or {}).get("payload", ""))
        if not self.payloads:
            if text == ours:
                return hit.layout_id or True
            self._note_foreign(text, ours)
            return False
        found = self.payloads.get(text)
        if found is not None and found[1] == hit.sheet.sheet_id:
            return found[0]
        parts = text.split(":")
        if len(parts) >= 3 and parts[0] == "photoproof" and parts[1] == self.batch_id:
            self._note_unkept(text, parts[3].rstrip(".").lower() if len(parts) > 3 else "")
            return False
        self._note_foreign(text, ours)
        return False

    def _note_unkept(self, text: str, lid: str) -> None:
        if lid and lid in self.unkept:
            return
        self.unkept.add(lid)
        log.warning(
            "ignoring a sheet whose QR code reads %r: a print of this batch%s whose layout is not kept; restore "
            "layouts/%s.json from where it was printed, or photograph the current print",
            text,
            f" with layout {lid}" if lid else " made before layout ids",
            lid or "<id>",
        )

    def read(self, grey: np.ndarray, hit: SheetHit) -> str:
        """Decode the QR code where the layout puts it on ``hit``'s sheet; ``""`` when it cannot be read.

        The code is resampled (bicubic) to ``QR_PX_PER_MODULE`` pixels per module
        with a four-module white margin, and decoded with its corners known from
        the homography, so the decoder need not find its finder patterns: that
        reads codes down to about two camera pixels per module. A code not where
        the layout says (another layout) falls back to a search of the patch.
        """
        qr = hit.sheet.qr or {}
        x, y, w, h = (float(v) for v in qr["box_mm"])
        box = cv2.perspectiveTransform(np.array([[[x, y], [x + w, y], [x + w, y + h], [x, y + h]]], np.float64), hit.H)
        fh, fw = grey.shape[:2]
        if (box < 0).any() or (box[0, :, 0] > fw - 1).any() or (box[0, :, 1] > fh - 1).any():
            return ""  # not wholly in the frame (a close-up of a dense sheet): nothing to read, no time spent
        n = int(qr.get("modules") or 25)
        side = n * QR_PX_PER_MODULE
        margin = 4 * QR_PX_PER_MODULE
        sx, sy = w / side, h / side
        T = np.array([[sx, 0, x - margin * sx + 0.5 * sx], [0, sy, y - margin * sy + 0.5 * sy], [0, 0, 1.0]])
        out = side + 2 * margin
        patch = cv2.warpPerspective(
            grey, hit.H @ T, (out, out), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderValue=255
        )
        a, b = margin - 0.5, margin + side - 0.5
        corners = np.array([[[a, a], [b, a], [b, b], [a, b]]], np.float32)
        try:
            text, _ = self._decoder.decode(patch, corners)
            if not text:
                text, _, _ = self._decoder.detectAndDecode(patch)
        except cv2.error:
            text = ""
        return text or ""

    def _follow(self, hit: SheetHit) -> _Tracked:
        """The tracked sheet ``hit`` continues (a copy of the same sheet seen about here lately), or a new one."""
        w, h = hit.sheet.size_mm
        corners = np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64)
        quad = cv2.perspectiveTransform(corners, hit.H).reshape(4, 2)
        centre, size = quad.mean(axis=0), quad_side_px(quad)
        best, best_d = None, 0.0
        for t in self._tracked:
            if t.sheet_id != hit.sheet.sheet_id or t in self._claimed or self._frame_no - t.seen > TRACK_FRAMES:
                continue
            d = float(np.linalg.norm(centre - t.centre))
            if d < 0.25 * max(size, t.size) and (best is None or d < best_d):
                best, best_d = t, d
        t = best or _Tracked(hit.sheet.sheet_id, centre, size, self._frame_no)
        t.centre, t.size, t.seen = centre, size, self._frame_no
        self._claimed.append(t)
        return t

    def _note_foreign(self, text: str, ours: str) -> None:
        new = text not in self.foreign
        self.foreign.add(text)
        if not self._warned:
            self._warned = True
            other = text.split(":")[1] if text.startswith("photoproof:") and text.count(":") >= 2 else text
            log.warning(
                "ignoring a sheet whose QR code reads %r (batch %s), not %r: it belongs to another batch "
                "(its markers happen to have this batch's ids)",
                text,
                other,
                ours,
            )
        elif new:
            log.debug("ignoring a sheet of another batch: its QR code reads %r", text)

"""``photoproof capture BATCH --preview SOURCE``: look through any source with the detection overlays, recording
nothing.

SOURCE is a camera index (``0``), a stream URL (``http://PHONE:8080/video``,
``rtsp://...``), a video file or a folder of photos. Each frame shows the
sheets found, every tile outlined, and the first quality gate a tile fails
("move closer", "too steep", "blurred", ...), so a camera, a phone app or a
stream can be checked before a session. No model is run and nothing is written.
With ``--headless`` it prints one line per frame instead.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

from capture.feedback import build_report, draw_report
from capture.overlay import Window, window_wanted
from capture.sheets.detect import SheetDetector
from capture.sheets.quality import QualityGates
from capture.stoprule import StopRule
from console.terminal import console
from contracts.errors import UserError
from contracts.frames import FrameReport, FrameSource
from contracts.layout import load_layout, load_layouts

log = logging.getLogger(__name__)

CROP_PX = 224  # crop side for the quality metrics (sharpness is measured at the tile's own resolution)


def preview_source(spec: str, *, width: int = 1920, height: int = 1080, fps: float = 30.0) -> FrameSource:
    """The source SOURCE names: a camera index, a URL, a folder of photos or a video file."""
    from capture.sources.files import PhotoSource, VideoSource

    text = spec.strip()
    if text.isdigit():
        from capture.sources.live import CameraSource

        return CameraSource(int(text), width=width, height=height, fps=fps)
    if "://" in text:
        from capture.sources.live import UrlSource

        return UrlSource(text)
    path = Path(text)
    if path.is_dir():
        return PhotoSource(path)
    if path.is_file():
        return VideoSource(path)
    raise UserError(f"--preview {spec!r}: not a camera index, a URL, a video file or a folder of photos")


def summary_line(report: FrameReport) -> str:
    """One line per frame: sheets, tiles, how many pass the gates, and why the others do not."""
    reasons = Counter(t.reason for t in report.tiles if t.reason)
    passed = sum(1 for t in report.tiles if t.reason == "")
    why = "".join(f"; {r}: {n}" for r, n in reasons.most_common())
    return (
        f"frame {report.frame_index}: {len(report.sheets)} sheet(s) {report.sheets}; tiles {len(report.tiles)}, good "
        f"{passed}{why}"
    )


def run_preview(
    batch_dir: Path,
    spec: str,
    *,
    frames: int | None = None,
    duration: float | None = None,
    headless: bool = False,
    gates: QualityGates | None = None,
    width: int = 1920,
    height: int = 1080,
    fps: float = 30.0,
) -> int:
    """Show (or print) every frame of SOURCE with its detections; return the number of frames seen."""
    rule = StopRule(frames, duration)
    gates = gates or QualityGates()
    detector = SheetDetector(
        load_layout(Path(batch_dir)), gates, batch_dir=Path(batch_dir), layouts=load_layouts(Path(batch_dir))
    )
    source = preview_source(spec, width=width, height=height, fps=fps)
    window = Window("photoproof preview") if window_wanted(headless) else None
    n, t0 = 0, time.monotonic()
    try:
        with source:
            for frame in source.frames():
                hits = detector.detect(frame.image)
                crops = [c for h in hits for c in detector.crop_tiles(frame.image, h, CROP_PX)]
                report = build_report(
                    frame.index,
                    frame.image.shape,
                    hits,
                    crops,
                    [],
                    {},
                    {},
                    {},
                    [],
                    gates,
                    min_good=0,
                    per_tile=None,
                    observations=0,
                    good=0,
                )
                line = summary_line(report)
                n += 1
                if window is None:
                    console.print(line, markup=False, highlight=False)
                elif not window.show(draw_report(frame.image, report, line + "  (q: quit)")):
                    break
                if rule.reason(n, time.monotonic() - t0):
                    break
    except KeyboardInterrupt:
        pass
    finally:
        if window is not None:
            window.close()
    console.print(f"preview: {n} frame(s) from {source.description}; nothing recorded", markup=False)
    return n

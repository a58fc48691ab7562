"""File frame sources: ``--photos DIR`` and ``--video FILE`` (interface: :mod:`contracts.frames`)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from capture.jpegquality import quality_from_file
from contracts.errors import UserError
from contracts.frames import Frame, FrameSource
from contracts.imageio import HEIF_SUFFIXES, UNREADABLE, has_image_header, open_rgb8

log = logging.getLogger(__name__)

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", *HEIF_SUFFIXES)
RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf", ".orf", ".rw2")  # undemosaiced: not read


def _natural_key(path: Path) -> list[object]:
    """Sort ``IMG_2.jpg`` before ``IMG_10.jpg``."""
    return [int(t) if t.isdecimal() else t.lower() for t in re.split(r"(\d+)", path.name)]


class PhotoSource(FrameSource):
    """``--photos DIR``: photos taken by hand, in name order, upright per their EXIF orientation.

    Args:
        directory: the folder of photos (JPEG, HEIC/HEIF, PNG, BMP, TIFF, WebP).
        loop: start again after the last photo (for demos and tests).
    """

    def __init__(self, directory: Path, loop: bool = False) -> None:
        self.directory = Path(directory)
        self.loop = loop
        self.description = f"photos:{self.directory}"
        self._files: list[Path] = []
        self._t0 = 0.0

    def open(self) -> None:
        self._interrupted = False
        if not self.directory.is_dir():
            raise UserError(f"--photos {self.directory}: no such folder")
        files = [p for p in self.directory.iterdir() if p.is_file()]
        self._files = sorted((p for p in files if p.suffix.lower() in PHOTO_SUFFIXES), key=_natural_key)
        raw = [p for p in files if p.suffix.lower() in RAW_SUFFIXES]
        files_s = (
            f"{len(raw)} raw file{'s' if len(raw) != 1 else ''} ({', '.join(sorted({p.suffix.lower() for p in raw}))})"
        )
        if not self._files:
            hint = f"; its {files_s} need exporting as JPEG first" if raw else ""
            raise UserError(f"--photos {self.directory}: no photos in it ({', '.join(PHOTO_SUFFIXES)}){hint}")
        if raw:
            log.warning("%s: skipping %s: export them as JPEG to use them", self.directory, files_s)
        self._check_some_readable()
        self._t0 = time.monotonic()

    def _check_some_readable(self) -> None:
        """Refuse a folder none of whose files has an image header, before a session is recorded: only the headers
        are read (Pillow opens lazily), so a folder of 12 MP stills costs milliseconds. A file with a header that
        fails to decode later is skipped with a warning, as before."""
        if any(has_image_header(path) for path in self._files):
            return
        why = [p.name for p in self._files]
        shown = ", ".join(why[:3]) + (f" and {len(why) - 3} more" if len(why) > 3 else "")
        raise UserError(
            f"--photos {self.directory}: none of its {len(why)} files is an image that can be read ({shown}); put the "
            "camera's JPEG, HEIC, PNG or TIFF photos of the sheets in it"
        )

    def frames(self) -> Iterator[Frame]:
        index = 0
        while not self.interrupted:
            any_read = False
            for path in self._files:
                if self.interrupted:
                    return
                image = self.read(path)
                if image is None:
                    continue
                any_read = True
                quality = quality_from_file(path) if path.suffix.lower() in (".jpg", ".jpeg") else None
                yield Frame(index=index, t=time.monotonic() - self._t0, image=image, jpeg_quality=quality)
                index += 1
            if not self.loop or not any_read:
                return

    @staticmethod
    def read(path: Path) -> np.ndarray | None:
        """One photo as BGR uint8, rotated per its EXIF orientation; ``None`` (and a warning) when unreadable."""
        try:
            rgb = np.asarray(open_rgb8(path))
        except UNREADABLE as e:  # corrupt, a decompression bomb, NaN pixels...: skip it, keep the session going
            log.warning("skipping %s: not a usable image (%s: %s)", path, type(e).__name__, str(e)[:160])
            return None
        return np.ascontiguousarray(rgb[..., ::-1])

    def close(self) -> None:
        self._files = []


class VideoSource(FrameSource):
    """``--video FILE``: every frame of a video file, timestamped by the video's clock.

    Args:
        path: any file OpenCV's FFmpeg backend reads (MP4, MOV, AVI, MKV...).
        loop: start again at the end (for demos and tests).
    """

    def __init__(self, path: Path, loop: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        self.description = f"video:{self.path}"
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        self._interrupted = False
        if not self.path.is_file():
            raise UserError(f"--video {self.path}: no such file")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise UserError(f"--video {self.path}: OpenCV cannot read it as a video")
        self._cap = cap

    def frames(self) -> Iterator[Frame]:
        cap = self._cap
        if cap is None:
            raise RuntimeError("VideoSource.frames() before open()")
        index, offset, last_t, in_pass = 0, 0.0, 0.0, 0
        fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        while not self.interrupted:
            ok, image = cap.read()
            if not ok or image is None:
                if not self.loop or in_pass == 0:
                    return
                offset, in_pass = last_t + 1.0 / fps, 0
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                continue
            msec = cap.get(cv2.CAP_PROP_POS_MSEC)
            last_t = offset + (msec / 1000.0 if msec and msec > 0 else in_pass / fps)
            in_pass += 1
            yield Frame(index=index, t=last_t, image=image)
            index += 1

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

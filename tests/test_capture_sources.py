"""Frame sources: photos, video, webcam errors, and an MJPEG stream that drops and comes back."""

from __future__ import annotations

import logging
import socket
import time
from itertools import islice, pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from capture.pipeline import Job, LatestSlot
from capture.sources.files import PhotoSource, VideoSource
from capture.sources.grabber import Backoff, LatestFrameGrabber
from capture.sources.live import CameraSource, UrlSource
from contracts.errors import UserError
from testkit.streams import MjpegServer


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_mjpeg_stream_drops_and_reconnects(caplog: pytest.LogCaptureFixture) -> None:
    with MjpegServer(per_connection=4) as server, caplog.at_level(logging.WARNING, logger="capture.sources.grabber"):
        src = UrlSource(server.url, open_timeout=3.0, backoff=Backoff(initial=0.05))
        levels: list[int] = []
        with src:
            assert src.live and src.description == f"url:{server.url}"
            deadline = time.monotonic() + 10
            for frame in src.frames():
                assert frame.image.shape == (48, 64, 3)
                levels.append(int(round(frame.image.mean() / 40)))
                if max(levels) >= 3 or time.monotonic() > deadline:
                    break
            assert src.reconnects >= 2
        assert levels[0] == 1 and max(levels) >= 3  # frames from the first, second and third connections
        assert levels == sorted(levels)  # never an older frame after a newer one
    assert any("stream dropped" in r.getMessage() for r in caplog.records)
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_unreachable_url_is_a_user_error_after_a_bounded_retry() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/video"
    t0 = time.monotonic()
    with pytest.raises(UserError, match=f"--url {url}: no video after trying"):
        UrlSource(url, open_timeout=1.0).open()
    assert time.monotonic() - t0 < 5.0


def test_bad_url_scheme_names_the_flag() -> None:
    with pytest.raises(UserError, match="--url ftp://x"):
        UrlSource("ftp://x/video")


def test_no_camera_at_that_index() -> None:
    t0 = time.monotonic()
    with pytest.raises(UserError, match="--camera 99: no camera at that index"):
        CameraSource(99, open_timeout=1.0).open()
    assert time.monotonic() - t0 < 10.0


def test_photos_in_natural_name_order_upright_per_exif(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name, level in (("p10.jpg", 200), ("p2.png", 100), ("p1.jpg", 50)):
        Image.fromarray(np.full((20, 40, 3), level, np.uint8)).save(tmp_path / name)
    rotated = Image.fromarray(np.full((20, 40, 3), 150, np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": a phone held upright
    rotated.save(tmp_path / "p3.jpg", exif=exif)
    (tmp_path / "p4.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    with caplog.at_level(logging.WARNING), PhotoSource(tmp_path) as src:
        frames = list(src.frames())
    assert [round(float(f.image.mean()) / 50) for f in frames] == [1, 2, 3, 4]
    assert frames[2].image.shape == (40, 20, 3)  # turned upright
    assert frames[0].image.shape == (20, 40, 3) and frames[0].image.dtype == np.uint8
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert any("p4.jpg" in r.getMessage() for r in caplog.records)


def test_photos_folder_errors_name_it(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--photos .*missing: no such folder"):
        PhotoSource(tmp_path / "missing").open()
    with pytest.raises(UserError, match="no photos in it"):
        PhotoSource(tmp_path).open()


def _video(path: Path, n: int) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for k in range(n):
        w.write(np.full((48, 64, 3), 30 * (k + 1), np.uint8))
    w.release()
    return path


def test_video_frames_with_timestamps_and_loop(tmp_path: Path) -> None:
    path = _video(tmp_path / "clip.avi", 5)
    with VideoSource(path) as src:
        frames = list(src.frames())
    assert len(frames) == 5 and [f.index for f in frames] == list(range(5))
    assert all(b.t > a.t for a, b in pairwise(frames))
    with VideoSource(path, loop=True) as src:
        looped = list(islice(src.frames(), 12))
    assert len(looped) == 12 and all(b.t > a.t for a, b in pairwise(looped))
    with pytest.raises(UserError, match="--video .*nope.mp4: no such file"):
        VideoSource(tmp_path / "nope.mp4").open()
    (tmp_path / "bad.mp4").write_bytes(b"junk")
    with pytest.raises(UserError, match="bad.mp4"):
        VideoSource(tmp_path / "bad.mp4").open()


class _FastReader:
    """A reader that makes numbered frames as fast as asked."""

    def __init__(self) -> None:
        self.n = 0

    def read(self) -> np.ndarray:
        self.n += 1
        time.sleep(0.002)
        return np.full((4, 4, 3), self.n % 256, np.uint8)

    def close(self) -> None:
        pass


def test_grabber_keeps_only_the_newest_frame_with_monotonic_times() -> None:
    with LatestFrameGrabber(lambda: _FastReader(), "fake") as g:
        got: list[tuple[int, float]] = []
        seq = 0
        while len(got) < 5:
            frame = g.wait_newer(seq, timeout=1.0)
            assert frame is not None
            seq = frame[0]
            got.append((frame[0], frame[1]))
            time.sleep(0.03)  # a slow consumer
    seqs = [s for s, _ in got]
    assert all(b - a > 1 for a, b in pairwise(seqs))  # stale frames were skipped, not queued
    assert all(b[1] > a[1] for a, b in pairwise(got))


def test_latest_slot_replaces_an_untaken_job_and_backoff_grows() -> None:
    slot = LatestSlot()
    slot.put(Job(1, []), block=False)
    slot.put(Job(2, []), block=False)
    assert slot.dropped == 1
    job = slot.take(0.01)
    assert job is not None and job.frame_idx == 2 and slot.take(0.01) is None
    b = Backoff(initial=0.25, maximum=1.0)
    assert [b.delay() for _ in range(5)] == [0.25, 0.5, 1.0, 1.0, 1.0]
    b.reset()
    assert b.delay() == 0.25


def test_a_mapped_source_maps_each_photo_and_passes_the_rest_through(tmp_path: Path) -> None:
    """``contracts.frames.MappedSource`` over real photos: each frame through ``map``; open, close, the simulation
    record and an interrupt are the inner source's."""
    from dataclasses import replace

    from contracts.frames import Frame, MappedSource

    for i in range(3):
        Image.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")

    class Inverted(MappedSource):
        def map(self, frame: Frame) -> Frame:
            return replace(frame, image=255 - frame.image)

    inner = PhotoSource(tmp_path)
    src = Inverted(inner, "inverted:" + inner.description)
    with src:
        got = [int(f.image[0, 0, 0]) for f in src.frames()]
        src.interrupt()
        assert inner.interrupted and src.interrupted
    assert got == [255, 215, 175] and src.simulation() is None and src.description.startswith("inverted:photos")

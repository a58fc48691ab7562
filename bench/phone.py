"""Phone page benchmark: frames per second through headless Chromium, the WebSocket and the session.

Chromium's fake camera plays the simulated camera's 1280x720 video of a printed
batch; the page streams it to ``PhoneCapture`` (one frame in flight: the rate is
the rate the laptop answers). Prints (asserts nothing):

1. the phone's frame rate (frames recorded / span) and the time between frames
   (median and 10-90 % range, n frames): one round trip each, i.e. canvas capture,
   JPEG encoding, the WebSocket, decoding, detection, classification and the report;
2. the same frames through ``run_capture`` from memory (no browser, no JPEG
   round trip), and the ratio of the two: the price of the phone's transport.

Usage (from the repository root)::

    python bench/phone.py [--model lite2.onnx] [--seconds 15]

Without ``--model`` a tiny onnx.helper model stands in (then classification
costs nothing and the figures are the transport's and detection's).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capture.classify import OnnxClassifier  # noqa: E402
from capture.phones import PhoneCapture  # noqa: E402
from capture.session import run_capture  # noqa: E402
from contracts.frames import Frame, FrameSource  # noqa: E402
from testkit.batch import write_batch  # noqa: E402
from testkit.chromium import Chromium, write_y4m  # noqa: E402
from testkit.scenes import tiny_classifier  # noqa: E402


class Replay(FrameSource):
    """Frames from memory, each taken when the session wants it (not live)."""

    def __init__(self, images: list[np.ndarray], n: int) -> None:
        self.images, self.n, self.description = images, n, "bench:replay"

    def open(self) -> None:
        self._interrupted = False

    def frames(self) -> Iterator[Frame]:
        t0 = time.monotonic()
        for i in range(self.n):
            yield Frame(i, time.monotonic() - t0, self.images[i % len(self.images)])

    def close(self) -> None:
        pass


def frame_times(db: Path) -> np.ndarray:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return np.array([t for (t,) in con.execute("SELECT t FROM frames ORDER BY idx")], float)
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="an .onnx classifier (default: a tiny stand-in)")
    ap.add_argument("--seconds", type=float, default=15.0)
    a = ap.parse_args()
    from channel.simulate import SimulatedCamera
    from contracts.profile import load_profile
    from printouts.sheets import print_batch

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        batch = root / "batch"
        write_batch(batch, n_items=6, size=64)
        print_batch(batch, paper="a4", tile_mm=50.0, layout="pairs", cover=False)
        with SimulatedCamera.from_batch(batch, load_profile("office-laser-webcam"), seed=1, n_frames=20) as cam:
            images = [f.image for f in cam.frames()]
        y4m = write_y4m(root / "camera.y4m", images, fps=30)
        model = a.model or tiny_classifier(root / "tiny.onnx", size=224)
        clf = OnnxClassifier(model)
        print(
            f"model {clf.name} on {clf.provider}; frames 1280x720; load average {os.getloadavg()[0]:.2f} on "
            f"{os.cpu_count()} cores"
        )

        pc = PhoneCapture(
            batch, model, clf, bind="127.0.0.1", port=0, duration=a.seconds, session="bench", cert_dir=root / "cfg"
        )
        url = pc.start()
        browser = Chromium(root / "chromium", url, y4m)
        try:
            pc.wait()
        finally:
            browser.close()
            pc.stop()
        (s,) = pc.results()
        assert s.db is not None
        t = frame_times(s.db)[1:]  # the first frame waits for the session to start
        gaps = np.diff(t)
        phone_fps = (len(t) - 1) / (t[-1] - t[0])
        print(
            f"phone page: {phone_fps:.1f} frames/s over {t[-1] - t[0]:.1f} s (n = {len(t)} frames); between frames "
            f"median {1000 * np.median(gaps):.0f} ms, 10-90 % "
            f"{1000 * np.percentile(gaps, 10):.0f}-{1000 * np.percentile(gaps, 90):.0f} ms"
        )

        n = max(30, len(t))
        r = frame_times(
            run_capture(batch, model, Replay(images, n), session_id="replay", classifier=clf, save_crops=False)
        )
        replay_fps = (len(r) - 1) / (r[-1] - r[0])
        print(f"same pipeline from memory: {replay_fps:.1f} frames/s (n = {n} frames)")
        print(f"phone / memory: {phone_fps / replay_fps:.2f}")


if __name__ == "__main__":
    main()

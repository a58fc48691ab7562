"""run_capture end to end: real OpenCV, real onnxruntime, real SQLite; SIGKILL and SIGTERM in a subprocess."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from capture.classify import OnnxClassifier
from capture.command import build_source
from capture.session import run_capture
from capture.sheets.quality import QualityGates
from capture.sources.files import PhotoSource
from capture.sources.grabber import Backoff
from capture.sources.live import UrlSource
from contracts.capturedb import open_db_readonly
from contracts.errors import UserError
from contracts.frames import Frame, FrameSource
from contracts.manifest import load_batch
from contracts.paths import sha256_file
from testkit.capture import db_rows as _rows
from testkit.capture import start_capture as _start_capture
from testkit.scenes import tiny_classifier
from testkit.streams import MjpegServer

ROOT = Path(__file__).resolve().parents[1]
GATES = QualityGates(min_sharpness=1, min_tile_px=40)


def test_capture_from_photos_records_digital_frames_observations_and_crops(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    db = run_capture(batch_dir, model, PhotoSource(photos), session_id="photos-1", gates=GATES)
    assert db == batch_dir / "captures" / "photos-1.sqlite"
    batch = load_batch(batch_dir)
    clf = OnnxClassifier(model)

    digital = {
        (i, r): (json.loads(a), json.loads(b))
        for i, r, a, b in _rows(db, "SELECT item_id, role, top5_ids, top5_probs FROM digital")
    }
    assert len(digital) == 2 * len(batch.items)
    it = batch.items[1]
    with Image.open(batch_dir / it.adv.path) as im:
        ids, probs = clf.classify(clf.spec.resize_center_crop(im)[None])
    assert digital[(it.id, "adv")][0] == ids[0].tolist()
    np.testing.assert_allclose(digital[(it.id, "adv")][1], probs[0], atol=1e-5)

    frames = _rows(db, "SELECT idx, t, sheets_found, sheets FROM frames ORDER BY idx")
    assert [f[0] for f in frames] == [0, 1, 2, 3] and [f[2] for f in frames] == [1, 1, 1, 0]
    assert json.loads(frames[0][3]) == [f"{batch.batch_id}/s0"] and all(b[1] >= a[1] for a, b in pairwise(frames))
    obs = _rows(
        db,
        "SELECT frame_idx, sheet_id, item_id, role, sharpness, tile_px, angle_deg, clipped, good, top1, top1_prob, "
        "top5_ids, top5_probs FROM observations",
    )
    assert len(obs) == 3 * 6 and {o[0] for o in obs} == {0, 1, 2}
    for o in obs:
        assert o[4] > 0 and o[5] > 40 and 0 <= o[6] < 60 and 0 <= o[7] <= 1 and o[8] in (0, 1)
        assert o[9] == json.loads(o[11])[0] and abs(o[10] - json.loads(o[12])[0]) < 1e-5
    angles = {o[0]: o[6] for o in obs if o[2] == batch.items[0].id and o[3] == "clean"}
    assert angles[0] < angles[1] < angles[2]  # the photos were taken at 0, 20 and 35 degrees

    (session,) = _rows(
        db, "SELECT id, batch_id, source, model, model_sha256, provider, started, stopped, config FROM sessions"
    )
    assert session[:6] == (
        "photos-1",
        batch.batch_id,
        f"photos:{photos}",
        "tiny",
        sha256_file(model),
        "CPUExecutionProvider",
    )
    assert session[7] is not None and session[7] >= session[6]
    cfg = json.loads(session[8])
    assert cfg["stopped_by"] == "source ended" and cfg["observations"] == 18 and cfg["gates"]["min_tile_px"] == 40

    crops = sorted((batch_dir / "captures" / "photos-1" / "crops").glob("*.png"))
    assert 6 <= len(crops) <= 12 and sorted(p.name for p in crops) == sorted(cfg["crops"])
    assert cv2.imread(str(crops[0])).shape == (48, 48, 3)
    assert all(p.name.rsplit("-", 1)[0].rsplit("-", 1)[1] in ("clean", "adv") for p in crops)


def test_a_phones_heic_photos_are_read_as_its_jpegs_are(
    setup: tuple[Path, Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """iPhones save HEIC: the same photos as HEIC (libheif's own encoder, quality 90) give the same sheets and tiles
    seen, and a raw file beside them is skipped with a word on what to do."""
    import pillow_heif

    batch_dir, model, photos = setup
    heic = tmp_path / "iphone"
    heic.mkdir()
    for jpg in sorted(photos.glob("*.jpg")):
        rgb = cv2.cvtColor(cv2.imread(str(jpg)), cv2.COLOR_BGR2RGB)
        pillow_heif.from_pillow(Image.fromarray(rgb)).save(heic / f"{jpg.stem}.HEIC", quality=90)
    (heic / "IMG_5.DNG").write_bytes(b"II*\x00" + bytes(64))
    with caplog.at_level(logging.WARNING):
        db_h = run_capture(batch_dir, model, PhotoSource(heic), session_id="heic", gates=GATES, save_crops=False)
    warned = [r.getMessage() for r in caplog.records]
    assert any("skipping 1 raw file (.dng)" in w and "JPEG" in w for w in warned), warned
    db_j = run_capture(batch_dir, model, PhotoSource(photos), session_id="jpeg", gates=GATES, save_crops=False)
    seen = "SELECT frame_idx, item_id, role FROM observations ORDER BY frame_idx, item_id, role"
    assert _rows(db_h, seen) == _rows(db_j, seen) and len(_rows(db_h, seen)) == 18
    assert [f[0] for f in _rows(db_h, "SELECT sheets_found FROM frames ORDER BY idx")] == [1, 1, 1, 0]


def test_per_tile_stops_once_every_tile_has_k_good_observations(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    db = run_capture(
        batch_dir, model, PhotoSource(photos, loop=True), per_tile=4, session_id="k4", gates=GATES, save_crops=False
    )
    counts = _rows(db, "SELECT item_id, role, SUM(good) FROM observations GROUP BY item_id, role")
    assert len(counts) == 6 and min(c[2] for c in counts) >= 4
    assert len(_rows(db, "SELECT idx FROM frames")) <= 8
    assert not (batch_dir / "captures" / "k4").exists()


def test_a_rerun_of_the_same_session_resumes(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    run_capture(batch_dir, model, PhotoSource(photos), frames=2, session_id="again", gates=GATES)
    db = run_capture(batch_dir, model, PhotoSource(photos), frames=2, session_id="again", gates=GATES)
    assert [r[0] for r in _rows(db, "SELECT idx FROM frames ORDER BY idx")] == [0, 1]  # already done: nothing added
    db = run_capture(batch_dir, model, PhotoSource(photos), frames=3, session_id="again", gates=GATES)
    assert [r[0] for r in _rows(db, "SELECT idx FROM frames ORDER BY idx")] == [0, 1, 2]
    assert _rows(db, "SELECT stopped FROM sessions")[0][0] is not None
    assert len(_rows(db, "SELECT * FROM digital")) == 6
    other = tiny_classifier(batch_dir / "other.onnx", size=32)
    with pytest.raises(UserError, match="another model"):
        run_capture(batch_dir, other, PhotoSource(photos), frames=1, session_id="again")


class _LiveFrames(FrameSource):
    """A live source that yields a few rendered frames round and round, as fast as they are taken."""

    live = True
    description = "fake-live"

    def __init__(self, images: list[np.ndarray]) -> None:
        self.images = images

    def open(self) -> None:
        self._interrupted = False

    def frames(self) -> Iterator[Frame]:
        t0, k = time.monotonic(), 0
        while not self.interrupted:
            yield Frame(index=k, t=time.monotonic() - t0, image=self.images[k % len(self.images)])
            k += 1

    def close(self) -> None:
        pass


class _SlowClassifier(OnnxClassifier):
    """Slower than any camera loop, so that the loop always outruns it."""

    def classify(self, crops_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        time.sleep(0.15)
        return super().classify(crops_rgb)


def test_live_source_classifier_takes_the_newest_crops_and_rows_stay_consistent(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    images = [cv2.imread(str(p)) for p in sorted(photos.glob("IMG_[123].jpg"))]
    db = run_capture(
        batch_dir,
        model,
        _LiveFrames(images),
        frames=40,
        classifier=_SlowClassifier(model),
        session_id="live",
        gates=GATES,
        render=True,
    )
    frames = {r[0] for r in _rows(db, "SELECT idx FROM frames")}
    classified = {r[0] for r in _rows(db, "SELECT DISTINCT frame_idx FROM observations")}
    assert frames == set(range(40))
    assert classified and classified <= frames and len(classified) < 40  # stale crops were dropped...
    per_frame = _rows(db, "SELECT frame_idx, COUNT(*) FROM observations GROUP BY frame_idx")
    assert all(n == 6 for _, n in per_frame)  # ...whole frames at a time, never half a batch
    cfg = json.loads(_rows(db, "SELECT config FROM sessions")[0][0])
    assert cfg["dropped_jobs"] > 0 and cfg["dropped_jobs"] + len(classified) == 40


def test_recording_goes_on_through_a_dropped_mjpeg_stream(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    jpegs = [p.read_bytes() for p in sorted(photos.glob("IMG_[123].jpg"))]
    with MjpegServer(per_connection=3, interval=0.03, frames=jpegs) as server:
        src = UrlSource(server.url, open_timeout=3.0, backoff=Backoff(initial=0.05))
        db = run_capture(batch_dir, model, src, frames=10, session_id="mjpeg", gates=GATES)
    assert len(_rows(db, "SELECT idx FROM frames")) == 10
    assert len(_rows(db, "SELECT * FROM observations")) > 0
    cfg = json.loads(_rows(db, "SELECT config FROM sessions")[0][0])
    assert cfg["reconnects"] >= 2 and server.connections >= 3


def test_sigkill_mid_recording_leaves_a_readable_database(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    proc, db = _start_capture(batch_dir, model, photos, "killed")
    time.sleep(1.2)  # at least one more commit
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    con = open_db_readonly(db)
    n_frames = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    n_obs = con.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
    orphans = con.execute(
        "SELECT COUNT(*) FROM observations o LEFT JOIN frames f ON f.idx = o.frame_idx AND f.session_id = o.session_id "
        "WHERE f.idx IS NULL"
    ).fetchone()[0]
    stopped = con.execute("SELECT stopped FROM sessions").fetchone()[0]
    con.close()
    assert n_frames > 0 and n_obs >= 30 and orphans == 0 and stopped is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sigterm_and_sigint_flush_and_close_cleanly(setup: tuple[Path, Path, Path], sig: signal.Signals) -> None:
    batch_dir, model, photos = setup
    proc, db = _start_capture(batch_dir, model, photos, f"stopped-{sig.name}")
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    (stopped, cfg) = _rows(db, "SELECT stopped, config FROM sessions")[0]
    assert stopped is not None and json.loads(cfg)["stopped_by"] == sig.name
    assert b"recorded" in out and b"CPUExecutionProvider" in out
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0


def test_cli_needs_exactly_one_source(tmp_path: Path) -> None:
    common = dict(
        width=1280, height=720, fps=30.0, loop=False, profile=None, seed=None, frames=None, connect_timeout=1.0
    )
    with pytest.raises(UserError, match="exactly one source.*none"):
        build_source(tmp_path, camera=None, url=None, video=None, photos=None, simulate=False, **common)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="exactly one source.*--camera, --photos"):
        build_source(tmp_path, camera=0, url=None, video=None, photos=tmp_path, simulate=False, **common)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="--profile and --seed apply to --simulate"):
        build_source(
            tmp_path, camera=None, url=None, video=None, photos=tmp_path, simulate=False, **{**common, "seed": 3}
        )  # type: ignore[arg-type]


def test_stop_event_from_another_thread(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    db = run_capture(
        batch_dir,
        model,
        PhotoSource(photos, loop=True),
        session_id="ev",
        gates=GATES,
        stop_event=stop,
        save_crops=False,
    )
    assert time.monotonic() - t0 < 20
    assert _rows(db, "SELECT stopped FROM sessions")[0][0] is not None


def test_bad_session_name_and_stop_flags_name_the_flag(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    with pytest.raises(UserError, match="--session"):
        run_capture(batch_dir, model, PhotoSource(photos), session_id="../escape")
    with pytest.raises(UserError, match="--frames: must be > 0"):
        run_capture(batch_dir, model, PhotoSource(photos), frames=0)
    assert not (batch_dir / "captures").exists()


def test_duration_stops_the_session(setup: tuple[Path, Path, Path]) -> None:
    batch_dir, model, photos = setup
    t0 = time.monotonic()
    db = run_capture(
        batch_dir,
        model,
        PhotoSource(photos, loop=True),
        duration=1.0,
        session_id="timed",
        gates=GATES,
        save_crops=False,
    )
    assert 1.0 <= time.monotonic() - t0 < 15
    (t_last,) = _rows(db, "SELECT MAX(t) FROM frames")[0]
    assert t_last < 1.5 and json.loads(_rows(db, "SELECT config FROM sessions")[0][0])["stopped_by"] == "1 s"

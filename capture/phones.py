"""``photoproof capture BATCH --phone``: one command, one scan, one capture session per phone.

The laptop serves a page over HTTPS (:mod:`capture.sources.phone`); its URL,
with a random token, is printed and shown as a QR code in the terminal and in
the live window. Every phone that opens it streams its rear camera to the
laptop and records its own session ``<base>-phone<N>`` (N in order of first
connection; ``--session NAME`` sets the base, so a re-run resumes the same
sessions). Each phone sees its tiles outlined live, the reason a tile is
rejected, its progress toward ``--per-tile K`` and a clear "done".

The run stops on Ctrl-C (or q/Esc in the window), after ``--duration`` seconds
(counted from the first frame a phone sends, not from the start of the command), or, with ``--per-tile`` or
``--frames``, once every phone that connected has finished its session.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from capture.cameraloop import Progress
from capture.classify import OnnxClassifier
from capture.facetarget import FaceTarget, check_pairing
from capture.phoneqr import qr_image, qr_terminal
from capture.session import check_layout, run_capture
from capture.sheets.quality import QualityGates
from capture.sources.phone.server import PhoneServer
from capture.sources.phone.source import PhoneSource
from capture.sources.phone.tls import lan_address, machine_certificate
from capture.stoprule import STOP_REQUESTED, WINDOW_CLOSED, StopRule
from contracts import signals
from contracts.errors import UserError
from contracts.layout import load_layout
from contracts.manifest import load_batch

log = logging.getLogger(__name__)

FINAL_GRACE_S = 2.0  # how long a run that ended by itself keeps listening for a phone that has not been told why


@dataclass
class PhoneSession:
    """One phone's session, run on its own thread."""

    source: PhoneSource
    session_id: str
    thread: threading.Thread | None = None
    db: Path | None = None
    error: BaseException | None = None
    progress: Progress | None = None
    finished: threading.Event = field(default_factory=threading.Event)


class PhoneCapture:
    """Serve the phone page and record one session per phone.

    Args:
        batch_dir, model_path, classifier: as for :func:`capture.session.run_capture` (the classifier is shared).
        bind, port: where the server listens (``port=0``: any free port).
        frames, duration, per_tile: stop conditions (see the module's docstring).
        session: the base of the session names (default: date, time and a random suffix, so that two
            laptops started in the same second never share a session).
        gates, save_crops: as for ``run_capture``.
        max_phones: phones per run.
        max_fps: frames per second one phone may send.
        cert_dir: where the certificate lives (default: the per-user config folder).
    """

    def __init__(
        self,
        batch_dir: Path,
        model_path: Path,
        classifier: OnnxClassifier | FaceTarget,
        *,
        bind: str = "0.0.0.0",
        port: int = 8443,
        frames: int | None = None,
        duration: float | None = None,
        per_tile: int | None = None,
        session: str | None = None,
        gates: QualityGates | None = None,
        save_crops: bool = True,
        max_phones: int = 8,
        max_fps: float = 30.0,
        cert_dir: Path | None = None,
        label_map: dict[str, str] | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise UserError(f"--port {port}: expected 0..65535")
        if bind == "lan":  # only the interface the QR code names
            bind = lan_address("0.0.0.0")
        self.rule = StopRule(frames, duration, per_tile)
        self.batch_dir, self.model_path, self.clf = Path(batch_dir), Path(model_path), classifier
        # run_capture's checks, made here rather than on the first phone's thread
        batch = load_batch(self.batch_dir)
        check_pairing(batch, self.batch_dir, isinstance(classifier, FaceTarget), f"--model {model_path}")
        check_layout(batch, load_layout(self.batch_dir))
        self.base = session or f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
        self.gates, self.save_crops = gates, save_crops
        self.label_map = label_map  # batch class name -> the target's (--label-map)
        self.token = secrets.token_urlsafe(16)
        self.cert = machine_certificate(cert_dir)
        self.stop_event = threading.Event()
        self.sessions: list[PhoneSession] = []
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._first: float | None = None  # when the first phone's first frame came: --duration counts from there
        self.server = PhoneServer(
            self.token,
            self.cert,
            self._on_phone,
            bind=bind,
            port=port,
            max_phones=max_phones,
            max_fps=max_fps,
            hello={"per_tile": per_tile, "frames": frames},
        )
        self.bind = bind

    @property
    def url(self) -> str:
        host = lan_address(self.bind)
        if ":" in host:
            host = f"[{host}]"
        return f"https://{host}:{self.server.port}/?t={self.token}"

    def start(self) -> str:
        """Listen; return the page's URL."""
        self.server.start()
        self._t0 = time.monotonic()
        return self.url

    def _on_phone(self, source: PhoneSource) -> None:
        s = PhoneSession(source, f"{self.base}-phone{source.phone}")
        s.thread = threading.Thread(
            target=self._run_session, args=(s,), name=f"capture-phone{source.phone}", daemon=True
        )
        with self._lock:
            self.sessions.append(s)
        s.thread.start()

    def _run_session(self, s: PhoneSession) -> None:
        def progress(p: Progress) -> None:
            s.progress = p
            with self._lock:
                if p.frames and self._first is None:
                    self._first = time.monotonic() - p.elapsed

        with self._lock:
            first = self._first
        # --duration counts from the first phone's first frame; a phone joining later gets what is left of it
        left = self.rule.duration if first is None else self.rule.remaining(time.monotonic() - first)
        try:
            s.db = run_capture(
                self.batch_dir,
                self.model_path,
                s.source,
                frames=self.rule.frames,
                duration=left,
                per_tile=self.rule.per_tile,
                headless=True,
                session_id=s.session_id,
                gates=self.gates,
                classifier=self.clf,
                save_crops=self.save_crops,
                render=False,
                on_progress=progress,
                stop_event=self.stop_event,
                label_map=self.label_map,
            )
        except BaseException as e:  # reported by wait()
            log.error("phone %d: session %s failed: %s", s.source.phone, s.session_id, e)
            s.error = e
            s.source.tell_done(
                f"the laptop stopped this session ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
            )
        finally:
            s.source.finished.set()
            s.finished.set()

    def should_stop(self) -> str:
        """Why the run should stop now (``""``: keep going)."""
        if self.stop_event.is_set():  # a full disk also sets it (every session stops): name the cause
            with self._lock:
                failed = any(isinstance(s.error, UserError) for s in self.sessions)
            return "session failed" if failed else STOP_REQUESTED
        first = self._first
        late = self.rule.out_of_time(time.monotonic() - first) if first is not None else ""
        if late:
            return late
        with self._lock:
            sessions = list(self.sessions)
        if (
            sessions
            and (self.rule.per_tile is not None or self.rule.frames is not None)
            and all(s.finished.is_set() for s in sessions)
        ):
            return "every phone finished"
        if (
            sessions
            and any(isinstance(s.error, UserError) for s in sessions)
            and all(s.finished.is_set() for s in sessions)
        ):
            return "session failed"
        return ""

    def status_lines(self) -> list[str]:
        with self._lock:
            sessions = list(self.sessions)
        if not sessions:
            return [f"{time.monotonic() - self._t0:6.1f}s  waiting for a phone to open the page"]
        out = []
        for s in sessions:
            state = "done" if s.finished.is_set() else ("recording" if s.progress else "starting")
            out.append(f"phone {s.source.phone} [{s.session_id}] {state}: " + (s.progress.line() if s.progress else ""))
            if s.progress is not None and s.progress.coverage is not None:
                out.append(f"  {s.progress.coverage.line()}")
        return out

    def wait(self, tick: Callable[[], bool] | None = None) -> str:
        """Block until a stop condition (``tick()`` returning False also stops); return what stopped the run.

        A KeyboardInterrupt (Ctrl-C) stops every session cleanly and is answered like the other stop reasons.
        """
        why = ""
        try:
            while not why:
                if tick is not None and not tick():
                    why = WINDOW_CLOSED
                    break
                time.sleep(0.1)
                why = self.should_stop()
        except KeyboardInterrupt:  # SIGINT, or SIGTERM (contracts.signals turns both into this)
            why = signals.received() or "SIGINT"
        self.stop(why)
        if why == "stop requested" and any(isinstance(s.error, UserError) for s in self.results()):
            why = "session failed"  # a full disk sets the stop event before its session has said why
        return why

    def stop(self, why: str = STOP_REQUESTED) -> None:
        """Stop every session (each closes its database) and the server. Safe to call twice."""
        if self.stop_event.is_set() and not self.server.running:
            return
        self.stop_event.set()
        with self._lock:
            sessions = list(self.sessions)
        for s in sessions:
            s.source.interrupt()
        for s in sessions:
            if s.thread is not None:
                s.thread.join(120.0)
        failed = any(isinstance(s.error, UserError) for s in sessions)  # a full disk can look like a stop request
        if failed or why not in (STOP_REQUESTED, WINDOW_CLOSED, "SIGINT", "SIGTERM"):
            # a session that ended by itself (a full disk, its frames, its time): a phone between two photos
            # learns why from its next photo's answer, so keep listening a moment for it
            deadline = time.monotonic() + FINAL_GRACE_S
            while self.server.untold() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.server.stop()
        log.info("phone capture stopped: %s", why)

    def results(self) -> list[PhoneSession]:
        with self._lock:
            return list(self.sessions)

    def window_image(self, qr: np.ndarray) -> np.ndarray:
        """What the laptop's window shows: the newest phone's frame with its tiles, and the QR code to scan."""
        import cv2

        from capture.feedback import draw_report

        latest: tuple[np.ndarray, Any] | None = None
        for s in self.results():
            if s.source.last is not None:
                latest = s.source.last
        if latest is None:
            canvas = np.full((qr.shape[0] + 60, max(qr.shape[1], 640), 3), 255, np.uint8)
            canvas[: qr.shape[0], : qr.shape[1]] = qr
            cv2.putText(
                canvas,
                "scan with the phone's camera",
                (10, qr.shape[0] + 35),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.8,
                (0, 0, 0),
                2,
                cv2.LINE_AA,
            )
            return canvas
        frame, report = latest
        k = min(1.0, 1280 / max(frame.shape[:2]))
        small = cv2.resize(frame, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else frame
        img = draw_report(small, report, "  |  ".join(self.status_lines())[:160])
        thumb = cv2.resize(qr, (min(200, img.shape[0] // 3),) * 2, interpolation=cv2.INTER_NEAREST)
        img[-thumb.shape[0] :, -thumb.shape[1] :] = thumb
        return img


def run_phone_command(
    batch_dir: Path,
    model_path: Path,
    classifier: OnnxClassifier | FaceTarget,
    *,
    bind: str,
    port: int,
    frames: int | None,
    duration: float | None,
    per_tile: int | None,
    session: str | None,
    gates: QualityGates,
    save_crops: bool,
    headless: bool,
    label_map: dict[str, str] | None = None,
) -> list[Path]:
    """``capture --phone``: print the URL and its QR code, show the window, record until a stop condition; return the
    databases.
    """
    import sys

    from capture.overlay import Window, window_wanted
    from console.terminal import console, live_status

    pc = PhoneCapture(
        batch_dir,
        model_path,
        classifier,
        bind=bind,
        port=port,
        frames=frames,
        duration=duration,
        per_tile=per_tile,
        session=session,
        gates=gates,
        save_crops=save_crops,
        label_map=label_map,
    )
    url = pc.start()
    console.print(f"phone page: {url}", markup=False, highlight=False, soft_wrap=True)
    if pc.bind in ("0.0.0.0", "::", ""):
        console.print(
            f"listening on every network interface ({pc.bind or '0.0.0.0'}, port {pc.server.port}): any device "
            f"that can reach this laptop can reach the page (it still needs the token); --bind lan listens only on "
            f"{lan_address(pc.bind)}, the address in the QR code",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"certificate SHA-256 {pc.cert.fingerprint}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        "  (the phone warns that the certificate is not trusted: it is this laptop's own, made for this page; "
        "compare the fingerprint in the browser's certificate details, then continue)",
        style="dim",
    )
    try:
        sys.stdout.write(qr_terminal(url) + "\n")
        sys.stdout.flush()
    except UnicodeEncodeError:
        console.print("(this terminal cannot draw the QR code; open the URL above on the phone)")
    qr = qr_image(url)
    window = Window("photoproof capture --phone") if window_wanted(headless) else None
    last = [0.0]
    try:
        with live_status("waiting for a phone") as show:

            def tick() -> bool:
                now = time.monotonic()
                if now - last[0] >= 0.25:
                    last[0] = now
                    show("\n".join(pc.status_lines()))
                return window is None or window.show(pc.window_image(qr))

            why = pc.wait(tick)
            show("\n".join(pc.status_lines()) + f"\n-- stopped: {why}")
    finally:
        pc.stop()
        if window is not None:
            window.close()
    sessions = pc.results()
    errors = [s.error for s in sessions if s.error is not None]
    if errors:
        raise errors[0]
    if not sessions:
        console.print("no phone opened the page; nothing recorded")
    return [s.db for s in sessions if s.db is not None]

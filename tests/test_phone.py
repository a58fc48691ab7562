"""``capture --phone`` in a real browser: headless Chromium's fake camera plays a video the simulated camera made of
a printed batch; the page streams it over a WebSocket to the laptop's HTTPS server, the sessions land in SQLite,
and the verdicts come back to the page. Hostile clients are refused without disturbing the session."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from capture.classify import OnnxClassifier
from capture.phoneqr import qr_image, qr_matrix, qr_terminal
from capture.phones import PhoneCapture
from capture.sheets.quality import QualityGates
from capture.sources.phone.source import FrameRefused, decode_jpeg
from capture.sources.phone.tls import lan_address, machine_certificate
from contracts.capturedb import open_db_readonly
from contracts.manifest import load_batch
from testkit.batch import write_batch
from testkit.chromium import Chromium, chromium_exe, write_y4m
from testkit.scenes import make_layout, scene, tiny_classifier

GATES = QualityGates(min_sharpness=1, min_tile_px=40)
NO_VERIFY = ssl.create_default_context()
NO_VERIFY.check_hostname = False
NO_VERIFY.verify_mode = ssl.CERT_NONE


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    con = open_db_readonly(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@dataclass
class Printed:
    batch: Path
    model: Path
    y4m: Path


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Printed:
    """A printed synthetic batch, a tiny model, and 10 frames of the simulated camera as a y4m video."""
    from channel.simulate import SimulatedCamera
    from contracts.profile import load_profile
    from printouts.sheets import print_batch

    root = tmp_path_factory.mktemp("phone")
    d = root / "batch"
    write_batch(d, n_items=3, size=64)
    print_batch(d, paper="a4", tile_mm=60.0, layout="pairs", cover=False)
    with SimulatedCamera.from_batch(d, load_profile("office-laser-webcam"), seed=1, n_frames=10) as cam:
        y4m = write_y4m(root / "camera.y4m", (f.image for f in cam.frames()), fps=10)
    return Printed(d, tiny_classifier(root / "tiny.onnx", size=48), y4m)


def test_two_tabs_stream_record_their_own_sessions_and_see_the_verdicts(printed: Printed, tmp_path: Path) -> None:
    chromium_exe()
    pc = PhoneCapture(
        printed.batch,
        printed.model,
        OnnxClassifier(printed.model),
        bind="127.0.0.1",
        port=0,
        per_tile=3,
        session="browser",
        gates=GATES,
        cert_dir=tmp_path / "config",
    )
    url = pc.start()
    wrong = url.replace("?t=", "?t=x")
    br = Chromium(tmp_path / "chromium", wrong, printed.y4m)
    try:
        # A wrong token: the page is refused, and so is a WebSocket opened with it; no session starts.
        assert "403" in br.wait_for("document.body && document.body.innerText", 30)
        ws_probe = """new Promise(ok => { const w = new WebSocket("wss://" + location.host + "/ws?t=nope&p=abcdefgh12");
            w.onopen = () => ok("opened"); w.onerror = () => ok("refused"); })"""
        assert br.evaluate(ws_probe) == "refused"
        assert pc.results() == [] and pc.server.refused_requests >= 2

        # The right token, in two tabs: two phones, two sessions. The second streams over HTTPS POSTs,
        # as a browser that refuses the WebSocket to a self-signed certificate does.
        br.call("Page.navigate", url=url)
        second = br.new_page(url + "&transport=http")
        first = [p for p in br.pages() if p != second][0]
        for page in (first, second):
            assert br.wait_for("document.body && document.body.dataset.done", 120, page) == "1"
        doms = {}
        for page in (first, second):
            assert int(br.evaluate("document.body.dataset.frames", page)) >= 3  # it streamed
            assert "Done" in br.evaluate("document.getElementById('done').innerText", page)
            assert "good observations per tile" in br.evaluate("document.getElementById('done').innerText", page)
            phone = int(br.evaluate("document.body.dataset.phone", page))
            assert br.evaluate("document.body.dataset.transport || 'ws'", page) == ("http" if page == second else "ws")
            doms[phone] = br.evaluate(
                """Array.from(document.querySelectorAll('#tiles li')).map(li =>
                [li.dataset.item, li.dataset.role, li.dataset.verdict, li.dataset.reason, li.textContent])""",
                page,
            )
        assert pc.wait() == "every phone finished"
    finally:
        br.close()
        pc.stop()

    sessions = pc.results()
    assert sorted(s.session_id for s in sessions) == ["browser-phone1", "browser-phone2"] and all(
        s.error is None for s in sessions
    )
    truth = {it.id: it.label.index for it in load_batch(printed.batch).items}
    for s in sessions:
        assert s.db is not None
        ((source, cfg),) = _rows(s.db, "SELECT source, config FROM sessions")
        assert source == f"phone:{s.source.phone}" and json.loads(cfg)["stopped_by"] == "3 good observations per tile"
        good = _rows(s.db, "SELECT item_id, role, COUNT(*) FROM observations WHERE good GROUP BY item_id, role")
        assert len(good) == 6 and min(n for _, _, n in good) >= 3
        # The page's verdict of each tile is what the database says the model saw in its last observation.
        dom = doms[s.source.phone]
        assert len(dom) == 6
        for item, role, verdict, reason, text in dom:
            ((top1,),) = _rows(
                s.db,
                f"SELECT top1 FROM observations WHERE item_id = '{item}' AND role = '{role}' ORDER BY frame_idx DESC "
                "LIMIT 1",
            )
            assert verdict == ("seen" if top1 == truth[item] else "fooled"), text
            assert reason == "" and "3 good" in text


def test_photo_mode_in_the_browser_sends_stills_and_shows_their_verdicts(printed: Printed, tmp_path: Path) -> None:
    chromium_exe()
    from channel.simulate import SimulatedCamera
    from contracts.profile import load_profile

    with SimulatedCamera.from_batch(printed.batch, load_profile("office-laser-webcam"), seed=2, n_frames=2) as cam:
        photos = [
            tmp_path / f"IMG_{f.index}.png"
            for f in cam.frames()
            if cv2.imwrite(str(tmp_path / f"IMG_{f.index}.png"), f.image)
        ]
    pc = PhoneCapture(
        printed.batch,
        printed.model,
        OnnxClassifier(printed.model),
        bind="127.0.0.1",
        port=0,
        session="photos",
        gates=GATES,
        cert_dir=tmp_path / "config",
    )
    url = pc.start()
    br = Chromium(tmp_path / "chromium", url)  # the default fake camera: no sheet in view until the photos come
    try:
        br.wait_for("document.body && document.body.dataset.reports", 60)
        br.set_files("#photo", photos)  # PNGs: the page turns them into JPEGs before sending
        tiles = br.wait_for(
            """document.getElementById('still').style.display === 'block'
            && document.querySelectorAll('#tiles li').length === 6
            && Array.from(document.querySelectorAll('#tiles li')).map(li => li.dataset.verdict)""",
            60,
        )
        assert set(tiles) <= {"fooled", "seen"}
        br.wait_for("document.getElementById('status').innerText.includes('1 sheet')", 60)
    finally:
        br.close()
        pc.stop()
    (s,) = pc.results()
    assert s.db is not None and s.error is None
    with_sheet = _rows(s.db, "SELECT idx FROM frames WHERE sheets_found = 1")
    assert len(with_sheet) == len(photos)  # the two stills, and none of the fake camera's frames before them
    assert _rows(s.db, "SELECT COUNT(*) FROM observations")[0][0] == 6 * len(photos)


def _jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


async def _hostile(base: str, token: str, frame: bytes) -> dict[str, Any]:
    """Talk to the server as a careless or hostile client; return what it answered."""
    out: dict[str, Any] = {}
    conn = aiohttp.TCPConnector(ssl=NO_VERIFY)
    async with aiohttp.ClientSession(connector=conn) as http:
        for name, path in (
            ("no_token", "/"),
            ("wrong_token", "/?t=" + token[:-1]),
            ("traversal", f"/../../etc/passwd?t={token}"),
            ("file", f"/page.html?t={token}"),
            ("page", f"/?t={token}"),
        ):
            async with http.get(base + path) as r:
                out[name] = (r.status, await r.text(), dict(r.headers))
        try:
            async with http.ws_connect(f"{base}/ws?t=wrong&p=hostile123"):
                out["ws_wrong_token"] = "opened"
        except aiohttp.WSServerHandshakeError as e:
            out["ws_wrong_token"] = e.status
        async with http.post(f"{base}/photo?t=wrong&p=hostile123", data=frame) as r:
            out["photo_wrong_token"] = r.status

        async with http.ws_connect(f"{base}/ws?t={token}&p=hostile123", max_msg_size=0) as ws:
            out["hello"] = await ws.receive_json()

            reports: list[int] = []

            async def answer(types: tuple[str, ...] = ("accepted", "refused")) -> dict[str, Any]:
                while True:
                    m = await ws.receive_json(timeout=60)
                    if m["type"] == "report":
                        reports.append(m["frame_index"])
                    if m["type"] in types:
                        return m

            await ws.send_bytes(b"GIF89a not a jpeg at all")
            out["gif"] = await answer()
            await ws.send_bytes(b"\xff\xd8\xff" + bytes(9 << 20))
            out["oversized"] = await answer()
            await ws.send_bytes(b"\xff\xd8\xff\xe0 truncated")
            out["broken"] = await answer()
            await ws.send_bytes(frame)
            out["first"] = await answer()
            # A flood: 40 frames without waiting for a report.
            for _ in range(40):
                await ws.send_bytes(frame)
            out["flood"] = [await answer() for _ in range(40)]
            last = max(
                [out["first"]["frame_index"]] + [m["frame_index"] for m in out["flood"] if m["type"] == "accepted"]
            )
            while last not in reports:  # every accepted frame is answered with its report
                await answer(("report",))
            out["reports"] = reports
            await asyncio.sleep(0.5)  # the rate limit refills
            await ws.send_str("x" * 5000)
            out["long_text"] = await ws.receive_json(timeout=30)
        async with http.post(
            f"{base}/photo?t={token}&p=hostile123", data=frame, headers={"Content-Type": "image/jpeg"}
        ) as r:
            out["photo"] = (r.status, await r.json())
        async with http.post(f"{base}/photo?t={token}&p=hostile123", data=bytes(40 << 20)) as r:
            out["photo_oversized"] = r.status
        async with http.get(f"{base}/ws?t={token}&p=plain-get-1") as r:  # not a WebSocket: no phone
            out["plain_get"] = r.status
        for pid in ("second-phone", "third-phone", "bad/id"):  # at most two phones in this run
            try:
                async with http.ws_connect(f"{base}/ws?t={token}&p={pid}") as ws:
                    out[pid] = (await ws.receive_json(timeout=30))["type"]
            except aiohttp.WSServerHandshakeError as e:
                out[pid] = e.status
    return out


def test_wrong_tokens_bad_frames_and_floods_are_refused_without_disturbing_the_session(
    synthetic_batch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    batch = synthetic_batch(n_items=3, size=64)
    layout = make_layout(batch)
    frame = _jpeg(
        scene(batch, layout, {layout.sheets[0].sheet_id: dict(tilt_deg=10, fill=0.8)}, blur_sigma=0.6, seed=1).frame
    )
    model = tiny_classifier(tmp_path / "tiny.onnx", size=48)
    pc = PhoneCapture(
        batch,
        model,
        OnnxClassifier(model),
        bind="127.0.0.1",
        port=0,
        session="hostile",
        gates=GATES,
        max_fps=5,
        max_phones=2,
        cert_dir=tmp_path / "config",
    )
    url = pc.start()
    qr = qr_image(url)
    waiting = pc.window_image(qr)  # the laptop's window before a phone connects: the QR code to scan
    assert _qr_text(waiting) == url
    try:
        base, token = url.split("/?t=")
        out = asyncio.run(_hostile(base, token, frame))
    finally:
        pc.stop()

    assert (
        out["no_token"][0] == 403
        and out["wrong_token"][0] == 403
        and out["ws_wrong_token"] == 403
        and out["photo_wrong_token"] == 403
    )
    assert out["traversal"][0] in (403, 404) and out["file"][0] == 404
    status, html, headers = out["page"]
    assert status == 200 and "getUserMedia" in html and 'capture="environment"' in html
    assert (
        "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    )  # nothing fetched from elsewhere
    assert headers["Referrer-Policy"] == "no-referrer" and "default-src 'none'" in headers["Content-Security-Policy"]
    assert out["hello"]["type"] == "hello" and out["hello"]["phone"] == 1
    assert out["gif"] == {"type": "refused", "why": "not a JPEG", "done": False}
    assert out["oversized"]["type"] == "refused" and "too large" in out["oversized"]["why"]
    assert out["broken"]["type"] == "refused" and "JPEG" in out["broken"]["why"]
    assert out["first"]["type"] == "accepted"
    flood = out["flood"]
    refused = [m for m in flood if m["type"] == "refused"]
    assert all(("busy" in m["why"]) or ("too fast" in m["why"]) for m in refused)
    assert (
        sum("too fast" in m["why"] for m in refused) >= 40 - 5 - 8
    )  # 5 a second, bursts of 5: the flood lasts well under 1.6 s
    accepted = 1 + sum(m["type"] == "accepted" for m in flood)
    assert sorted(out["reports"]) == list(range(accepted))
    assert out["long_text"]["type"] == "refused"
    status, photo = out["photo"]
    assert (
        status == 200
        and photo["type"] == "report"
        and len(photo["tiles"]) == 6
        and photo["sheets"] == [layout.sheets[0].sheet_id]
    )
    assert all(t["verdict"] in ("fooled", "seen") and t["reason"] == "" for t in photo["tiles"])
    assert out["photo_oversized"] == 413

    # The session holds exactly the frames that were accepted, each one classified.
    assert (
        out["plain_get"] == 400
        and out["second-phone"] == "hello"
        and out["third-phone"] == 503
        and out["bad/id"] == 400
    )
    s, second = pc.results()
    assert [s.session_id, second.session_id] == ["hostile-phone1", "hostile-phone2"]
    assert s.error is None and s.db is not None
    frames = _rows(s.db, "SELECT idx, sheets_found FROM frames ORDER BY idx")
    assert len(frames) == accepted + 1 and all(n == 1 for _, n in frames)
    assert _rows(s.db, "SELECT COUNT(DISTINCT frame_idx) FROM observations")[0][0] == accepted + 1
    ((cfg,),) = _rows(s.db, "SELECT config FROM sessions")
    assert json.loads(cfg)["stopped_by"] == "stop requested"
    shown = pc.window_image(qr)  # then the phone's newest frame with its tiles outlined
    raw = s.source.last[0] if s.source.last else None
    assert raw is not None and shown.shape == raw.shape
    drawn_green = (shown == (60, 200, 60)).all(axis=2) & ~(raw == (60, 200, 60)).all(
        axis=2
    )  # capture.feedback.GREEN: fooled
    assert drawn_green.sum() > 200


def test_the_certificate_is_made_once_with_a_private_key(tmp_path: Path) -> None:
    a = machine_certificate(tmp_path / "cfg")
    b = machine_certificate(tmp_path / "cfg")
    assert a == b and len(a.fingerprint.split(":")) == 32
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(a.key_path).st_mode) == 0o600
    a.ssl_context()  # loads
    assert machine_certificate(tmp_path / "other").fingerprint != a.fingerprint


def _qr_text(img: np.ndarray) -> str:
    """The QR code's text as a phone reads it. OpenCV's classic decoder misreads about 1 % of these URLs
    (the token is random), so its ArUco-based decoder reads where it fails; a phone's reader reads both."""
    return cv2.QRCodeDetector().detectAndDecode(img)[0] or cv2.QRCodeDetectorAruco().detectAndDecode(img)[0]


def test_lan_address_and_qr_code() -> None:
    assert lan_address("192.168.4.2") == "192.168.4.2"
    addr = lan_address()
    assert addr.count(".") == 3 and not addr.startswith("0.")
    url = "https://192.168.4.2:8443/?t=abc"
    m = qr_matrix(url)
    found, _, _ = cv2.QRCodeDetector().detectAndDecode(
        cv2.resize(np.where(m > 0, 0, 255).astype(np.uint8), None, fx=8, fy=8, interpolation=cv2.INTER_NEAREST)
    )
    assert found == url
    lines = qr_terminal(url).splitlines()  # two module rows per line, a 2-module quiet zone
    assert len(lines) == -(-(m.shape[0] - 4) // 2) and {len(line) for line in lines} == {m.shape[1] - 4}


def test_decode_jpeg_refuses_what_is_not_a_bounded_jpeg() -> None:
    img = np.full((32, 48, 3), 128, np.uint8)
    assert decode_jpeg(_jpeg(img)).shape == (32, 48, 3)
    ok, png = cv2.imencode(".png", img)
    for data, why in ((png.tobytes(), "not a JPEG"), (_jpeg(img)[:40], "JPEG"), (b"\xff\xd8\xff" + bytes(100), "JPEG")):
        with pytest.raises(FrameRefused, match=why):
            decode_jpeg(data)
    with pytest.raises(FrameRefused, match="too large"):
        decode_jpeg(_jpeg(img), max_bytes=100)
    with pytest.raises(FrameRefused, match="out of bounds"):
        decode_jpeg(_jpeg(np.zeros((8, 8, 3), np.uint8)))

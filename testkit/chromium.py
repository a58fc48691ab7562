"""Headless Chromium driven over its DevTools protocol (for tests of pages; not a test module).

Chromium is started with ``--remote-debugging-port=0``; the port it picks is read
from ``DevToolsActivePort`` in its profile folder, and ``Runtime.evaluate`` runs
JavaScript in the page over a WebSocket (aiohttp's client). A fake camera can be
fed from a ``.y4m`` video (:func:`write_y4m`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest


def chromium_exe() -> str:
    """The Chromium executable; skips the test when there is none."""
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if exe is None:
        pytest.skip("Debian chromium not installed; .ci/run installs it")
    return exe


def write_y4m(path: Path, frames_bgr: Iterable[np.ndarray], fps: int = 10) -> Path:
    """Write BGR frames as an uncompressed YUV4MPEG2 (4:2:0) video, the format Chromium's fake camera reads."""
    with open(path, "wb") as f:
        for k, img in enumerate(frames_bgr):
            h, w = img.shape[:2]
            if k == 0:
                f.write(f"YUV4MPEG2 W{w - w % 2} H{h - h % 2} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            f.write(
                b"FRAME\n"
                + cv2.cvtColor(np.ascontiguousarray(img[: h - h % 2, : w - w % 2]), cv2.COLOR_BGR2YUV_I420).tobytes()
            )
    return path


class Chromium:
    """A headless Chromium with one page, optionally with a fake camera playing ``y4m``."""

    def __init__(self, profile_dir: Path, url: str, y4m: Path | None = None) -> None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        args = [
            chromium_exe(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile_dir}",
            "--ignore-certificate-errors",
            "--remote-debugging-port=0",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ]
        if y4m is not None:
            args.append(f"--use-file-for-fake-video-capture={y4m}")
        self.profile_dir = profile_dir
        self.log = open(profile_dir / "chromium.log", "wb")
        self.proc = subprocess.Popen(args + [url], stdout=self.log, stderr=subprocess.STDOUT)
        self.port = self._port()
        self._id = 0

    def _port(self, timeout: float = 60.0) -> int:
        f = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if f.is_file() and f.read_text().strip():
                return int(f.read_text().split()[0])
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"chromium exited ({self.proc.returncode}): "
                    f"{(self.profile_dir / 'chromium.log').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        raise TimeoutError("chromium did not open its DevTools port")

    async def _http(self, method: str, path: str) -> Any:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            async with http.request(method, f"http://127.0.0.1:{self.port}{path}") as r:
                return await r.json()

    def pages(self) -> list[str]:
        """The ids of the open pages (tabs), oldest first."""
        return [t["id"] for t in reversed(asyncio.run(self._http("GET", "/json/list"))) if t.get("type") == "page"]

    def new_page(self, url: str) -> str:
        """Open ``url`` in a new tab (its own sessionStorage); return its id."""
        from urllib.parse import quote

        return str(asyncio.run(self._http("PUT", f"/json/new?{quote(url, safe='')}"))["id"])

    async def _calls(
        self, steps: list[tuple[str, Callable[[list[dict[str, Any]]], dict[str, Any]]]], page: str | None
    ) -> list[dict[str, Any]]:
        """DevTools commands over one connection (node ids live as long as it); each step's params may use earlier
        results.
        """
        import aiohttp

        results: list[dict[str, Any]] = []
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{self.port}/json/list") as r:
                targets = [t for t in await r.json() if t.get("type") == "page" and (page is None or t["id"] == page)]
            async with http.ws_connect(targets[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                for method, params in steps:
                    self._id += 1
                    await ws.send_json({"id": self._id, "method": method, "params": params(results)})
                    async for msg in ws:
                        d = json.loads(msg.data)
                        if d.get("id") == self._id:
                            if "error" in d:
                                raise RuntimeError(f"{method}: {d['error']}")
                            results.append(d["result"])
                            break
        if len(results) != len(steps):
            raise RuntimeError(f"{steps[len(results)][0]}: no answer")
        return results

    def call(self, method: str, page: str | None = None, **params: Any) -> dict[str, Any]:
        """One DevTools command to ``page`` (a tab id; default: the first tab)."""
        return asyncio.run(self._calls([(method, lambda _: params)], page))[0]

    def set_files(self, selector: str, files: list[Path], page: str | None = None) -> None:
        """Choose ``files`` in the page's ``<input type=file>`` as a user would (its change event fires)."""
        asyncio.run(
            self._calls(
                [
                    ("DOM.getDocument", lambda r: {}),
                    ("DOM.querySelector", lambda r: {"nodeId": r[0]["root"]["nodeId"], "selector": selector}),
                    ("DOM.setFileInputFiles", lambda r: {"nodeId": r[1]["nodeId"], "files": [str(f) for f in files]}),
                ],
                page,
            )
        )

    def evaluate(self, expression: str, page: str | None = None) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        r = self.call("Runtime.evaluate", page, expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, page: str | None = None) -> Any:
        """Evaluate ``expression`` until it is truthy; return its value (TimeoutError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression, page)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"{expression!r} still {value!r} after {timeout:g} s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

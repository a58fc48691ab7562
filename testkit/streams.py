"""A local MJPEG-over-HTTP server for the stream tests (like a phone IP-camera app), dropping connections on purpose."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


def jpeg_frame(colour: int, size: tuple[int, int] = (64, 48)) -> bytes:
    img = np.full((size[1], size[0], 3), colour, np.uint8)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


class MjpegServer:
    """A local MJPEG-over-HTTP server (like a phone IP-camera app) that drops each connection after a few frames.

    Connection ``k`` (1-based) sends ``per_connection`` frames of grey level ``40 * k``
    (or the frames of ``make_frame``) and then closes the socket.
    """

    def __init__(self, per_connection: int = 4, interval: float = 0.02, frames: list[bytes] | None = None) -> None:
        self.connections = 0
        self.per_connection, self.interval, self.frames = per_connection, interval, frames
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.connections += 1
                k = server.connections
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=photoproofframe")
                self.end_headers()
                try:
                    for n in range(server.per_connection):
                        data = (
                            server.frames[(k * server.per_connection + n) % len(server.frames)]
                            if server.frames
                            else jpeg_frame(min(250, 40 * k))
                        )
                        self.wfile.write(
                            b"--photoproofframe\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
                        )
                        self.wfile.write(data + b"\r\n")
                        self.wfile.flush()
                        time.sleep(server.interval)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True  # the stream drops here

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/video"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> MjpegServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

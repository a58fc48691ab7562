"""``--phone``: a page served to the phone's browser (no app to install), one capture session per phone.

- ``source``: :class:`PhoneSource`, one phone's frames as a frame source, and the JPEG checks;
- ``server``: the aiohttp HTTPS + WebSocket server and its limits;
- ``gate``: what a client may hold before it shows the token (connection caps, a deadline, one log line);
- ``tls``: the self-signed certificate (made once per machine) and the LAN address;
- ``page.html``: the page (camera, streaming, live verdicts, photo mode), served from memory.

The runner that starts a session per phone is :mod:`capture.phones`.
"""

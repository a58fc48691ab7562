"""Frame sources, all behind :class:`contracts.frames.FrameSource`.

- ``files``: ``--photos DIR`` and ``--video FILE``;
- ``live``: ``--camera N`` and ``--url URL``;
- ``grabber``: their background reader, keeping the newest frame and reconnecting with backoff;
- ``mjpeg``: the MJPEG-over-HTTP reader behind ``--url http://...``;
- ``phone``: ``--phone``, a page served to the phone's browser (HTTPS + WebSocket), one source per phone.
"""

"""OpenCV's own threads while the simulated camera renders frames on its thread pool.

The camera renders a few frames at once, each on its own thread (``channel.simulate``); when those threads
alone fill the cores, OpenCV's thread pool only adds work: each call splits its rows over pool threads that
find the cores busy, and they spin while they wait (measured on 2 cores, office preset at 2560x1440: 7-14
CPU-ms per frame of about 80, more the busier the machine). :func:`serial_opencv` runs OpenCV on one thread
for as long as a camera renders on every core, and puts the setting back afterwards. The setting is
process-wide (OpenCV has no per-thread one), as ``capture.pipeline`` already sets it for its camera loop.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

log = logging.getLogger(__name__)

_lock = threading.Lock()
_users = 0  # cameras rendering now with OpenCV on one thread
_saved: int | None = None  # OpenCV's thread count before the first of them


@contextmanager
def serial_opencv(workers: int, cores: int | None = None) -> Iterator[bool]:
    """OpenCV on one thread while ``workers`` render threads fill the ``cores`` (default: the CPUs).

    Yields whether it changed the setting. Nested and concurrent uses share one change; the last one out puts
    back the count of before, unless someone else (e.g. ``capture.pipeline``) set another count meanwhile.
    """
    if workers < (cores or os.cpu_count() or 1):  # cores left over: OpenCV's pool may use them
        yield False
        return
    global _users, _saved
    with _lock:
        if _users == 0:
            _saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _users += 1
    try:
        yield True
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                if _saved is not None and cv2.getNumThreads() == 1:
                    cv2.setNumThreads(_saved)
                else:
                    log.debug("OpenCV threads changed while the camera rendered: left at %d", cv2.getNumThreads())
                _saved = None

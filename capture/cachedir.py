"""A private, per-user folder for caches that are loaded as code (TensorRT engines).

A shared, predictable folder (``/tmp/...``) could be owned or filled by another
user, who would then choose the engine this process loads; so the cache lives
under this user's home, created 0700, and any folder that another user owns or
may write is refused.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path


def user_cache_dir() -> Path:
    """This user's cache folder for Photoproof: ``$XDG_CACHE_HOME/photoproof``, ``~/Library/Caches/photoproof`` or
    ``%LOCALAPPDATA%\\photoproof``.
    """
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "photoproof"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "photoproof"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "photoproof"


def private_dir(d: Path) -> bool:
    """Create ``d`` (mode 0700) if missing; True when it is a real folder of this user that no one else may write."""
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(d)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or not os.access(d, os.W_OK):
        return False
    if os.name == "nt":
        return True
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)

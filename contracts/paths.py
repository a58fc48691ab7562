"""Paths inside a batch directory and atomic writes.

Every path stored in a manifest is relative to the batch directory; a path that
would leave it (absolute, ``..``, or a symlink pointing out) is rejected.
Files are written to a temporary name in the same directory and renamed, so a
crash or Ctrl-C never leaves a half-written file under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from contracts.errors import UserError, WriteError


def resolve_inside(batch_dir: Path, rel: str, *, root: Path | None = None) -> Path:
    """Return ``batch_dir / rel`` after checking that it stays inside ``batch_dir``.

    ``root``: ``batch_dir`` already resolved, to save resolving it again per path
    when checking many (a manifest of 10,000 items).

    Raises:
        UserError: when ``rel`` is absolute or escapes the directory.
    """
    if not isinstance(rel, str) or not rel:
        raise UserError(f"{batch_dir}: empty or non-text path in manifest")
    if os.path.isabs(rel) or rel.startswith(("/", "\\")):
        raise UserError(
            f"{batch_dir}: manifest path {rel!r} is absolute; paths must be relative to the batch directory"
        )
    root = root if root is not None else batch_dir.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise UserError(f"{batch_dir}: manifest path {rel!r} leaves the batch directory; refusing to use it")
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename.

    The file gets the usual permissions (0666 less the umask), not mkstemp's 0600.

    Raises:
        WriteError: naming ``path`` when the disk is full or read-only, or a folder is in the way;
            the old file, if any, is left as it was.
    """
    try:
        _atomic_write(path, data)
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(
            f"{path}: cannot write it ({e.strerror or e}); check that the disk has room and the folder is writable, "
            "then re-run"
        ) from None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove_stale_temps(folder: Path, names: tuple[str, ...] = ("*",)) -> int:
    """Delete the temporary files (``.<name>.<random>.tmp``) that a killed atomic write of ``names`` left in ``folder``.

    Call it only for files that this process alone writes (a stage's own outputs, at its start).
    """
    n = 0
    if folder.is_dir():
        for p in (q for name in names for q in folder.glob(f".{name}.*.tmp")):
            if p.is_file() and not p.is_symlink():
                try:
                    p.unlink(missing_ok=True)
                except OSError:  # a read-only disk: the write that follows names the problem
                    continue
                n += 1
    return n


def remove_file(path: Path) -> None:
    """Delete ``path`` if it exists.

    Raises:
        WriteError: naming ``path`` when it cannot be removed (a read-only disk or folder).
    """
    try:
        path.unlink(missing_ok=True)
    except OSError as e:
        raise WriteError(
            f"{path}: cannot replace it ({e.strerror or e}); check that the folder is writable (not a read-only disk), "
            f"then re-run"
        ) from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""The craft journal: append-only JSON lines beside ``batch.json``, folded into it at the end.

Rewriting the whole ``batch.json`` after every mini-batch costs O(items) per
write, O(items²) per run. Instead, craft appends each finished item to a
journal and compacts the journal into ``batch.json`` once, when it stops.

Layout::

    BATCH/journal/<writer>.jsonl     one file per writing process (never shared)

``<writer>`` is ``<UTC time>-<random token>-r<rank>``, so the files sort in the
order they were started and two processes, on one machine or on several that
share the batch folder, never append to the same file. Each line is one record::

    {"schema": "photoproof.journal", "schema_version": 1, "item": {...an Item of batch.json...}}

A chunk's lines are appended with one ``write`` and ``fsync``'d before craft
moves on. A crash can leave the last line of a file torn (no newline, or not
JSON): readers skip it with a warning. A bad line elsewhere is damage, not a
crash, and is refused with an error naming the file and line.

Reading a batch (:func:`contracts.manifest.load_batch`) folds the journal in:
``batch.json``'s items, then every journal file in name order; a later record
of the same item id replaces an earlier one. :func:`compact` writes the merged
manifest atomically and then deletes the journal files it folded in; a crash
between the two leaves duplicates that the next read merges away.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts.errors import UserError
from contracts.validate import check_journal_item

log = logging.getLogger(__name__)

SCHEMA = "photoproof.journal"
SCHEMA_VERSION = 1
JOURNAL_DIR = "journal"
SUFFIX = ".jsonl"


def journal_files(batch_dir: Path) -> list[Path]:
    """The journal files of a batch, oldest first (an empty list when there are none)."""
    d = Path(batch_dir) / JOURNAL_DIR
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix == SUFFIX and p.is_file() and not p.name.startswith("."))


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The item dicts of one journal file, in order; a torn last line is skipped.

    Raises:
        UserError: naming the file and line when a line other than the last is damaged.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read the craft journal ({e.strerror}); check its permissions") from None
    lines = data.split(b"\n")
    # A complete file ends with a newline, so the last element is b"" unless the tail is torn.
    for n, raw in enumerate(lines, start=1):
        last = n == len(lines)
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            if not isinstance(rec, dict) or rec.get("schema") != SCHEMA or not isinstance(rec.get("item"), dict):
                raise ValueError("not a journal record")
            if rec.get("schema_version") != SCHEMA_VERSION:
                raise UserError(
                    f"{path}:{n}: journal schema version {rec.get('schema_version')!r} is not supported (this "
                    f"Photoproof reads {SCHEMA_VERSION})"
                )
        except (ValueError, UnicodeDecodeError) as e:
            if last:
                log.warning(
                    "%s:%d: torn last record skipped (an interrupted write); its item will be crafted again", path, n
                )
                return
            raise UserError(
                f"{path}:{n}: damaged craft journal record ({e}); delete the file and re-run 'photoproof craft' to "
                "redo its items"
            ) from None
        check_journal_item(rec["item"], f"{path}:{n}")  # types and ranges, as for batch.json's items
        yield rec["item"]


def merge(items: Iterable[dict[str, Any]], batch_dir: Path) -> tuple[list[dict[str, Any]], list[Path]]:
    """``items`` (from ``batch.json``) with every journal record folded in, and the files read.

    The order is the first appearance of each id; a later record replaces an earlier one.
    """
    merged: dict[str, dict[str, Any]] = {}
    for it in items:
        merged[str(it.get("id"))] = it
    files = journal_files(batch_dir)
    for f in files:
        for it in read_records(f):
            merged[str(it.get("id"))] = it
    return list(merged.values()), files


class JournalWriter:
    """Appends item records to this process's own journal file.

    Args:
        batch_dir: the batch directory.
        rank: the process's rank in a distributed run (part of the file name).
    """

    def __init__(self, batch_dir: Path, rank: int = 0) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        self.path = Path(batch_dir) / JOURNAL_DIR / f"{stamp}-{secrets.token_hex(4)}-r{rank}{SUFFIX}"
        self._fd: int | None = None
        self.records = 0

    def append(self, items: Iterable[dict[str, Any]]) -> None:
        """Append one line per item with one ``write``, then ``fsync``."""
        lines = [
            json.dumps({"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "item": it}, separators=(",", ":"))
            for it in items
        ]
        if not lines:
            return
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
            _fsync_dir(self.path.parent)
        data = ("\n".join(lines) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)
        self.records += len(lines)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove(files: Iterable[Path]) -> None:
    """Delete journal files already folded into ``batch.json`` (and the folder once empty)."""
    parent = None
    for f in files:
        parent = f.parent
        try:
            f.unlink()
        except FileNotFoundError:
            pass
    if parent is not None:
        try:
            parent.rmdir()
        except OSError:
            pass  # another writer's file is still there


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

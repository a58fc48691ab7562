"""The craft journal: appended records fold into batch.json; torn tails are skipped, damage is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts import journal
from contracts.errors import UserError
from contracts.manifest import compact_batch, load_batch
from testkit.batch import write_batch


def _batch_with_journal(d: Path, n: int = 4, in_manifest: int = 1) -> list[dict]:  # type: ignore[type-arg]
    """A synthetic batch whose first ``in_manifest`` items are in batch.json and the rest in a journal."""
    batch = write_batch(d, n_items=n)
    items = [it.to_dict() for it in batch.items]
    batch.items = batch.items[:in_manifest]
    compact_batch(d, batch, [])
    with journal.JournalWriter(d, rank=1) as w:
        w.append(items[in_manifest:])
    return items


def test_load_batch_folds_the_journal_in_and_compaction_removes_it(tmp_path: Path) -> None:
    d = tmp_path / "b"
    items = _batch_with_journal(d)
    assert len(json.loads((d / "batch.json").read_text())["items"]) == 1
    batch = load_batch(d)
    assert [it.to_dict() for it in batch.items] == items
    files = journal.journal_files(d)
    assert len(files) == 1 and files[0].name.endswith("-r1.jsonl")
    compact_batch(d, batch, files)
    assert not (d / "journal").exists()
    assert json.loads((d / "batch.json").read_text())["items"] == json.loads(json.dumps(items))


def test_a_torn_last_record_is_skipped(tmp_path: Path) -> None:
    d = tmp_path / "b"
    items = _batch_with_journal(d)
    f = journal.journal_files(d)[0]
    with open(f, "ab") as fh:
        fh.write(b'{"schema": "photoproof.journal", "schema_version": 1, "item": {"id": "half')  # killed mid-write
    assert [it.id for it in load_batch(d).items] == [it["id"] for it in items]


def test_a_damaged_record_before_the_end_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    d = tmp_path / "b"
    _batch_with_journal(d)
    f = journal.journal_files(d)[0]
    lines = f.read_text().splitlines()
    lines[1] = lines[1][:-20]
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=rf"{f.name}:2: damaged"):
        load_batch(d)


def test_a_later_record_replaces_an_earlier_one_and_bad_paths_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "b"
    items = _batch_with_journal(d)
    redo = dict(items[2], seed=99)
    with journal.JournalWriter(d, rank=0) as w:
        w.append([redo])
    batch = load_batch(d)
    assert len(batch.items) == len(items) and batch.item(items[2]["id"]).seed == 99
    evil = dict(items[3], id="evil", adv={**items[3]["adv"], "path": "../../etc/passwd"})
    with journal.JournalWriter(d, rank=0) as w:
        w.append([evil])
    with pytest.raises(UserError, match="leaves the batch directory"):
        load_batch(d)


def test_writers_never_share_a_file(tmp_path: Path) -> None:
    a, b = journal.JournalWriter(tmp_path, 0), journal.JournalWriter(tmp_path, 0)
    assert a.path != b.path

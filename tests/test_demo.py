"""The whole spine through the real CLI: craft, print, simulated capture, report.

The report's numbers must equal those recomputed here, independently, from
``batch.json`` and the SQLite file with plain SQL.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SESSION = "demo-careful-lab"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "batch"
    r = subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "demo", "--out", str(out), "--limit", "4", "--frames", "10"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(out / "report" / "index.html") in r.stdout.replace("\n", "")
    (out.parent / "stdout.txt").write_text(r.stdout, encoding="utf-8")
    return out


def _summary(demo: Path) -> list[dict]:  # type: ignore[type-arg]
    return json.loads((demo / "report" / "summary.json").read_text())["rows"]


def _value(rows: list[dict], **match: object) -> tuple[float | None, int, int]:  # type: ignore[type-arg]
    hits = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (match, hits)
    return hits[0]["value"], hits[0]["num"], hits[0]["n"]


def test_demo_writes_every_stage(demo: Path) -> None:
    for rel in (
        "batch.json",
        "sheets.pdf",
        "layout.json",
        f"captures/{SESSION}.sqlite",
        "report/index.html",
        "report/report.pdf",
        "report/summary.csv",
    ):
        assert (demo / rel).is_file(), rel
    batch = json.loads((demo / "batch.json").read_text())
    assert len(batch["items"]) == 4 and {i["attack"] for i in batch["items"]} == {"fgsm"}


def test_demo_ends_with_the_channel_check_and_the_key_figures(demo: Path) -> None:
    out = (demo.parent / "stdout.txt").read_text(encoding="utf-8")
    tail = out[out.rindex("report written to") :]
    assert f"Channel check, session {SESSION} (lite2):" in tail
    verdict = json.loads((demo / "report" / "report.json").read_text())["channel_check"]["sessions"][SESSION]["verdict"]
    # careful-lab, printed for its camera and target: the camera does not decide the outcome, but 4 photos
    # cannot bound the loss within 10 points, so the check says how many more photos it needs
    check = json.loads((demo / "report" / "report.json").read_text())["channel_check"]["sessions"][SESSION]
    assert verdict == "inconclusive" and check["more_photos_needed"] and "more photos" in tail
    last = tail.rstrip().splitlines()[-1]  # the demo's size, not a fault, and where to go next
    assert (
        last.startswith("demo done: 4 sample photos are too few")
        and f"about {check['more_photos_needed']} more photos" in last
    )
    assert "--images ~/photos" in last and "Pointing a real camera" in last
    assert "CAMERA-LIMITED" not in tail and check["frame"]["drop"] is not None and check["frame"]["drop"] <= 0.10
    line = next(ln for ln in tail.splitlines() if ln.startswith(f"{SESSION} · lite2 · fgsm ε=16"))
    for words in ("clean photographed", "adversarial photographed", "paired survival", "destruction"):
        assert words in line
    assert line.count("n=") >= 4
    head = json.loads((demo / "report" / "headline.json").read_text())
    assert {"channel_check", "clean_photo_tile", "adv_photo_tile", "paired_survival_tile", "transfer"} <= set(
        head["columns"]
    )


def test_capture_recovered_every_tile(demo: Path) -> None:
    layout = json.loads((demo / "layout.json").read_text())
    tiles = {(t["item"], t["role"]) for s in layout["sheets"] for t in s["tiles"]}
    con = sqlite3.connect(demo / "captures" / f"{SESSION}.sqlite")
    seen = set(con.execute("SELECT item_id, role FROM observations"))
    assert seen == tiles
    good = con.execute("SELECT count(*) FROM observations WHERE good = 1").fetchone()[0]
    assert good > 0, "the quality gates rejected every simulated observation"


@pytest.mark.parametrize("k", [1, 5])
def test_report_numbers_match_sqlite(demo: Path, k: int) -> None:
    batch = json.loads((demo / "batch.json").read_text())
    label = {i["id"]: i["label"]["index"] for i in batch["items"]}
    con = sqlite3.connect(demo / "captures" / f"{SESSION}.sqlite")
    digital = {
        (item, role): json.loads(ids)[:k]
        for item, role, ids in con.execute("SELECT item_id, role, top5_ids FROM digital")
    }
    rows = _summary(demo)
    common = dict(session=SESSION, topk=k, attack="fgsm", eps=16.0)

    # Digital accuracy of the target model on the saved PNGs.
    for role, metric in (("clean", "clean_acc"), ("adv", "adv_acc")):
        right = sum(label[i] in digital[(i, role)] for i in label)
        assert _value(rows, view="digital", metric=metric, **common)[1:] == (right, len(label))

    # Per-frame photographed accuracy: every good observation counts.
    for role, metric in (("clean", "clean_acc"), ("adv", "adv_acc")):
        obs = con.execute("SELECT item_id, top5_ids FROM observations WHERE good = 1 AND role = ?", (role,)).fetchall()
        right = sum(label[i] in json.loads(ids)[:k] for i, ids in obs)
        assert _value(rows, view="frame", metric=metric, **common)[1:] == (right, len(obs))

    # Destruction rate, per frame: d = Σ C(X)·¬C(X_adv)·C(T(X_adv)) / Σ C(X)·¬C(X_adv).
    fooled = {i for i in label if label[i] in digital[(i, "clean")] and label[i] not in digital[(i, "adv")]}
    obs = con.execute("SELECT item_id, top5_ids FROM observations WHERE good = 1 AND role = 'adv'").fetchall()
    num = sum(label[i] in json.loads(ids)[:k] for i, ids in obs if i in fooled)
    den = sum(1 for i, _ in obs if i in fooled)
    value, got_num, got_den = _value(rows, view="frame", metric="destruction", **common)
    assert (got_num, got_den) == (num, den)
    if den:
        assert value == pytest.approx(num / den)

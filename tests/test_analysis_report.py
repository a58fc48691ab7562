"""The report end to end: files, numbers against plain SQL, the HTML in headless Chromium, the PDF."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from analysis.cli import register
from analysis.report import build_report, make_report
from analysis.synthetic import Odds, write_capture_db
from contracts.errors import UserError
from contracts.manifest import load_batch, save_batch
from testkit.batch import write_batch

TARGET = 555
METRIC_FILTER = {  # the digital condition of each frame/tile metric, in SQL over the view `dig`
    "adv_acc": "1",
    "destruction": "{c_ok} AND NOT {a_ok}",
    "destruction_prefiltered": "json_extract(l.c_ids, '$[0]') = l.label AND json_extract(l.c_probs, '$[0]') >= 0.8 AND "
    "NOT {a_ok5}",
}


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 items at two ε (one targeted), two sessions, crops for every good adversarial observation, a sweep."""
    d = tmp_path_factory.mktemp("report") / "batch"
    b = write_batch(d, n_items=12, size=48)
    for i, it in enumerate(b.items):
        if i >= 6:
            it.eps = 8.0
    b.items[-1].target = TARGET
    save_batch(d, b)
    write_capture_db(d / "captures" / "cam.sqlite", b, "cam", model="lite2", n_frames=40, tiles_per_frame=12, seed=1)
    write_capture_db(
        d / "captures" / "phone.sqlite",
        b,
        "phone",
        model="lite0",
        n_frames=10,
        tiles_per_frame=24,
        seed=2,
        profile=None,
    )
    con = sqlite3.connect(d / "captures" / "cam.sqlite")
    crop = io.BytesIO()
    Image.fromarray(np.full((24, 24, 3), 128, np.uint8)).save(crop, format="PNG")
    (d / "captures" / "cam" / "crops").mkdir(parents=True)
    for item, frame in con.execute("SELECT item_id, frame_idx FROM observations WHERE good = 1 AND role = 'adv'"):
        (d / "captures" / "cam" / "crops" / f"{item}-adv-{frame}.png").write_bytes(crop.getvalue())
    con.close()
    rows = []
    for strength in (0.0, 1.0):
        for i, it in enumerate(b.items):
            top1 = it.label.index if (strength > 0 and i % 2 == 0) else (it.label.index + 1) % 1000
            rows.append(
                {
                    "transform": "blur",
                    "strength": strength,
                    "item_id": it.id,
                    "role": "adv",
                    "top1": top1,
                    "top5_ids": [top1, 900, 901, 902, 903],
                    "top5_probs": [0.6, 0.1, 0.1, 0.1, 0.1],
                }
            )
    (d / "sweep.json").write_text(json.dumps(rows))
    return d


@pytest.fixture(scope="module")
def report(batch_dir: Path) -> Path:
    index = build_report(batch_dir)
    assert index == batch_dir / "report" / "index.html"
    return index


def _summary(report: Path) -> list[dict[str, Any]]:
    return json.loads((report.parent / "summary.json").read_text())["rows"]


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    hits = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(hits) == 1, (match, len(hits))
    return hits[0]


# ---------------------------------------------------------------- files


def test_report_writes_every_file(report: Path) -> None:
    out = report.parent
    for name in ("index.html", "report.pdf", "report.json"):
        assert (out / name).is_file(), name
    for table in ("headline", "sessions", "accuracy", "destruction", "transfer", "summary", "tiles", "sweep"):
        assert (out / f"{table}.csv").is_file() and (out / f"{table}.json").is_file(), table
        assert json.loads((out / f"{table}.json").read_text())["rows"], table
    meta = json.loads((out / "report.json").read_text())
    assert meta["bootstrap"]["seed"] == 1607 and meta["sessions"] == ["cam", "phone"]
    assert not list(out.glob(".*.tmp")), "a temporary file was left behind"


def test_tables_have_a_session_column_and_csv_matches_json(report: Path) -> None:
    acc = json.loads((report.parent / "accuracy.json").read_text())
    assert {r["session"] for r in acc["rows"]} == {None, "cam", "phone"}
    lines = (report.parent / "accuracy.csv").read_text().splitlines()
    assert lines[0].split(",") == acc["columns"] and len(lines) == len(acc["rows"]) + 1


# ---------------------------------------------------------------- numbers against plain SQL


def _sql(db: Path, batch_dir: Path) -> sqlite3.Connection:
    b = load_batch(batch_dir)
    con = sqlite3.connect(":memory:")
    con.execute("ATTACH DATABASE ? AS cap", (str(db),))
    con.execute("CREATE TEMP TABLE labels (item_id TEXT, label INTEGER, target INTEGER, attack TEXT, eps REAL)")
    con.executemany(
        "INSERT INTO temp.labels VALUES (?,?,?,?,?)",
        [(i.id, i.label.index, i.target, i.attack, i.eps) for i in b.items],
    )
    con.executescript("""
        CREATE TEMP VIEW dig AS SELECT l.*,
          (SELECT top5_ids FROM cap.digital d WHERE d.item_id = l.item_id AND d.role = 'clean') AS c_ids,
          (SELECT top5_probs FROM cap.digital d WHERE d.item_id = l.item_id AND d.role = 'clean') AS c_probs,
          (SELECT top5_ids FROM cap.digital d WHERE d.item_id = l.item_id AND d.role = 'adv') AS a_ids
        FROM labels l;
        CREATE TEMP TABLE tiles AS
          WITH v AS (SELECT item_id, role, json_extract(top5_ids, '$[0]') AS t1, COUNT(*) AS n,
                            AVG(json_extract(top5_probs, '$[0]')) AS p
                     FROM cap.observations WHERE good = 1 GROUP BY item_id, role, t1),
               r AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY item_id, role ORDER BY n DESC, p DESC, t1 ASC) AS rk
                     FROM v)
          SELECT item_id, role, json_array(t1) AS top5_ids FROM r WHERE rk = 1;
    """)
    return con


def _in_top(col: str, k: int) -> str:
    return f"EXISTS (SELECT 1 FROM json_each({col}) j WHERE j.key < {k} AND j.value = l.label)"


def _cond(metric: str, k: int) -> str:
    return METRIC_FILTER[metric].format(
        c_ok=_in_top("l.c_ids", k), a_ok=_in_top("l.a_ids", k), a_ok5=_in_top("l.a_ids", 5)
    )


def test_frame_view_equals_plain_sql(report: Path, batch_dir: Path) -> None:
    rows = _summary(report)
    con = _sql(batch_dir / "captures" / "cam.sqlite", batch_dir)
    checked = 0
    for attack, eps in con.execute("SELECT DISTINCT attack, eps FROM labels").fetchall():
        for k in (1, 5):
            for metric in METRIC_FILTER:
                num, n = con.execute(
                    f"SELECT COALESCE(SUM({_in_top('o.top5_ids', k)}), 0), COUNT(*) FROM cap.observations o JOIN dig l "
                    "ON l.item_id = o.item_id WHERE o.good = 1 AND o.role = 'adv' AND l.attack = ? AND l.eps = ? AND "
                    f"{_cond(metric, k)}",
                    (attack, eps),
                ).fetchone()
                r = _row(rows, session="cam", attack=attack, eps=eps, topk=k, view="frame", metric=metric)
                assert (r["num"], r["n"]) == (num, n), (metric, k, eps)
                assert r["value"] == (pytest.approx(num / n) if n else None)
                assert r["ci_method"] == ("bootstrap" if n else "")
                checked += n > 0
            num, n = con.execute(
                f"SELECT COALESCE(SUM({_in_top('o.top5_ids', k)}), 0), COUNT(*) FROM cap.observations o JOIN labels l "
                "ON l.item_id = o.item_id WHERE o.good = 1 AND o.role = 'clean' AND l.attack = ? AND l.eps = ?",
                (attack, eps),
            ).fetchone()
            r = _row(rows, session="cam", attack=attack, eps=eps, topk=k, view="frame", metric="clean_acc")
            assert (r["num"], r["n"]) == (num, n)
    assert checked >= 6


def test_tile_view_and_digital_equal_plain_sql(report: Path, batch_dir: Path) -> None:
    rows = _summary(report)
    con = _sql(batch_dir / "captures" / "cam.sqlite", batch_dir)
    for attack, eps in con.execute("SELECT DISTINCT attack, eps FROM labels").fetchall():
        for metric in METRIC_FILTER:
            num, n = con.execute(
                f"SELECT COALESCE(SUM({_in_top('t.top5_ids', 1)}), 0), COUNT(*) FROM tiles t JOIN dig l ON l.item_id = "
                f"t.item_id WHERE t.role = 'adv' AND l.attack = ? AND l.eps = ? AND {_cond(metric, 1)}",
                (attack, eps),
            ).fetchone()
            r = _row(rows, session="cam", attack=attack, eps=eps, topk=1, view="tile", metric=metric)
            assert (r["num"], r["n"]) == (num, n), metric
            assert r["ci_method"] == ("wilson" if n else "")
        for k in (1, 5):
            for role, metric in (("clean", "clean_acc"), ("adv", "adv_acc")):
                num, n = con.execute(
                    f"SELECT COALESCE(SUM({_in_top('d.top5_ids', k)}), 0), COUNT(*) FROM cap.digital d JOIN labels l "
                    "ON l.item_id = d.item_id WHERE d.role = ? AND l.attack = ? AND l.eps = ?",
                    (role, attack, eps),
                ).fetchone()
                r = _row(rows, session="cam", attack=attack, eps=eps, topk=k, view="digital", metric=metric)
                assert (r["num"], r["n"]) == (num, n)
            num, n = con.execute(
                f"SELECT COALESCE(SUM(CASE WHEN l.target IS NULL THEN NOT {_in_top('l.a_ids', k)} ELSE "
                "json_extract(l.a_ids, '$[0]') = l.target END), 0), COUNT(*) FROM dig l WHERE "
                f"{_in_top('l.c_ids', k)} AND l.attack = ? AND l.eps = ?",
                (attack, eps),
            ).fetchone()
            assert (
                _row(rows, session="cam", attack=attack, eps=eps, topk=k, view="digital", metric="attack_success")[
                    "num"
                ],
                n,
            ) == (num, n)


def test_source_rows_come_from_batch_json(report: Path, batch_dir: Path) -> None:
    rows = _summary(report)
    b = load_batch(batch_dir)
    for eps in (8.0, 16.0):
        items = [i for i in b.items if i.eps == eps]
        right = sum(i.label.index == i.adv.top5["lite0"][0][0] for i in items)
        r = _row(rows, session=None, model="lite0", attack="fgsm", eps=eps, topk=1, view="digital", metric="adv_acc")
        assert (r["num"], r["n"], r["ci_method"]) == (right, len(items), "wilson")


def test_sweep_destruction_rate(report: Path) -> None:
    sweep = json.loads((report.parent / "sweep.json").read_text())["rows"]
    by = {(r["strength"], r["topk"]): r for r in sweep}
    assert by[(0.0, 1)]["destruction"] == 0.0 and by[(1.0, 1)]["destruction"] == 0.5
    assert by[(1.0, 1)]["destruction_n"] == 12
    assert "Transformation sweep" in report.read_text()


# ---------------------------------------------------------------- HTML in headless Chromium

CHECK_JS = """<script>
window.__errs = [];
window.addEventListener('error', function (e) {
  var t = e.target; window.__errs.push(t && t.tagName ? 'resource ' + t.tagName : 'js ' + e.message); }, true);
document.addEventListener('securitypolicyviolation', function (e) { window.__errs.push('csp ' + e.blockedURI); });
var ce = console.error;
console.error = function () {
  window.__errs.push('console ' + [].join.call(arguments, ' ')); ce.apply(console, arguments); };
window.addEventListener('load', function () {
  var bad = 0, imgs = document.images;
  for (var i = 0; i < imgs.length; i++) { if (!imgs[i].complete || imgs[i].naturalWidth === 0) bad++; }
  var d = document.createElement('pre'); d.id = 'ppcheck';
  d.textContent = 'PPCHECK images=' + imgs.length + ' broken=' + bad
    + ' errors=' + JSON.stringify(window.__errs) + ' END';
  document.body.appendChild(d);
});
</script>"""


def _chromium() -> str:
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if exe is None:
        pytest.skip("Debian chromium not installed; .ci/run installs it")
    return exe


def _open_in_chromium(html: str, tmp: Path) -> tuple[int, int, list[str], str]:
    """Load ``html`` (with the checker injected first in <head>) and return (images, broken, errors, stderr)."""
    page = tmp / "page.html"
    page.write_text(html.replace("<head>", "<head>" + CHECK_JS, 1), encoding="utf-8")
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    m = re.search(r"PPCHECK images=(\d+) broken=(\d+) errors=(.*?) END", proc.stdout)
    assert m, f"the page did not finish loading (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return int(m[1]), int(m[2]), json.loads(m[3].replace("&quot;", '"')), proc.stderr


def _console_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "CONSOLE" in ln or "Refused to" in ln or "Uncaught" in ln]


def test_html_loads_in_chromium_with_every_image_and_no_error(report: Path, tmp_path: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the page must not reference the network"
    assert "<script" not in html
    images, broken, errors, stderr = _open_in_chromium(html, tmp_path)
    assert images >= 10 and broken == 0 and errors == []
    assert _console_errors(stderr) == []


def test_chromium_check_catches_a_broken_image(tmp_path: Path) -> None:
    html = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><img '
        'src="data:image/png;base64,AAAA"></body></html>'
    )
    images, broken, errors, _ = _open_in_chromium(html, tmp_path)
    assert (images, broken) == (1, 1) and errors


# ---------------------------------------------------------------- PDF, gallery


def test_pdf_renders_with_pypdfium2(report: Path, batch_dir: Path) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    pdf = pdfium.PdfDocument(str(report.parent / "report.pdf"))
    try:
        assert len(pdf) >= 3
        page = pdf[0]
        img = np.asarray(page.render(scale=0.5).to_pil().convert("L"))
        assert img.min() < 100 and img.mean() > 150  # ink on white
        text = page.get_textpage().get_text_range()
        assert load_batch(batch_dir).batch_id in text and "Key figures" in text
        all_text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
        assert "ε" in all_text and "Methods" in all_text and "1607" in all_text
    finally:
        pdf.close()


def test_gallery_shows_crops_and_methods_record_the_setup(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert "best captured crop" in html and "worst captured crop" in html
    assert "weights sha256" in html and "seed 1607" in html and "synthetic printer" in html
    assert "cam" in html and "phone" in html


# ---------------------------------------------------------------- options, bad input, CLI


def test_formats_and_sessions(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    d = synthetic_batch(n_items=3)
    b = load_batch(d)
    write_capture_db(d / "captures" / "a.sqlite", b, "a", n_frames=4)
    write_capture_db(d / "captures" / "b.sqlite", b, "b", n_frames=4, seed=5)
    out = build_report(d, sessions=["b"], formats=("csv",))
    assert out == d / "report" and not (out / "index.html").exists() and not (out / "report.pdf").exists()
    assert (out / "summary.csv").is_file() and (out / "summary.json").is_file()
    assert {r["session"] for r in json.loads((out / "summary.json").read_text())["rows"]} == {None, "b"}
    (d / "sweep.json").write_text(
        json.dumps(
            [
                {
                    "transform": "jpeg",
                    "strength": 50,
                    "item_id": b.items[0].id,
                    "role": "adv",
                    "top1": 1,
                    "top5_ids": [1, 2, 3, 4, 5],
                    "top5_probs": [0.5, 0.2, 0.1, 0.1, 0.1],
                }
            ]
        )
    )
    build_report(d, formats=("csv",))
    assert (out / "sweep.csv").is_file()
    (d / "sweep.json").unlink()
    build_report(d, formats=("csv",))
    assert not (out / "sweep.csv").exists() and not (out / "sweep.json").exists()  # no stale numbers left
    (d / "sweep.json").write_text('{"rows": [{"transform": "blur"}]}')
    with pytest.raises(UserError, match="sweep.json: row 0 is malformed"):
        build_report(d, formats=("csv",))
    (d / "sweep.json").unlink()
    with pytest.raises(UserError, match="--format 'docx'"):
        build_report(d, formats=("html", "docx"))
    assert make_report(d, formats=("json",)).index is None  # JSON only


def test_session_with_no_good_observation_gives_na_not_a_crash(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    d = synthetic_batch(n_items=3)
    b = load_batch(d)
    write_capture_db(d / "captures" / "dark.sqlite", b, "dark", n_frames=3, odds=Odds(good=0.0))
    index = build_report(d, formats=("html",))
    rows = json.loads((d / "report" / "summary.json").read_text())["rows"]
    photo = [r for r in rows if r["view"] in ("frame", "tile")]
    assert photo and all(r["value"] is None and r["n"] == 0 for r in photo)
    html = index.read_text(encoding="utf-8")
    assert "no observation passed the quality gates" in html and "n/a" in html


def test_digital_only_report_says_so(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    d = synthetic_batch(n_items=3)
    index = build_report(d)
    assert "digital results only" in index.read_text(encoding="utf-8")
    assert json.loads((d / "report" / "report.json").read_text())["digital_only"] is True
    assert (d / "report" / "report.pdf").is_file()


def test_cli_prints_where_the_report_is(synthetic_batch) -> None:  # type: ignore[no-untyped-def]
    d = synthetic_batch(n_items=3)
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    res = CliRunner().invoke(app, ["report", str(d), "--format", "html"])
    assert res.exit_code == 0, res.output
    assert "report written to" in res.output and "digital results only" in res.output and "Key figures" in res.output
    write_capture_db(d / "captures" / "x.sqlite", load_batch(d), "x", n_frames=2)
    res = CliRunner().invoke(app, ["report", str(d), "--session", "nope"])
    assert isinstance(res.exception, UserError) and "--session nope" in str(res.exception)

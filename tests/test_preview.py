"""``capture --preview SOURCE`` and the ``capture --phone`` command line, through the real CLI."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import cv2
import numpy as np

from capture.feedback import build_report, reject_reason
from capture.pipeline import TileResult
from capture.sheets.hits import TileCrop
from capture.sheets.quality import QualityGates, TileQuality
from testkit.cli import assert_one_line_error, run_cli
from testkit.scenes import make_layout, scene, tiny_classifier

ROOT = Path(__file__).resolve().parents[1]


def _photos(batch: Path, out: Path) -> Path:
    """Two photos of the batch's sheet: near and head-on, then far away."""
    layout = make_layout(batch)
    sid = layout.sheets[0].sheet_id
    out.mkdir()
    for k, fill in enumerate([0.85, 0.22]):
        cv2.imwrite(
            str(out / f"IMG_{k}.jpg"),
            scene(batch, layout, {sid: dict(fill=fill, tilt_deg=5)}, blur_sigma=0.6, seed=k).frame,
        )
    return out


def test_preview_prints_detections_and_reasons_and_records_nothing(synthetic_batch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    batch = synthetic_batch(n_items=3, size=64)
    photos = _photos(batch, tmp_path / "photos")
    r = run_cli(
        "capture",
        str(batch),
        "--preview",
        str(photos),
        "--headless",
        "--frames",
        "2",
        "--min-tile-px",
        "60",
        "--min-sharpness",
        "1",
    )
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("frame ")]
    assert len(lines) == 2
    assert "1 sheet(s)" in lines[0] and "tiles 6, good 6" in lines[0]
    assert "1 sheet(s)" in lines[1] and "good 0; move closer: 6" in lines[1]
    assert (
        "nothing recorded" in " ".join(r.stdout.split()) and not (batch / "captures").exists()
    )  # the console wraps long paths
    assert_one_line_error(
        run_cli("capture", str(batch), "--preview", str(tmp_path / "nope.mp4")), "--preview", "nope.mp4"
    )
    assert_one_line_error(run_cli("capture", str(batch), "--preview", "0", "--camera", "0"), "--preview", "--camera")


def test_phone_options_are_checked(synthetic_batch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    batch = synthetic_batch(n_items=3, size=64)
    make_layout(batch)
    model = tiny_classifier(tmp_path / "tiny.onnx", size=48)
    assert_one_line_error(
        run_cli("capture", str(batch), "--model", str(model), "--phone", "--camera", "0"), "--phone", "--camera"
    )
    assert_one_line_error(run_cli("capture", str(batch), "--model", str(model), "--phone", "--port", "70000"), "--port")


async def _post_photo(url: str, jpeg: bytes) -> dict[str, object]:
    base, token = url.split("/?t=")
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as http:
        async with http.post(f"{base}/photo?t={token}&p=cli-phone-1", data=jpeg) as r:
            return dict(await r.json())


def test_capture_phone_command_prints_the_url_and_qr_and_records_a_photo(synthetic_batch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    batch = synthetic_batch(n_items=3, size=64)
    photos = _photos(batch, tmp_path / "photos")
    model = tiny_classifier(tmp_path / "tiny.onnx", size=48)
    env = {**os.environ, "PHOTOPROOF_CONFIG_DIR": str(tmp_path / "config"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "app.py"),
            "capture",
            str(batch),
            "--model",
            str(model),
            "--phone",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--duration",
            "20",
            "--headless",
            "--session",
            "cli",
            "--min-tile-px",
            "40",
            "--min-sharpness",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("phone page: "):
                break
        url = seen[-1].split("phone page: ", 1)[1].strip()
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+/\?t=[A-Za-z0-9_-]{20,}", url), url
        report = asyncio.run(_post_photo(url, (photos / "IMG_0.jpg").read_bytes()))
        assert report["type"] == "report" and len(report["tiles"]) == 6  # type: ignore[arg-type]
        proc.send_signal(2)  # Ctrl-C: every session closes cleanly
        proc.wait(timeout=120)  # its output is small: the pipe does not fill
        out = proc.stdout.read()  # through the same buffered reader as the lines above
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(seen) + out
    assert proc.returncode == 130, text  # stopped by Ctrl-C, cleanly: the conventional 128 + SIGINT
    assert "certificate SHA-256 " in text and "\u2588" in text  # the fingerprint, the QR code
    assert "recorded" in text and "cli-phone1.sqlite" in text and (batch / "captures" / "cli-phone1.sqlite").is_file()


def test_reasons_and_verdicts_in_a_report() -> None:
    gates = QualityGates(min_sharpness=10, min_tile_px=80, max_angle_deg=50, max_clipped=0.1, max_reproj_px=2)
    from contracts.layout import Tile

    def crop(
        item: str,
        sharpness: float = 50.0,
        tile_px: float = 120.0,
        angle_deg: float = 10.0,
        clipped: float = 0.0,
        reproj_px: float = 0.5,
    ) -> TileCrop:
        quad = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
        return TileCrop(
            Tile(item=item, role="adv", image="x.png", box_mm=[0, 0, 1, 1]),
            "s0",
            np.zeros((4, 4, 3), np.uint8),
            quad,
            TileQuality(sharpness=sharpness, tile_px=tile_px, angle_deg=angle_deg, clipped=clipped),
            good=False,
            reproj_px=reproj_px,
        )

    crops = [
        crop("a"),
        crop("b", tile_px=50),
        crop("c", angle_deg=70),
        crop("d", sharpness=3),
        crop("e", clipped=0.5),
        crop("f", reproj_px=5),
    ]
    assert [reject_reason(gates, c) for c in crops] == [
        "",
        "move closer",
        "too steep",
        "blurred",
        "glare or too dark",
        "hold still",
    ]
    results = {
        ("s0", "a", "adv"): TileResult(top1=7, prob=0.9, frame_idx=3, good=True),
        ("s0", "b", "adv"): TileResult(top1=1, prob=0.5, frame_idx=3, good=False),
    }
    r = build_report(
        3,
        (720, 1280, 3),
        [],
        crops,
        [],
        results,
        {("s0", "a", "adv"): 2},
        {"a": 7, "b": 2},
        [f"c{i}" for i in range(10)],
        gates,
        min_good=0,
        per_tile=5,
        observations=10,
        good=2,
    )
    v = {t.item: (t.verdict, t.label, t.good) for t in r.tiles}
    assert v["a"] == ("seen", "c7", 2) and v["b"] == ("fooled", "c1", 0) and v["c"][0] == "pending"
    assert (r.width, r.height, r.per_tile) == (1280, 720, 5)


def test_reasons_judge_pairs_together() -> None:
    """The phone page's reasons follow the pair-judged gate: a tile counts only with its partner."""
    from capture.sheets.quality import judge_pairs
    from contracts.layout import Tile

    gates = QualityGates(min_sharpness=10, min_tile_px=80, max_angle_deg=50, max_clipped=0.1, max_reproj_px=2)
    tiles = [
        Tile(item=i, role=r, image="x.png", box_mm=[0, 0, 1, 1]) for i in ("a", "b", "c") for r in ("clean", "adv")
    ]

    def crop(t: Tile, sharpness: float = 50.0) -> TileCrop:
        quad = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
        q = TileQuality(sharpness=sharpness, tile_px=120.0, angle_deg=10.0, clipped=0.0)
        return TileCrop(
            t,
            "s0",
            np.zeros((4, 4, 3), np.uint8),
            quad,
            q,
            good=not gates.failures(q, 0.5),
            reproj_px=0.5,
            fail=gates.failures(q, 0.5),
        )

    # a: both pass; b: the adversarial tile is blurred; c: only the clean tile is in view
    crops = [crop(tiles[0]), crop(tiles[1]), crop(tiles[2]), crop(tiles[3], sharpness=3), crop(tiles[4])]
    judge_pairs(crops, tiles)
    assert [(c.tile.item, c.tile.role, c.good, reject_reason(gates, c)) for c in crops] == [
        ("a", "clean", True, ""),
        ("a", "adv", True, ""),
        ("b", "clean", False, "its pair: blurred"),
        ("b", "adv", False, "blurred"),
        ("c", "clean", False, "keep whole pairs in view"),
    ]
    r = build_report(
        0, (720, 1280, 3), [], crops, [], {}, {}, {}, [], gates, min_good=0, per_tile=None, observations=0, good=0
    )
    assert {(t.item, t.role): t.reason for t in r.tiles}[("b", "clean")] == "its pair: blurred"


def test_no_server_code_is_loaded_without_phone() -> None:
    """The CLI imports the phone server only for ``--phone``: no other command can open a listener."""
    code = (
        "import sys, app; print(sorted(m for m in ('aiohttp', 'capture.phones', 'capture.sources.phone.server') if m "
        "in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr

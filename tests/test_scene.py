"""Patch cards and the scene mode: printed card -> rendered frames -> markers found -> figures equal a hand count."""

from __future__ import annotations

import hashlib
import io
import json
import math
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from analysis.scene import scene_figures
from analysis.stats import wilson
from capture.classify import OnnxClassifier
from capture.overlay import AMBER, GREEN, WHITE
from capture.scene import PatchFinder, Region, run_scene
from capture.scene_view import BAR_PX, SceneTally, annotate, scene_status
from capture.sources.files import PhotoSource
from contracts.capturedb import create_db, encode_top5
from contracts.errors import UserError
from contracts.layout import load_layout
from contracts.manifest import load_batch, save_batch
from contracts.patchcard import patch_cards
from printouts.sheets import print_batch
from testkit.batch import write_batch
from testkit.cli import assert_one_line_error, run_cli
from testkit.scenes import compose_frame, pose_homography, render_pdf_page, tiny_classifier

FRAME = (1280, 720)
PPM = 6.0


def _patch_batch(batch_dir: Path, target: int = 5) -> None:
    """A synthetic batch whose first item carries a (random-texture) patch, as craft --attack patch records it."""
    write_batch(batch_dir, n_items=2, size=64)
    rng = np.random.default_rng(1)
    arr = np.asarray(
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).resize((24, 24), Image.Resampling.NEAREST)
    )
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    (batch_dir / "patches").mkdir()
    (batch_dir / "patches" / "patch-square-a10-t5.png").write_bytes(buf.getvalue())
    batch = load_batch(batch_dir)
    for it in batch.items:
        it.attack, it.target = "patch", target
        it.params = {
            "shape": "square",
            "patch": {
                "path": "patches/patch-square-a10-t5.png",
                "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                "placement": {"cx": 30, "cy": 30, "side": 24, "angle_deg": 0},
            },
        }
    save_batch(batch_dir, batch)


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("scene") / "batch"
    _patch_batch(d)
    print_batch(d, patch_mm=60.0)
    return d


def test_patch_card_is_printed_with_its_own_markers_at_the_stated_size(printed: Path) -> None:
    layout = load_layout(printed)
    (card,) = patch_cards(layout)
    assert card.size_mm == 60.0 and card.box_mm[2:] == [60.0, 60.0] and card.target == 5
    sheet_ids = {m.id for s in layout.sheets for m in s.markers}
    assert not sheet_ids & {m.id for m in card.markers}, "the card's markers are not any sheet's"
    page = render_pdf_page(printed / "sheets.pdf", card.page, ppm=PPM)
    corners, ids, _ = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_1000)).detectMarkers(
        cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    )
    found = {int(i): c.reshape(4, 2) for c, i in zip(corners, ids.ravel(), strict=True)}
    for m in card.markers:
        got = (found[m.id] + 0.5) / PPM
        assert np.abs(got - np.asarray(m.corners_mm)).max() < 0.3
    x, y, w, h = (int(round(v * PPM)) for v in card.box_mm)
    inner = page[y + 3 : y + h - 3, x + 3 : x + w - 3]
    assert inner.std() > 40, "the patch image is printed inside its box"


def test_bad_patch_size_and_batch_without_patch_name_the_option(tmp_path: Path, printed: Path) -> None:
    with pytest.raises(UserError, match="--patch-mm 500"):
        print_batch(printed, patch_mm=500.0)
    write_batch(tmp_path / "plain")
    with pytest.raises(UserError, match="--patch-mm: .* holds no patch"):
        print_batch(tmp_path / "plain", patch_mm=60.0)


def _frames(printed: Path) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    layout = load_layout(printed)
    (card,) = patch_cards(layout)
    page = render_pdf_page(printed / "sheets.pdf", card.page, ppm=PPM)
    size = list(layout.sheets[0].size_mm)
    poses = [None, dict(fill=0.9), dict(fill=0.9, roll_deg=25.0, tilt_deg=30.0), dict(fill=0.5, shift=(0.1, 0.05))]
    frames, Hs = [], []
    for k, pose in enumerate(poses):
        if pose is None:
            frames.append(compose_frame([], PPM, FRAME, seed=k))
            Hs.append(None)
        else:
            H = pose_homography(size, frame=FRAME, **pose)  # type: ignore[arg-type]
            frames.append(compose_frame([(page, H)], PPM, FRAME, seed=k, blur_sigma=0.6, noise_std=2.0))
            Hs.append(H)
    return frames, Hs


def test_scene_mode_finds_the_patch_where_and_how_big_it_is(printed: Path, tmp_path: Path) -> None:
    layout = load_layout(printed)
    (card,) = patch_cards(layout)
    frames, Hs = _frames(printed)
    finder = PatchFinder([card], layout.aruco_dictionary, focal_px=float(FRAME[0]))
    view = Region(0, 0, *FRAME).view(*FRAME)
    assert view == Region(280, 0, 720, 720)
    x, y, w, h = card.box_mm
    box = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
    for frame, H, roll, tilt in zip(frames, Hs, [None, 0.0, 25.0, 0.0], [None, 0.0, 30.0, 0.0], strict=True):
        got = finder.find(frame, view)
        if H is None:
            assert got == []
            continue
        (s,) = got
        true_quad = cv2.perspectiveTransform(box[None], H)[0]
        assert s.markers == 4
        assert np.abs(s.quad_px - true_quad).max() < 2.0
        rect = np.array([[280, 0], [1000, 0], [1000, 720], [280, 720]], np.float32)
        true_share = cv2.intersectConvexConvex(true_quad.astype(np.float32), rect)[0] / 720**2
        assert s.share == pytest.approx(true_share, abs=0.003)
        assert s.rotation_deg == pytest.approx(roll, abs=1.5)
        assert s.tilt_deg == pytest.approx(tilt, abs=3.0)
    # the whole capture: photos in, one row per frame
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, f in enumerate(frames):
        cv2.imwrite(str(photos / f"f{k}.png"), f)
    clf = OnnxClassifier(tiny_classifier(tmp_path / "tiny.onnx"))
    db = run_scene(printed, PhotoSource(photos), clf, label=3, session_id="scene1")
    con = sqlite3.connect(db)
    rows = con.execute(
        "SELECT frame_idx, patch_present, patch_markers, patch_share, patch_target, view, label FROM "
        "scene_observations ORDER BY frame_idx"
    ).fetchall()
    con.close()
    assert [r[1] for r in rows] == [0, 1, 1, 1] and [r[2] for r in rows] == [0, 4, 4, 4]
    assert rows[1][3] > rows[3][3] > 0.01, "the nearer patch looks bigger"
    assert rows[1][4] == 5 and json.loads(rows[0][5]) == [280, 0, 720, 720] and rows[0][6] == 3
    from analysis.report import make_report

    make_report(printed, formats=("csv",))
    table = json.loads((printed / "report" / "scene.json").read_text())
    got = {r["group"]: r for r in table["rows"]}
    assert got["without patch"]["frames"] == 1 and got["with patch"]["frames"] == 3


def _on_line(img: np.ndarray, p: np.ndarray, colour: tuple[int, int, int], r: int = 2) -> bool:
    """Some pixel within ``r`` of ``p`` has exactly ``colour``."""
    x, y = int(round(p[0])), int(round(p[1]))
    return bool((img[y - r : y + r + 1, x - r : x + r + 1] == colour).all(axis=2).any())


def test_live_window_draws_the_view_the_patch_and_the_status(
    printed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = load_layout(printed)
    (card,) = patch_cards(layout)
    frames, _ = _frames(printed)
    finder = PatchFinder([card], layout.aruco_dictionary, focal_px=float(FRAME[0]))
    v = Region(0, 0, *FRAME).view(*FRAME)
    tally = SceneTally(frozenset({5}))
    names = [f"class {i}" for i in range(10)]
    names[5] = "toaster"
    # frame 0: no card, top-1 the target; frame 1: the card, top-1 the target;
    # frame 2: the card tilted 30 deg, top-1 another class
    for k, top1 in enumerate([5, 5, 7]):
        frame = frames[k]
        before = frame.copy()
        got = finder.find(frame, v)
        s = got[0] if got else None
        tally.add(top1, s.card.target if s else None, s is not None)
        img = annotate(frame, (v.x, v.y, v.w, v.h), s, top1, 0.87, names, tally)
        status = scene_status(
            names[top1], 0.87, s is not None, s.share if s else None, s.tilt_deg if s else None, tally
        )
        assert np.array_equal(frame, before) and img.shape == frame.shape, "the frame itself is not drawn on"
        for y in (200, 400, 700):  # the view square's left and right edges, below the status bar
            assert _on_line(img, np.array([v.x + 1, y]), WHITE) and _on_line(img, np.array([v.x + v.w - 2, y]), WHITE)
        assert np.array_equal(img[100:, :200], frame[100:, :200]), "nothing is drawn outside the view and the bar"
        bar = img[:BAR_PX]
        assert (bar == 0).all(axis=2).mean() > 0.8 and (bar == 255).all(axis=2).sum() > 50, (
            "a black bar with white text"
        )
        if s is None:
            assert status.startswith("top-1 toaster 0.87 | no patch | frames with patch 0, without 1")
            assert not (img == GREEN).all(axis=2).any() and not (img == AMBER).all(axis=2).any()
            continue
        colour = GREEN if top1 == 5 else AMBER
        q = s.quad_px
        for a, b in zip(
            q, np.roll(q, -1, axis=0), strict=True
        ):  # every edge of the patch, at a quarter, half and three quarters
            for t in (0.25, 0.5, 0.75):
                assert _on_line(img, a + t * (b - a), colour)
        assert (
            status.startswith(
                f"top-1 {names[top1]} 0.87 | patch {100 * s.share:.1f}% of view, tilt {s.tilt_deg:.0f} deg |"
            )
            and s.share > 0.01
        )
    assert s is not None and s.tilt_deg == pytest.approx(30.0, abs=3.0)
    assert status.endswith("frames with patch 2, without 1 | target rate 1/2 = 50% with, 1/1 = 100% without")
    # without a display, asking for the window records exactly as headless does
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, f in enumerate(frames[:2]):
        cv2.imwrite(str(photos / f"f{k}.png"), f)
    clf = OnnxClassifier(tiny_classifier(tmp_path / "tiny.onnx"))
    db = run_scene(printed, PhotoSource(photos), clf, label=3, session_id="window1", headless=False)
    con = sqlite3.connect(db)
    assert con.execute("SELECT patch_present FROM scene_observations ORDER BY frame_idx").fetchall() == [(0,), (1,)]
    con.close()


def test_region_is_checked_against_the_frame() -> None:
    with pytest.raises(UserError, match="--region"):
        Region.parse("1,2,3")
    with pytest.raises(UserError, match="leaves the 1280x720 frame"):
        Region.parse("1000,0,400,400").view(1280, 720)
    assert Region.parse("100,50,400,300").view(1280, 720) == Region(150, 50, 300, 300)


def _hand_db(path: Path) -> None:
    """Ten frames with known outcomes: 4 without the patch, 6 with it at two sizes."""
    con = create_db(path)
    con.execute(
        "INSERT INTO sessions (id, batch_id, source, model, provider, started, config) VALUES "
        "('s','b','photos','m','cpu',0,'{}')"
    )
    rows = [  # present, share, top1
        (0, None, 3),
        (0, None, 3),
        (0, None, 3),
        (0, None, 9),
        (1, 0.03, 3),
        (1, 0.04, 5),
        (1, 0.03, 7),
        (1, 0.15, 5),
        (1, 0.12, 5),
        (1, 0.18, 3),
    ]
    for k, (present, share, top1) in enumerate(rows):
        ids, probs = encode_top5([top1, 1, 2, 4, 6], [0.5, 0.2, 0.1, 0.1, 0.1])
        con.execute(
            "INSERT INTO scene_observations VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                "s",
                k,
                "[0,0,10,10]",
                None,
                "p" if present else None,
                5 if present else None,
                present,
                4 if present else 0,
                share,
                None,
                None,
                None,
                None,
                top1,
                0.5,
                ids,
                probs,
            ),
        )
    con.commit()
    con.close()


def test_scene_figures_equal_a_hand_count(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    _hand_db(db)
    rows = {r["group"]: r for r in scene_figures([db])}
    # No --label: the true class is the mode without the patch, 3 (three of four frames).
    expect = {  # group: (frames, target hits, fooled)
        "without patch": (4, 0, 1),
        "with patch": (6, 3, 4),
        "with patch, share 2-5%": (3, 1, 2),
        "with patch, share 10-20%": (3, 2, 2),
    }
    assert set(rows) == set(expect)
    for g, (n, k_t, k_f) in expect.items():
        r = rows[g]
        assert r["frames"] == n and r["true_class"] == "3 (mode without the patch)"
        assert (r["target_rate"].num, r["target_rate"].n) == (k_t, n)
        assert (r["fooling_rate"].num, r["fooling_rate"].n) == (k_f, n)
        assert (r["target_rate"].lo, r["target_rate"].hi) == pytest.approx(wilson(k_t, n))
        assert r["target_rate"].value == pytest.approx(k_t / n)
    assert rows["with patch, share 10-20%"]["median_share"] == 0.15
    assert math.isclose(rows["with patch"]["fooling_rate"].value, 4 / 6)


def test_cli_scene_capture_and_its_bad_options(printed: Path, tmp_path: Path) -> None:
    frames, _ = _frames(printed)
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, f in enumerate(frames[:2]):
        cv2.imwrite(str(photos / f"f{k}.png"), f)
    model = tiny_classifier(tmp_path / "tiny.onnx")
    r = run_cli(
        "capture",
        str(printed),
        "--scene",
        "--model",
        str(model),
        "--photos",
        str(photos),
        "--label",
        "3",
        "--session",
        "cli1",
        "--headless",
    )
    assert r.returncode == 0, r.stderr
    assert "scene: the patch in view and not" in r.stdout
    con = sqlite3.connect(printed / "captures" / "cli1.sqlite")
    assert con.execute("SELECT patch_present, label FROM scene_observations ORDER BY frame_idx").fetchall() == [
        (0, 3),
        (1, 3),
    ]
    con.close()
    assert_one_line_error(
        run_cli("capture", str(printed), "--scene", "--simulate", "--model", str(model)), "--simulate", "--scene"
    )
    assert_one_line_error(
        run_cli("capture", str(printed), "--region", "0,0,64,64", "--photos", str(photos), "--model", str(model)),
        "--region",
        "--scene",
    )
    assert_one_line_error(
        run_cli("craft", "--out", str(tmp_path / "b"), "--attack", "patch", "--patch-area", "0.9"), "--patch-area"
    )


def test_scene_figure_plots_the_hand_count_against_patch_size(tmp_path: Path) -> None:
    import warnings
    import xml.etree.ElementTree as ET

    import pypdfium2 as pdfium
    from matplotlib.container import ErrorbarContainer

    from analysis import plots_sweep
    from analysis.report import make_report
    from analysis.scene import scene_series

    d = tmp_path / "batch"
    write_batch(d, n_items=2, batch_id="b")
    _hand_db(d / "captures" / "s.sqlite")
    (s,) = scene_series([d / "captures" / "s.sqlite"])
    # by hand (see _hand_db; the true class is 3, the mode without the patch): 2-5%: shares .03 .04 .03, top-1 3 5 7;
    # 10-20%: shares .15 .12 .18, top-1 5 5 3; without: top-1 3 3 3 9
    assert [(p.bin, p.median_share, p.frames) for p in s.points] == [("2-5%", 0.03, 3), ("10-20%", 0.15, 3)]
    expect = {"target": ([1, 2], (0, 4)), "fooling": ([2, 2], (1, 4))}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib must not warn
        fig = plots_sweep.scene_vs_share.figure([s], [f"class {i}" for i in range(10)])  # type: ignore[attr-defined]
    for ax, (hits, (k0, n0)) in zip(fig.axes, expect.values(), strict=True):
        (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        line, _, (segs,) = bars.lines
        assert line.get_xdata().tolist() == pytest.approx([3.0, 15.0])
        assert line.get_ydata().tolist() == pytest.approx([100 * k / 3 for k in hits])
        for seg, k in zip(segs.get_segments(), hits, strict=True):
            assert [seg[0][1], seg[1][1]] == pytest.approx([100 * v for v in wilson(k, 3)])  # type: ignore[union-attr]
        (ref,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert ref.get_ydata()[0] == pytest.approx(100 * k0 / n0)
        (band,) = ax.patches  # axhspan: a Rectangle in (axes x, data y)
        ys = band.get_transform().transform(band.get_path().vertices)[:, 1]
        ys = ax.transData.inverted().transform(np.column_stack([np.ones_like(ys), ys]))[:, 1]
        assert (ys.min(), ys.max()) == pytest.approx(tuple(100 * v for v in wilson(k0, n0)))  # type: ignore[union-attr]
        assert "share of the view (%)" in ax.get_xlabel() and "(% of frames)" in ax.get_ylabel()
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert legend == ["target 5 (class 5), with patch", "target 5 (class 5), without patch (n=4)"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.legends[0].get_window_extent(canvas.get_renderer())
    assert not any(box.overlaps(ax.get_window_extent(canvas.get_renderer())) for ax in fig.axes), (
        "the legend covers no data"
    )
    # in the report: PNG inline next to the scene table, SVG and PDF beside it
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        make_report(d, formats=("html", "pdf"))
    figs = d / "report" / "figures"
    root = ET.parse(figs / "scene-share.svg").getroot()
    assert root.tag.endswith("svg") and "patch area, share of the view (%)" in (figs / "scene-share.svg").read_text(
        encoding="utf-8"
    )
    pdf = pdfium.PdfDocument(str(figs / "scene-share.pdf"))
    assert len(pdf) == 1
    pdf.close()
    html = (d / "report" / "index.html").read_text(encoding="utf-8")
    scene_at = html.index("Adversarial patch in the scene: with and without")
    assert scene_at < html.index('href="figures/scene-share.svg"') < html.index("<h2>Figures</h2>")

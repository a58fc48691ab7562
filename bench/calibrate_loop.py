"""Does a calibrated profile predict the camera it was fitted to? Per-tile top-1 agreement, closed loop.

The "real" camera is the simulated one with the preset's channel but no ISP of its own and no JPEG of
its own (``--first-jpeg 100``; a camera compresses once, after its ISP), its frames passed through
``testkit.foreign_isp`` (an ISP unlike Photoproof's, which ends in JPEG 90). With ``--truth-seed N``
the real camera's printer, blur, noise and framing are also drawn at random (:func:`drawn`), so that
the preset is wrong about more than the ISP. Four sessions of one printed batch, read by the same
ONNX model:

- ``real-1``, ``real-2``: the real camera twice (different poses, light and noise): how often
  that camera repeats itself, tile by tile;
- ``uncalibrated``: the preset as it ships;
- ``fitted``: the profile ``calibrate`` fits to ``real-2`` (so nothing is fitted to ``real-1``).

Each tile's top-1 is the majority over its good observations; agreement with ``real-1`` is the
share of tiles (seen in both sessions) with the same top-1, with a Wilson 95 % interval. Clean
accuracy and adversarial success (top-1 against the item's label) per session. The goal (issue 27) is
judged on the tiles every session saw, paired: the fitted profile's agreement minus the camera's own
(real-2's), with a 95 % bootstrap interval clustered by photo (tiles of one photo are resampled together).

Run (after crafting, e.g. ``photoproof craft --out B --images tuning --limit 8 --attack bim --eps 16``)::

    python bench/calibrate_loop.py --batch B --out /tmp/loop --model lite0 --frames 8

Many tiles cheaply (``bench/calibrate_pool.py`` pools the runs): one batch per ε, each run with its own
``--seed``, ``--frames-per-view 2`` (a dense layout's close-ups), and ``--phase capture`` then ``--phase fit``
so that no command runs for more than a few minutes. One reference session is a noisy yardstick (sessions
of one camera differ beyond what an interval over photos allows): ``--repeats 3`` adds the camera's
``real-3`` and ``real-4`` and the fitted profile's ``fitted-2`` and ``fitted-3``, each at a seed of its own, and
``calibrate_pool.py`` then judges the fitted profile against every reference but ``real-2``. ``--pool`` adds a
profile fitted to two sessions of the camera (``real-2`` and ``real-p``, ``calibrate -s real-2 -s real-p``),
captured at the one-session profile's own seeds, so that the two profiles are compared on the same draws.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.stats import wilson  # noqa: E402
from bench.fidelity import onnx_file  # noqa: E402
from capture.session import run_capture  # noqa: E402
from channel.calibrate import calibrate  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from contracts.errors import UserError  # noqa: E402
from contracts.manifest import load_batch  # noqa: E402
from contracts.profile import ChannelProfile, Isp, load_profile  # noqa: E402
from printouts.sheets import print_batch  # noqa: E402
from testkit.foreign_isp import ForeignCamera  # noqa: E402

log = logging.getLogger("bench.calibrate_loop")


def tiles(work: Path, session: str) -> dict[tuple[str, str], int]:
    """(item, role) -> majority top-1 over the tile's good observations."""
    con = sqlite3.connect(work / "captures" / f"{session}.sqlite")
    rows = con.execute("SELECT item_id, role, top1 FROM observations WHERE good=1").fetchall()
    con.close()
    votes: dict[tuple[str, str], Counter[int]] = {}
    for item, role, top1 in rows:
        votes.setdefault((item, role), Counter())[int(top1)] += 1
    return {k: c.most_common(1)[0][0] for k, c in votes.items()}


def drawn(base: ChannelProfile, seed: int, tilt: bool = False) -> ChannelProfile:
    """``base`` with its printer, blur, noise and framing drawn at random (a camera the preset does not know).

    ``tilt``: the sheet's tilt range too, ``[0, T]`` with T drawn from 8-30 deg (after every other draw, so that the
    rest of a seed's camera stays as it was without it)."""
    rng = np.random.default_rng(seed)
    u = rng.uniform
    pr = replace(
        base.printer,
        tone_gamma=float(u(0.85, 1.3)),
        dot_gain=float(u(0.03, 0.2)),
        paper_white=tuple(float(v) for v in u(0.78, 0.9, 3)),
        ink_black=tuple(float(v) for v in u(0.03, 0.08, 3)),
        gamut_compression=float(u(0.1, 0.35)),
    )
    df = float(u(0.4, 1.4))
    cam = replace(
        base.camera,
        defocus_sigma_px=(df, df + 0.2),
        motion_blur_px=(0.0, float(u(0.0, 1.0))),
        shot_noise=(float(u(2e-4, 1.5e-3)),) * 2,
        read_noise=(float(u(1e-3, 8e-3)),) * 2,
    )
    fill = float(u(0.72, 0.9))
    scene = replace(base.scene, sheet_fill=(fill, fill + 0.06))
    if tilt:
        scene = replace(scene, tilt_deg=(0.0, float(u(8.0, 30.0))))
    return replace(base, printer=pr, camera=cam, scene=scene)


def real_profile(base: ChannelProfile, first_jpeg: float = 100.0) -> ChannelProfile:
    """The closed loop's "real" camera before its foreign ISP: ``base`` with no ISP and one JPEG of ``first_jpeg``."""
    return replace(base, isp=Isp(), camera=replace(base.camera, jpeg_quality=(first_jpeg, first_jpeg)))


def prepare(batch: Path, work: Path, base: ChannelProfile, model: str) -> None:
    """Copy ``batch`` to ``work`` and print it for ``base``'s frame size and ``model``, unless done before."""
    if (work / "layout.json").is_file():
        return
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(batch, work, ignore=shutil.ignore_patterns("captures", "report", "sheets.pdf", "layout.json"))
    try:
        print_batch(work, camera=(base.camera.width, base.camera.height), model=model)
    except UserError as e:
        log.warning("%s; printing the default layout", e)
        print_batch(work)


def loop_args(ap: argparse.ArgumentParser) -> None:
    """The options every closed-loop bench takes: the batch, the output folder, the target and the preset."""
    ap.add_argument("--batch", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--model", default="lite0", help="the target model (zoo name), exported to ONNX")
    ap.add_argument("--preset", default="office-laser-webcam")


def prepared(a: argparse.Namespace, frames_per_view: int) -> tuple[Path, ChannelProfile, Path, int]:
    """``a``'s batch printed into ``a.out/work`` (:func:`prepare`): the work folder, the preset, the target's ONNX
    file and the frames of a session of ``frames_per_view`` frames per camera view."""
    work = a.out / "work"
    base = load_profile(a.preset)
    prepare(a.batch, work, base, a.model)
    frames = frames_per_view * len(SimulatedCamera.from_batch(work, base, n_frames=1).groups)
    return work, base, onnx_file(a.model, a.out / "onnx"), frames


def seeds(text: str) -> list[int]:
    """``1-8`` or ``1,3,5``."""
    if "-" in text:
        a, b = text.split("-", 1)
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def finished(work: Path, session: str) -> bool:
    """Whether capture ``session`` ran to its end (a session cut short is resumed by ``run_capture``)."""
    path = work / "captures" / f"{session}.sqlite"
    if not path.is_file():
        return False
    con = sqlite3.connect(path)
    try:
        row = con.execute("SELECT stopped FROM sessions WHERE id=?", (session,)).fetchone()
    except sqlite3.OperationalError:
        row = None
    con.close()
    return bool(row and row[0] is not None)


def paired(
    ref: dict[tuple[str, str], int],
    a: dict[tuple[str, str], int],
    b: dict[tuple[str, str], int],
    photo: dict[str, str],
    seed: int = 0,
    resamples: int = 2000,
) -> tuple[float, float, float, int, int]:
    """Agreement with ``ref`` of ``a`` minus that of ``b`` on the tiles all three saw: (difference, 95 % interval
    by a bootstrap clustered by photo, n tiles, n photos)."""
    keys = sorted(set(ref) & set(a) & set(b))
    if not keys:
        return math.nan, math.nan, math.nan, 0, 0
    photos = sorted({photo.get(k[0], k[0]) for k in keys})
    idx = {p: i for i, p in enumerate(photos)}
    d = np.zeros(len(photos))
    n = np.zeros(len(photos))
    for k in keys:
        i = idx[photo.get(k[0], k[0])]
        d[i] += float(ref[k] == a[k]) - float(ref[k] == b[k])
        n[i] += 1
    rng = np.random.default_rng(seed)
    w = rng.multinomial(len(photos), np.full(len(photos), 1.0 / len(photos)), size=resamples)
    boot = (w @ d) / np.maximum(w @ n, 1)
    lo, hi = np.quantile(boot, (0.025, 0.975))
    return float(d.sum() / n.sum()), float(lo), float(hi), len(keys), len(photos)


def _pct(k: int, n: int) -> str:
    if n == 0:
        return "- (n = 0)"
    lo, hi = wilson(k, n) or (0.0, 1.0)
    return f"{100 * k / n:.0f} % [{100 * lo:.0f}-{100 * hi:.0f}] (n = {n})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    loop_args(ap)
    ap.add_argument("--frames", type=int, default=8, help="frames per sheet and session")
    ap.add_argument(
        "--frames-per-view",
        type=int,
        default=None,
        help="frames per camera view instead (a dense layout's close-ups: one per pair, one per sheet's strip)",
    )
    ap.add_argument("--first-jpeg", type=float, default=100.0, help="the real camera's JPEG before the foreign ISP")
    ap.add_argument("--truth-seed", type=int, default=None, help="draw the real camera's channel with this seed")
    ap.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the sessions' seeds are SEED+1 (real-1) ... SEED+4 (fitted): runs pooled "
        "by bench/calibrate_pool.py need different seeds, else their clean tiles are photographed alike",
    )
    ap.add_argument("--truth-tilt", action="store_true", help="with --truth-seed, draw the sheet's tilt range too")
    ap.add_argument("--jpeg-quality", type=int, default=None, help="tell calibrate the JPEG quality (default: not)")
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="K: the camera's reference sessions real-1, real-3 ... real-(K+1) (seeds SEED+13 ...) and the fitted "
        "profile's sessions fitted, fitted-2 ... fitted-K (seeds SEED+22 ...), every seed its own; "
        "bench/calibrate_pool.py judges the goal against every reference when K >= 2",
    )
    ap.add_argument(
        "--pool",
        action="store_true",
        help="also capture the camera's real-p (seed SEED+30), fit pooled.toml to real-2 and real-p together, and "
        "capture it as pooled, pooled-2 ... pooled-K at the fitted sessions' own seeds (common random numbers)",
    )
    ap.add_argument(
        "--phase",
        choices=("all", "capture", "fit"),
        default="all",
        help="capture: only the three sessions that need no fit (each command stays short); fit: the rest",
    )
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    work = a.out / "work"
    prepare(a.batch, work, load_profile(a.preset), a.model)
    from contracts.layout import load_layout

    n_sheets = len(load_layout(work).sheets)
    model = onnx_file(a.model, a.out / "onnx")
    base = load_profile(a.preset)
    real = real_profile(base, a.first_jpeg)
    if a.truth_seed is not None:
        real = drawn(real, a.truth_seed, a.truth_tilt)
    frames = a.frames * n_sheets
    if a.frames_per_view is not None:
        frames = a.frames_per_view * len(SimulatedCamera.from_batch(work, base, n_frames=1).groups)
    plan = [
        ("real-1", real, True, a.seed + 1),
        ("real-2", real, True, a.seed + 2),
        ("uncalibrated", base, False, a.seed + 3),
        *[(f"real-{j}", real, True, a.seed + 10 + j) for j in range(3, a.repeats + 2)],
        *([("real-p", real, True, a.seed + 30)] if a.pool else []),
    ]
    t0 = time.perf_counter()
    for name, prof, foreign, seed in plan:
        if a.phase != "fit" and not finished(work, name):
            sim = SimulatedCamera.from_batch(work, prof, seed=seed, n_frames=frames)
            cam = ForeignCamera(sim) if foreign else sim
            run_capture(work, model, cam, frames=frames, session_id=name, save_crops=False)
            log.info("%s: %.0f s so far", name, time.perf_counter() - t0)
    if a.phase == "capture":
        return
    fitted_path = a.out / "fitted.toml"
    res = calibrate(work, "real-2", fitted_path, base=a.preset, jpeg_quality=a.jpeg_quality)
    fitted_plan = [("fitted", a.seed + 4), *[(f"fitted-{j}", a.seed + 20 + j) for j in range(2, a.repeats + 1)]]
    profiles = [("fitted", fitted_path)]
    if a.pool:
        pooled_path = a.out / "pooled.toml"
        pooled = calibrate(work, ["real-2", "real-p"], pooled_path, base=a.preset, jpeg_quality=a.jpeg_quality)
        log.info("pooled: %s", pooled.profile.camera)
        profiles.append(("pooled", pooled_path))
    for prefix, path in profiles:
        for name, seed in fitted_plan:
            name = name.replace("fitted", prefix)
            if not finished(work, name):
                cam = SimulatedCamera.from_batch(work, load_profile(str(path)), seed=seed, n_frames=frames)
                run_capture(work, model, cam, frames=frames, session_id=name, save_crops=False)
    items = load_batch(work).items
    labels = {it.id: it.label.index for it in items}
    photo = {it.id: it.source.file for it in items}
    ref = tiles(work, "real-1")
    print(f"\n{a.preset} with a foreign ISP, target {a.model}, {frames} frames per session, {len(labels)} items")
    print(f"calibrated from real-2: printer fit {'kept' if res.isp.printer_ok else 'replaced by the ISP curves'}, ")
    print(f"curve rms {res.isp.curve_rms:.1f}/255, colour rms {res.isp.matrix_rms:.1f}/255\n")
    print("| session | same top-1 as real-1 | clean accuracy | adversarial success |")
    print("|---|---|---|---|")
    for name in ("real-1", "real-2", "uncalibrated", "fitted"):
        got = tiles(work, name)
        both = [k for k in ref if k in got]
        same = sum(ref[k] == got[k] for k in both)
        clean = [k for k in got if k[1] == "clean" and labels.get(k[0]) is not None]
        adv = [k for k in got if k[1] == "adv" and labels.get(k[0]) is not None]
        ok = sum(got[k] == labels[k[0]] for k in clean)
        fooled = sum(got[k] != labels[k[0]] for k in adv)
        agree = "(itself)" if name == "real-1" else _pct(same, len(both))
        print(f"| {name} | {agree} | {_pct(ok, len(clean))} | {_pct(fooled, len(adv))} |")
    every = {n: tiles(work, n) for n in ("real-1", "real-2", "uncalibrated", "fitted")}
    common = set.intersection(*(set(t) for t in every.values()))
    print(f"\non the {len(common)} tiles with a good observation in every session, same top-1 as real-1:")
    for name in ("real-2", "uncalibrated", "fitted"):
        print(f"- {name}: {_pct(sum(ref[k] == every[name][k] for k in common), len(common))}")
    print("\npaired on the tiles all four saw, agreement with real-1 minus real-2's (bootstrap by photo):")
    for name in ("uncalibrated", "fitted"):
        diff, lo, hi, n, n_photos = paired(ref, every[name], every["real-2"], photo)
        print(f"- {name}: {100 * diff:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] ({n} tiles, {n_photos} photos)")
    diff, lo, hi, n, n_photos = paired(ref, every["fitted"], every["uncalibrated"], photo)
    print(f"- fitted minus uncalibrated: {100 * diff:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}]")
    if res.edges is not None:
        e = res.edges
        print(f"\nedges: defocus {e.defocus[0]:.2f}-{e.defocus[1]:.2f} px, unsharp {e.amount:g} at {e.sigma:g} px")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

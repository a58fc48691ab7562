"""Physical fidelity of every preset: clean accuracy photographed against digital, and Kurakin's destruction rates.

Runs the real pipeline for each preset and target model: a copy of one crafted batch
(``photoproof craft``) is printed for the preset's camera and the model
(``print --frame-size WxH --model M``), photographed by the simulated camera
(``capture --simulate --profile P``) and read back with the report's own loading and
metric code (``analysis.load``, ``analysis.metrics``: each tile's good observations
voted into one prediction, the report's tile view). Prints one Markdown table per
preset and model; every figure has its n and a 95 % interval (Wilson over photos or items; every clean
tile's rate, several tiles per photo, clustered by photo).

Run (after crafting, e.g. ``photoproof craft --out B --limit 20 --attack fgsm,bim,ll --eps 4,8,16``)::

    python bench/fidelity.py --batch B --out /tmp/fid --models lite0,lite2 --frames-per-sheet 6 --photos-per-part 10

Re-running resumes: finished sessions are kept. CPU-heavy: careful-lab renders 12 MP stills.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.load import load_input  # noqa: E402
from analysis.metrics import correct, photo_counts, prefiltered  # noqa: E402
from analysis.stats import DEFAULT_SEED, Rate, bootstrap_weights, rate_from_counts, wilson  # noqa: E402
from analysis.summary import cells, session_items  # noqa: E402
from capture.session import run_capture  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from contracts.errors import UserError  # noqa: E402
from contracts.journal import journal_files  # noqa: E402
from contracts.layout import load_layout  # noqa: E402
from contracts.manifest import load_batch, save_batch  # noqa: E402
from contracts.profile import PRESETS, load_profile  # noqa: E402
from printouts.sheets import print_batch  # noqa: E402

log = logging.getLogger("bench.fidelity")
STILLS_FPS = 2.0  # profiles at or below this frame rate are stills: fewer photos per sheet


def _fmt(k: int, n: int) -> str:
    if n == 0:
        return "- (n = 0)"
    lo, hi = wilson(k, n) or (0.0, 1.0)
    return f"{100 * k / n:.0f} % [{100 * lo:.0f}-{100 * hi:.0f}] (n = {n})"


def _tiles(r: Rate) -> str:
    """Every clean tile: the rate, its interval clustered by photo (analysis.stats), tiles and photos."""
    if r.value is None:
        return "- (n = 0)"
    ci = f" [{100 * r.lo:.0f}-{100 * r.hi:.0f}]" if r.lo is not None and r.hi is not None else ""
    return f"{100 * r.value:.0f} %{ci} (n = {r.n} tiles of {r.n_items} photos; interval clustered by photo)"


def onnx_file(model: str, onnx_dir: Path) -> Path:
    """``ONNX_DIR/<model>.onnx``, exported once."""
    out = onnx_dir / f"{model}.onnx"
    if not out.is_file():
        from craft.export import export_onnx

        onnx_dir.mkdir(parents=True, exist_ok=True)
        export_onnx(model, out)
    return out


def _photo(item_id: str) -> str:
    return "-".join(item_id.split("-")[:2])


def _keep_photos(work: Path, part: int, per_part: int) -> None:
    """Keep the items of the ``part``-th group of ``per_part`` source photos in ``work``'s manifest.

    A layout for a low-resolution camera prints one pair per sheet, and one batch's
    sheets share ``DICT_4X4_1000``'s 1000 marker ids (8 per sheet): a batch of more than
    125 items is photographed in parts, as a user would split it.
    """
    b = load_batch(work)
    photos = sorted({_photo(it.id) for it in b.items})
    keep = set(photos[part * per_part : (part + 1) * per_part])
    save_batch(work, dataclasses.replace(b, items=[it for it in b.items if _photo(it.id) in keep]))
    for f in journal_files(work):
        f.unlink()


def run_one(
    batch: Path,
    out: Path,
    preset: str,
    model: str,
    onnx_dir: Path,
    per_sheet: int,
    seed: int,
    part: int = 0,
    per_part: int = 0,
) -> Path:
    """Print, photograph and record one preset x model (one part of the
    photos); return the session's batch directory.
    """
    profile = load_profile(preset)
    work = out / f"{preset}-{model}" / f"part{part}" if per_part else out / f"{preset}-{model}"
    db = work / "captures" / f"{preset}.sqlite"
    if db.is_file():
        return work
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(
        batch,
        work,
        ignore=shutil.ignore_patterns("captures", "report", "sheets.pdf", "layout.json", "models", "sweep.json"),
    )
    if per_part:
        _keep_photos(work, part, per_part)
    try:
        layout = print_batch(work, camera=(profile.camera.width, profile.camera.height), model=model)
    except UserError as e:
        log.warning("%s: %s; printing the default layout", preset, e)
        layout = print_batch(work)
    n_sheets = len(load_layout(work).sheets)
    frames = n_sheets * (max(2, per_sheet // 2) if profile.camera.fps <= STILLS_FPS else per_sheet)
    cam = SimulatedCamera.from_batch(work, profile=profile, seed=seed, n_frames=frames)
    t0 = time.perf_counter()
    run_capture(
        work,
        onnx_file(model, onnx_dir),
        cam,
        frames=frames,
        headless=True,
        session_id=f"{preset}.tmp",
        save_crops=False,
    )
    (work / "captures" / f"{preset}.tmp.sqlite").rename(db)
    for extra in ("-wal", "-shm"):
        (work / "captures" / f"{preset}.tmp.sqlite{extra}").unlink(missing_ok=True)
    log.info(
        "%s / %s: %d sheets (%s, %g mm tiles), %d frames in %.0f s",
        preset,
        model,
        n_sheets,
        layout.paper,
        layout.tile_mm,
        frames,
        time.perf_counter() - t0,
    )
    return work


def table(works: list[Path], preset: str, model: str) -> str:
    """The Markdown table of one preset x model, over the parts ``works`` (one session each)."""
    import sqlite3

    items, px, ang, n_obs, n_good = [], [], [], 0, 0
    for work in works:
        inp = load_input(work)
        s = inp.sessions[0]
        items += session_items(inp, s, "tile")
        con = sqlite3.connect(f"file:{s.path}?mode=ro", uri=True)
        try:
            n, g = con.execute("SELECT COUNT(*), SUM(good) FROM observations").fetchone()
            n_obs, n_good = n_obs + n, n_good + (g or 0)
            px += [r[0] for r in con.execute("SELECT tile_px FROM observations")]
            ang += [r[0] for r in con.execute("SELECT angle_deg FROM observations")]
        finally:
            con.close()
    px, ang = sorted(px), sorted(ang)
    layout = load_layout(works[0])
    cam = layout.extra.get("camera", {})

    def med(v: list[float]) -> float:
        return v[len(v) // 2] if v else float("nan")

    # Clean accuracy: per source photo, the majority over its clean tiles (the same photo is printed once per
    # attack and eps).
    source = {it.id: it.source.file for work in works for it in load_batch(work).items}
    by_photo: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for it in items:
        if it.photo_clean:
            by_photo[source[it.item_id]].append(
                (correct(it.clean, it.label, 1), correct(it.photo_clean[0], it.label, 1))
            )
    digital_photo = {source[it.item_id]: correct(it.clean, it.label, 1) for it in items}
    dig = sum(digital_photo.values())
    pho = sum(sum(p for _, p in v) * 2 > len(v) for v in by_photo.values())
    # Every clean tile, with the interval clustered by photo (a photo's tiles are not independent).
    counts = [(sum(p for _, p in v), len(v)) for v in by_photo.values()]
    tiles = rate_from_counts(counts, bootstrap_weights(len(counts), DEFAULT_SEED, f"{preset}|{model}|clean"))
    lines = [
        f"### {preset} / {model}",
        "",
        f"Layout: {layout.paper}, {layout.tile_mm:g} mm tiles"
        + (
            f" (print --frame-size {cam.get('width')}x{cam.get('height')} --model {model}: ~{cam.get('tile_px')} px "
            "at 85 % fill)"
            if cam
            else ""
        )
        + (f" in {len(works)} parts" if len(works) > 1 else "")
        + f"; {n_obs} observations, {n_good} good; median tile {med(px):.0f} px, median view {med(ang):.0f}°.",
        "",
        f"- clean top-1, digital: {_fmt(dig, len(digital_photo))} photos",
        f"- clean top-1, photographed (majority of each photo's clean tiles): {_fmt(pho, len(by_photo))} photos",
        f"- clean top-1, photographed, per clean tile: {_tiles(tiles)}",
        "",
        "| attack | ε | adv top-1 digital | adv top-1 photographed | destruction (average) | destruction (prefiltered) "
        "|",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for (attack, eps), group in cells(items).items():
        counts = photo_counts(group, 1)
        d_avg = [c for c in counts["destruction"] if c[1]]
        d_pre = [c for c in counts["destruction_prefiltered"] if c[1]]
        adv_dig = sum(correct(it.adv, it.label, 1) for it in group)
        adv_pho = [c for c in counts["adv_acc"] if c[1]]
        lines.append(
            f"| {attack} | {eps:g} | {_fmt(adv_dig, len(group))} | "
            f"{_fmt(sum(k for k, _ in adv_pho), sum(n for _, n in adv_pho))} | "
            f"{_fmt(sum(k for k, _ in d_avg), sum(n for _, n in d_avg))} | "
            f"{_fmt(sum(k for k, _ in d_pre), sum(n for _, n in d_pre))} |"
        )
    n_pre = sum(prefiltered(it) for it in items)
    lines += [
        "",
        f"({n_pre} of {len(items)} items pass the prefilter digitally; destruction counts only items whose adversarial "
        "tile had a good observation.)",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--batch", type=Path, required=True, help="a crafted batch (not modified; copied per preset and model)"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--models", default="lite0,lite2")
    ap.add_argument("--onnx-dir", type=Path, default=Path("/tmp/photoproof-bench-onnx"))
    ap.add_argument("--frames-per-sheet", type=int, default=6, help="video presets; stills presets take half")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--photos-per-part",
        type=int,
        default=0,
        help="photograph the batch in parts of this many source photos (a batch's sheets share 1000 marker ids); 0: "
        "whole",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.getLogger("capture").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    n_photos = len({_photo(it.id) for it in load_batch(args.batch).items})
    print(
        f"# Physical fidelity: {args.batch} (seed {args.seed}, {args.frames_per_sheet} frames per sheet; stills "
        "presets half)\n"
    )
    for preset in args.presets.split(","):
        for model in args.models.split(","):
            parts = math.ceil(n_photos / args.photos_per_part) if args.photos_per_part else 1
            works = [
                run_one(
                    args.batch,
                    args.out,
                    preset,
                    model,
                    args.onnx_dir,
                    args.frames_per_sheet,
                    args.seed + k,
                    k,
                    args.photos_per_part,
                )
                for k in range(parts)
            ]
            text = table(works, preset, model)
            (args.out / f"{preset}-{model}.md").write_text(text, encoding="utf-8")
            print(text, flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

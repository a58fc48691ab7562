"""EOT (BIM through the channel twin) against plain BIM, photographed by the simulated camera of a preset.

For each preset: craft ``bim --eot`` on lite0 through that preset's twin (which samples
the tile's camera resolution, ``channel.twin``), take plain ``bim`` of the same photos
and ε from an existing batch, print both for the preset's camera (``print --frame-size``),
photograph them with the simulated camera and classify with lite0 (white box). Prints,
per attack: how many adversarial PNGs fool lite0 digitally; clean top-1 photographed;
and the paired survival: among items whose clean tile is recognised and whose
adversarial PNG fools lite0 digitally, the share whose adversarial tile still fools it
(each tile's good observations voted). Wilson 95 % intervals, n stated.

Run: ``python bench/eot.py --bim-batch B --out /tmp/eot --presets harsh,inkjet-phone --limit 8``.
``--match-layout`` also crafts EOT with ``--eot-tile-px`` set to the tiles of the preset's
``print --frame-size`` layout (the range that ``print`` names when it warns).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.load import load_input  # noqa: E402
from analysis.metrics import correct  # noqa: E402
from analysis.stats import wilson  # noqa: E402
from analysis.summary import session_items  # noqa: E402
from capture.session import run_capture  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from contracts.layout import load_layout  # noqa: E402
from contracts.manifest import load_batch, save_batch  # noqa: E402
from contracts.profile import load_profile  # noqa: E402
from printouts.camera import EOT_RANGE, plan_for_camera  # noqa: E402
from printouts.sheets import print_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("bench.eot")


def _fmt(k: int, n: int) -> str:
    if n == 0:
        return "- (n = 0)"
    lo, hi = wilson(k, n) or (0.0, 1.0)
    return f"{k}/{n} = {100 * k / n:.0f} % [{100 * lo:.0f}-{100 * hi:.0f}]"


def _bim_subset(src: Path, dst: Path, limit: int, eps: float) -> None:
    if (dst / "batch.json").is_file():
        return
    b = load_batch(src)
    items = [it for it in b.items if it.attack == "bim" and it.eps == eps][:limit]
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "images", dst / "images", dirs_exist_ok=True)
    save_batch(dst, dataclasses.replace(b, items=items))


def _capture(batch: Path, preset: str, onnx: Path, per_sheet: int, seed: int) -> None:
    db = batch / "captures" / f"{preset}.sqlite"
    if db.is_file():
        return
    prof = load_profile(preset)
    print_batch(batch, camera=(prof.camera.width, prof.camera.height), model="lite0")
    n = len(load_layout(batch).sheets) * per_sheet
    cam = SimulatedCamera.from_batch(batch, profile=prof, seed=seed, n_frames=n)
    run_capture(batch, onnx, cam, frames=n, headless=True, session_id=preset, save_crops=False)


def _row(batch: Path, attack: str) -> str:
    inp = load_input(batch)
    items = session_items(inp, inp.sessions[0], "tile")
    n = len(items)
    fooled = [it for it in items if correct(it.clean, it.label, 1) and not correct(it.adv, it.label, 1)]
    seen = [it for it in items if it.photo_clean]
    clean_ok = sum(correct(it.photo_clean[0], it.label, 1) for it in seen)
    pairs = [it for it in fooled if it.photo_clean and it.photo_adv and correct(it.photo_clean[0], it.label, 1)]
    survived = sum(not correct(it.photo_adv[0], it.label, 1) for it in pairs)
    return f"| {attack} | {_fmt(len(fooled), n)} | {_fmt(clean_ok, len(seen))} | {_fmt(survived, len(pairs))} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--bim-batch", type=Path, required=True, help="a batch with plain bim items (e.g. bench/fidelity.py's)"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--presets", default="harsh,inkjet-phone")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--eps", type=float, default=16.0)
    ap.add_argument("--eot-samples", type=int, default=4)
    ap.add_argument("--onnx", type=Path, default=Path("/tmp/photoproof-bench-onnx/lite0.onnx"))
    ap.add_argument("--frames-per-sheet", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", default=None, help="craft's --images (the photos of --bim-batch, in its order)")
    ap.add_argument(
        "--match-layout",
        action="store_true",
        help="also craft EOT for the tiles of the preset's print --frame-size layout",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    print(
        f"# EOT against plain BIM, lite0 white box, ε {args.eps:g}, {args.limit} photos, {args.eot_samples} EOT "
        "samples per step\n"
    )
    for preset in args.presets.split(","):
        prof = load_profile(preset)
        variants: list[tuple[str, Path, list[str]]] = [("bim+eot", args.out / f"eot-{preset}", [])]
        if args.match_layout:
            plan = plan_for_camera((prof.camera.width, prof.camera.height), "lite0", "a4", "pairs")
            span = f"{EOT_RANGE[0] * plan.tile_px:.0f}-{EOT_RANGE[1] * plan.tile_px:.0f}"
            variants.append(
                (f"bim+eot, --eot-tile-px {span}", args.out / f"eot-layout-{preset}", ["--eot-tile-px", span])
            )
        for _, eot, extra in variants:
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "app.py"),
                    "craft",
                    "--out",
                    str(eot),
                    "--attack",
                    "bim",
                    "--eot",
                    "--eot-samples",
                    str(args.eot_samples),
                    "--profile",
                    preset,
                    "--eps",
                    f"{args.eps:g}",
                    "--limit",
                    str(args.limit),
                    "--seed",
                    str(args.seed),
                    *(["--images", args.images] if args.images else []),
                    *extra,
                ],
                check=True,
            )
        bim = args.out / f"bim-{preset}"
        _bim_subset(args.bim_batch, bim, args.limit, args.eps)
        for b in (bim, *(v[1] for v in variants)):
            _capture(b, preset, args.onnx, args.frames_per_sheet, args.seed)
        print(f"### {preset}\n")
        print(
            "| attack | fools lite0 digitally | clean top-1 photographed (tiles) | paired survival (adv tile still "
            "fools) |"
        )
        print("|---|---:|---:|---:|")
        print(_row(bim, "bim"))
        for label, eot, _ in variants:
            print(_row(eot, label))
        print("", flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

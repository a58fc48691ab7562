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
``print --frame-size`` layout (the range that ``print`` names when it warns). ``--presets fitted.toml
--real-camera office-laser-webcam`` also photographs every batch with the camera such a profile was fitted to
(``bench/calibrate_loop.py``'s "real" camera). ``--eps 2,4`` takes several ε, ``--steps`` sets EOT's steps. Beside
each table: EOT − BIM paired by photo, for the paired survival and for the end-to-end success (the adversarial tile
fools the target wherever the clean tile is recognised, fooled digitally or not), with bootstrap intervals
clustered by photo.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.load import load_input  # noqa: E402
from analysis.metrics import correct  # noqa: E402
from analysis.stats import bootstrap_ratio, sign_test, wilson  # noqa: E402
from analysis.summary import session_items  # noqa: E402
from bench.calibrate_loop import real_profile  # noqa: E402
from bench.fidelity import onnx_file  # noqa: E402
from capture.session import run_capture  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from contracts.frames import FrameSource  # noqa: E402
from contracts.layout import load_layout  # noqa: E402
from contracts.manifest import load_batch, save_batch  # noqa: E402
from contracts.profile import load_profile  # noqa: E402
from printouts.camera import EOT_RANGE, plan_for_camera  # noqa: E402
from printouts.sheets import print_batch  # noqa: E402
from testkit.foreign_isp import ForeignCamera  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
K = TypeVar("K", bound=tuple[Any, ...])  # an item's key; its first element is the photo (the bootstrap's cluster)
log = logging.getLogger("bench.eot")


def _fmt(k: int, n: int) -> str:
    if n == 0:
        return "- (n = 0)"
    lo, hi = wilson(k, n) or (0.0, 1.0)
    return f"{k}/{n} = {100 * k / n:.0f} % [{100 * lo:.0f}-{100 * hi:.0f}]"


def _bim_subset(src: Path, dst: Path, limit: int, eps: list[float]) -> None:
    if (dst / "batch.json").is_file():
        return
    b = load_batch(src)
    items = [it for e in eps for it in [it for it in b.items if it.attack == "bim" and it.eps == e][:limit]]
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "images", dst / "images", dirs_exist_ok=True)
    save_batch(dst, dataclasses.replace(b, items=items))


def _session(preset: str) -> str:
    """A session id for a preset name or a profile file (its stem)."""
    return Path(preset).stem if preset.endswith(".toml") else preset


def _capture(batch: Path, preset: str, onnx: Path, per_sheet: int, seed: int, real: str | None) -> list[str]:
    """Photograph ``batch`` with the preset's simulated camera and, with ``real``, with that preset's camera
    behind a foreign ISP (``bench/calibrate_loop.py``'s "real" camera); returns the session ids."""
    prof = load_profile(preset)
    if not (batch / "layout.json").is_file():
        print_batch(batch, camera=(prof.camera.width, prof.camera.height), model="lite0")
    n = len(load_layout(batch).sheets) * per_sheet
    plan: list[tuple[str, FrameSource]] = [
        (_session(preset), SimulatedCamera.from_batch(batch, profile=prof, seed=seed, n_frames=n))
    ]
    if real is not None:
        sim = SimulatedCamera.from_batch(batch, profile=real_profile(load_profile(real)), seed=seed + 1, n_frames=n)
        plan.append(("real", ForeignCamera(sim)))
    for sid, cam in plan:
        if not (batch / "captures" / f"{sid}.sqlite").is_file():
            run_capture(batch, onnx, cam, frames=n, headless=True, session_id=sid, save_crops=False)
    return [sid for sid, _ in plan]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """One item (a photo at one ε) under one attack and one session."""

    fooled: bool  # the adversarial PNG fools the target digitally (its clean PNG recognised)
    seen: bool  # its clean tile was photographed (passed the gates)
    clean_ok: bool  # ... and recognised
    adv_fools: bool | None  # its adversarial tile photographed fools the target (None: not seen)

    @property
    def pair(self) -> bool:
        """Counted in the paired survival: fooled digitally, clean tile recognised, adversarial tile seen."""
        return self.fooled and self.end_to_end

    @property
    def end_to_end(self) -> bool:
        """Counted in the end-to-end success: clean tile recognised, adversarial tile seen (digital reach or not)."""
        return self.clean_ok and self.adv_fools is not None


def outcomes(batch: Path, session: str) -> dict[tuple[str, float], Outcome]:
    """Each item's outcome in one session of ``batch``, keyed by its photo (source file) and ε."""
    inp = load_input(batch, [session])
    photo = {it.id: it.source.file for it in inp.batch.items}
    out = {}
    for it in session_items(inp, inp.sessions[0], "tile"):
        clean_ok = bool(it.photo_clean) and correct(it.photo_clean[0], it.label, 1)
        out[(photo[it.item_id], it.eps)] = Outcome(
            fooled=correct(it.clean, it.label, 1) and not correct(it.adv, it.label, 1),
            seen=bool(it.photo_clean),
            clean_ok=clean_ok,
            adv_fools=(not correct(it.photo_adv[0], it.label, 1)) if it.photo_adv else None,
        )
    return out


def _row(attack: str, o: dict[tuple[str, float], Outcome]) -> str:
    v = list(o.values())
    seen = [x for x in v if x.seen]
    e2e = [x for x in v if x.end_to_end]
    pairs = [x for x in v if x.pair]
    return (
        f"| {attack} | {_fmt(sum(x.fooled for x in v), len(v))} | {_fmt(sum(x.clean_ok for x in seen), len(seen))} "
        f"| {_fmt(sum(bool(x.adv_fools) for x in e2e), len(e2e))} "
        f"| {_fmt(sum(bool(x.adv_fools) for x in pairs), len(pairs))} |"
    )


def paired_survival(
    a: Mapping[K, Outcome],
    b: Mapping[K, Outcome],
    seed: int = 0,
    resamples: int = 4000,
    end_to_end: bool = False,
) -> str:
    """Survival of ``a`` minus ``b`` on the items (photo, ε) that are a pair under both, with a 95 % bootstrap
    clustered by photo (a photo's items at every ε are resampled together; one ε: one unit per photo).
    ``end_to_end``: the items whose clean tile is recognised and adversarial tile seen under both, whether or not
    the adversarial PNG fools the target digitally (an attack that loses digital reach is not selected away)."""
    counted = (lambda o: o.end_to_end) if end_to_end else (lambda o: o.pair)
    both = sorted(k for k in a.keys() & b.keys() if counted(a[k]) and counted(b[k]))
    if not both:
        return "- (n = 0)"
    photos = sorted({k[0] for k in both})
    idx = {p: i for i, p in enumerate(photos)}
    d, n = np.zeros(len(photos)), np.zeros(len(photos))
    for k in both:
        d[idx[k[0]]] += float(bool(a[k].adv_fools)) - float(bool(b[k].adv_fools))
        n[idx[k[0]]] += 1
    ix = np.random.default_rng(seed).integers(0, len(photos), size=(resamples, len(photos)))
    weights = np.zeros(ix.shape, np.int64)  # how often each photo is drawn in each resample
    np.add.at(weights, (np.arange(resamples)[:, None], ix), 1)
    lo, hi = bootstrap_ratio(d, n, weights) or (math.nan, math.nan)
    wins = sum(bool(a[k].adv_fools) and not b[k].adv_fools for k in both)
    losses = sum(bool(b[k].adv_fools) and not a[k].adv_fools for k in both)
    up, down = int((d > 0).sum()), int((d < 0).sum())
    return (
        f"{100 * d.sum() / n.sum():+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] (n = {len(both)} items of "
        f"{len(photos)} photos; {wins} items survive only the first, {losses} only the second; photos {up} to "
        f"{down}, exact sign test over photos p = {sign_test(up, down):.3g})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--bim-batch", type=Path, required=True, help="a batch with plain bim items (e.g. bench/fidelity.py's)"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--presets", default="harsh,inkjet-phone")
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--eps", default="16", help="one ε or several, comma-separated (e.g. 2,4)")
    ap.add_argument("--eot-samples", type=int, default=4)
    ap.add_argument(
        "--steps", type=int, default=None, help="EOT's steps (default: Kurakin's rule); craft --bim-batch alike"
    )
    ap.add_argument("--onnx", type=Path, default=None, help="lite0 in ONNX (default: exported once under --out)")
    ap.add_argument("--frames-per-sheet", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", default=None, help="craft's --images (the photos of --bim-batch, in its order)")
    ap.add_argument(
        "--match-layout",
        action="store_true",
        help="also craft EOT for the tiles of the preset's print --frame-size layout",
    )
    ap.add_argument(
        "--real-camera",
        default=None,
        metavar="PRESET",
        help="also photograph with this preset's camera behind a foreign ISP (calibrate_loop's real camera), "
        "e.g. the camera a --presets fitted.toml was fitted to",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    onnx = args.onnx or onnx_file("lite0", args.out / "onnx")
    t0 = time.perf_counter()
    print(
        f"# EOT against plain BIM, lite0 white box, ε {args.eps}, {args.limit} photos, {args.eot_samples} EOT "
        "samples per step\n"
    )
    for preset in args.presets.split(","):
        prof = load_profile(preset)
        variants: list[tuple[str, Path, list[str]]] = [("bim+eot", args.out / f"eot-{_session(preset)}", [])]
        if args.match_layout:
            plan = plan_for_camera((prof.camera.width, prof.camera.height), "lite0", "a4", "pairs")
            span = f"{EOT_RANGE[0] * plan.tile_px:.0f}-{EOT_RANGE[1] * plan.tile_px:.0f}"
            variants.append(
                (f"bim+eot, --eot-tile-px {span}", args.out / f"eot-layout-{_session(preset)}", ["--eot-tile-px", span])
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
                    args.eps,
                    "--limit",
                    str(args.limit),
                    "--seed",
                    str(args.seed),
                    *(["--images", args.images] if args.images else []),
                    *(["--steps", str(args.steps)] if args.steps else []),
                    *extra,
                ],
                check=True,
            )
        bim = args.out / f"bim-{_session(preset)}"
        _bim_subset(args.bim_batch, bim, args.limit, [float(e) for e in args.eps.split(",")])
        batches = [("bim", bim), *((label, eot) for label, eot, _ in variants)]
        for label, b in batches:
            steps = sorted({it.params.get("steps") for it in load_batch(b).items}, key=str)
            print(f"{label}: steps {', '.join(map(str, steps))}")
        for _, b in batches:
            sessions = _capture(b, preset, onnx, args.frames_per_sheet, args.seed, args.real_camera)
        for sid in sessions:
            camera = f"{args.real_camera} behind a foreign ISP" if sid == "real" else f"{preset}'s simulated camera"
            print(f"### {preset}: photographed by {camera}\n")
            got = {label: outcomes(b, sid) for label, b in batches}
            eps = sorted({k[1] for o in got.values() for k in o})
            for e in [None, *eps] if len(eps) > 1 else [None]:
                sel = {label: {k: v for k, v in o.items() if e is None or k[1] == e} for label, o in got.items()}
                shown = eps[0] if e is None else e
                print(("every ε" if e is None and len(eps) > 1 else f"ε {shown:g}") + ":\n")
                print(
                    "| attack | fools lite0 digitally | clean top-1 photographed (tiles) | adv tile fools (clean tile "
                    "recognised) | paired survival (adv tile still fools) |"
                )
                print("|---|---:|---:|---:|---:|")
                for label, o in sel.items():
                    print(_row(label, o))
                print()
                for label in list(sel)[1:]:
                    print(f"- paired survival, {label} − bim: {paired_survival(sel[label], sel['bim'], args.seed)}")
                    e2e = paired_survival(sel[label], sel["bim"], args.seed, end_to_end=True)
                    print(f"- end-to-end success, {label} − bim: {e2e}")
                print("", flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

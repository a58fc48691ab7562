"""What the simulated camera's order (sample the page, then blur the frame) costs the tiles' verdicts.

For each seed, three sessions of one printed batch, read by the same ONNX model, with the preset as it ships:

- ``sim-S``: the simulated camera (it samples the page onto the frame, then blurs the frame);
- ``lens-S``: the same camera rendered at ``--scale`` x its frame size with the blur, motion and noise scaled,
  averaged down, then its ISP and JPEG at the frame size (``channel.supersample``: the lens blurs before the
  sensor samples), with the same seed, so the same poses, light and parameter draws;
- ``repeat-S``: the simulated camera again at another seed (different poses, light and noise): how much the
  camera changes the verdicts from one session to the next.

Printed: per-tile top-1 agreement with ``sim-S`` of ``lens-S`` and of ``repeat-S``, their paired difference
(bootstrap clustered by photo, ``bench.calibrate_loop.paired``), and clean accuracy and adversarial success per
session kind, pooled over the seeds (Wilson intervals over tiles). If the order mattered to the verdicts as
little as a session's chance does, ``lens`` agrees with ``sim`` at least as often as ``repeat`` does.

Run (after ``photoproof craft --out B --images tuning --attack fgsm --eps 16 --source lite0``)::

    python bench/render_order.py --batch B --out /tmp/order --seeds 1-3
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.calibrate_loop import _pct, finished, loop_args, paired, prepared, seeds, tiles  # noqa: E402
from capture.session import run_capture  # noqa: E402
from channel.simulate import SimulatedCamera  # noqa: E402
from channel.supersample import rendered_larger  # noqa: E402
from contracts.frames import FrameSource  # noqa: E402
from contracts.manifest import load_batch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    loop_args(ap)
    ap.add_argument("--seeds", default="1-3")
    ap.add_argument("--frames-per-view", type=int, default=2)
    ap.add_argument("--scale", type=int, default=2)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    work, prof, model, frames = prepared(a, a.frames_per_view)
    items = load_batch(work).items
    labels = {it.id: it.label.index for it in items}
    photo = {it.id: it.source.file for it in items}
    kinds = ("sim", "lens", "repeat")
    got: dict[str, dict[int, dict[tuple[str, str], int]]] = {k: {} for k in kinds}
    for s in seeds(a.seeds):
        for kind in kinds:
            name = f"{kind}-{s}"
            if not finished(work, name):
                cam: FrameSource
                if kind == "lens":
                    cam = rendered_larger(work, prof, a.scale, seed=100 + s, n_frames=frames)
                else:
                    seed = 100 + s if kind == "sim" else 1000 + s
                    cam = SimulatedCamera.from_batch(work, prof, seed=seed, n_frames=frames)
                run_capture(work, model, cam, frames=frames, session_id=name, save_crops=False)
            got[kind][s] = tiles(work, name)
    print(f"{a.preset}, target {a.model}, {frames} frames per session, {len(labels)} items, seeds {a.seeds}\n")
    print("| seed | lens: same top-1 as sim | repeat: same top-1 as sim | lens - repeat (paired, by photo) |")
    print("|---:|---|---|---|")
    for s in seeds(a.seeds):
        ref, lens, rep = got["sim"][s], got["lens"][s], got["repeat"][s]
        common = sorted(set(ref) & set(lens) & set(rep))
        d, lo, hi, n, n_photos = paired(ref, lens, rep, photo)
        same_l = sum(ref[k] == lens[k] for k in common)
        same_r = sum(ref[k] == rep[k] for k in common)
        print(
            f"| {s} | {_pct(same_l, len(common))} | {_pct(same_r, len(common))} | {100 * d:+.1f} points "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}] ({n} tiles, {n_photos} photos) |"
        )
    pool = {kind: {(f"{k[0]}|{s}", k[1]): v for s, t in got[kind].items() for k, v in t.items()} for kind in kinds}
    photo_s = {f"{i}|{s}": photo[i] for i in photo for s in seeds(a.seeds)}
    d, lo, hi, n, n_photos = paired(pool["sim"], pool["lens"], pool["repeat"], photo_s)
    print(
        f"\npooled over the seeds, lens - repeat: {100 * d:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
        f"({n} tiles, {n_photos} photos; bootstrap clustered by photo across the seeds)"
    )
    truth = {k: labels[k[0].rsplit("|", 1)[0]] for k in pool["sim"] if k[1] == "clean"}
    truth = {k: v for k, v in truth.items() if v is not None}
    for x, y in (("lens", "sim"), ("repeat", "sim"), ("lens", "repeat")):
        d, lo, hi, n, n_photos = paired(truth, pool[x], pool[y], photo_s)  # right minus right, tile by tile
        print(
            f"clean accuracy, {x} - {y}, paired by tile: {100 * d:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}] "
            f"({n} clean tiles, {n_photos} photos)"
        )
    print("\n| session kind | clean accuracy (tiles, all seeds) | adversarial success |")
    print("|---|---|---|")
    for kind in kinds:
        ok = n_clean = fooled = n_adv = 0
        for t in got[kind].values():
            for k, top1 in t.items():
                if labels.get(k[0]) is None:
                    continue
                if k[1] == "clean":
                    n_clean, ok = n_clean + 1, ok + (top1 == labels[k[0]])
                elif k[1] == "adv":
                    n_adv, fooled = n_adv + 1, fooled + (top1 != labels[k[0]])
        print(f"| {kind} | {_pct(ok, n_clean)} | {_pct(fooled, n_adv)} |")


if __name__ == "__main__":
    main()

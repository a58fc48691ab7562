"""Measure the vanishing attack digitally: white-box on MTCNN, transfer to CenterFace and YuNet.

    python tools/face_hiding.py --attack pgd --eps 16 --lfw 40 --out face-hiding.json

Prints each detector's hiding rate (faces it found on the clean image and no longer
finds on the adversarial one) with n and a 95% interval clustered by photo
(:func:`analysis.stats.rate_from_counts`), and writes the per-photo counts as JSON.
The figures in docs/detectors.md come from this script.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from analysis.stats import bootstrap_weights, rate_from_counts  # noqa: E402
from capture.faces import OnnxFaceDetector  # noqa: E402
from contracts.detection import get_detector  # noqa: E402
from contracts.paths import atomic_write_json  # noqa: E402
from craft.attacks import AttackSettings, build_attack, parse_spec  # noqa: E402
from craft.detectors.measure import PhotoResult, hide_faces  # noqa: E402
from craft.detectors.mtcnn import MTCNN  # noqa: E402
from craft.detectors.onnxprep import prepare_onnx  # noqa: E402
from craft.detectors.photos import face_photos  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attack", default="pgd", help="NAME[+di][+eot] from the attack registry, or 'noise' (control)")
    ap.add_argument("--eps", type=float, default=16.0, help="L-inf budget in 0..255 pixel units")
    ap.add_argument("--steps", type=int, default=None, help="iterations (default: the attack's own)")
    ap.add_argument("--lfw", type=int, default=40, help="how many of the LFW face crops to add (0..100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", type=Path, default=None, help="write the per-photo counts here (JSON)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    attack = None if args.attack == "noise" else build_attack(parse_spec(args.attack), AttackSettings(steps=args.steps))
    label = "random sign noise" if attack is None else attack.label
    mtcnn = MTCNN()
    with tempfile.TemporaryDirectory() as tmp:
        targets = {
            n: OnnxFaceDetector(prepare_onnx(get_detector(n), Path(tmp) / f"{n}.onnx")).detect
            for n in ("centerface", "yunet")
        }
        photos = face_photos(lfw=args.lfw)
        results: list[PhotoResult] = []
        t0 = time.monotonic()
        for p in photos:
            r = hide_faces(p, attack, args.eps, mtcnn, targets, seed=args.seed)
            results.append(r)
            print(p.key, len(r.truth), {k: f"{h}/{n}" for k, (h, n) in r.counts.items()}, flush=True)
        took = time.monotonic() - t0
    photos_with_faces = sum(1 for r in results if len(r.truth))
    print(
        f"\n{label} eps {args.eps:g}: {len(photos)} photos, MTCNN finds faces in {photos_with_faces}; "
        f"{took:.0f} s ({took / max(len(photos), 1):.1f} s per photo)"
    )
    rates = {}
    for name in ("mtcnn", "centerface", "yunet"):
        counts = [r.counts[name] for r in results if name in r.counts]
        rate = rate_from_counts(counts, bootstrap_weights(len(counts), 1607, name))
        rates[name] = rate
        ci = f"[{rate.lo:.2f}, {rate.hi:.2f}]" if rate.lo is not None and rate.hi is not None else "[-]"
        value = "-" if rate.value is None else f"{rate.value:.2f}"
        print(f"  {name:<11} hides {rate.num}/{rate.n} = {value} {ci} ({rate.method}, {rate.n_items} photos)")
    if args.out is not None:
        atomic_write_json(
            args.out,
            {
                "attack": label,
                "eps": args.eps,
                "params": {} if attack is None else attack.params(args.eps),
                "seed": args.seed,
                "seconds": round(took, 1),
                "photos": [
                    {"key": r.key, "truth": r.truth.to_json(), "counts": {k: list(v) for k, v in r.counts.items()}}
                    for r in results
                ],
                "rates": {
                    k: {"num": v.num, "n": v.n, "value": v.value, "lo": v.lo, "hi": v.hi, "photos": v.n_items}
                    for k, v in rates.items()
                },
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

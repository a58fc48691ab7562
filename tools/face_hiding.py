"""Measure the vanishing attack digitally: white-box on MTCNN, transfer to CenterFace and YuNet.

    python -m tools.face_hiding --attack pgd --eps 16 --lfw 40 --out face-hiding.json

Prints each detector's hiding rate (faces it found on the clean image and no longer
finds on the adversarial one) with n and a 95% interval clustered by photo
(:func:`analysis.stats.rate_from_counts`), and writes the per-photo counts as JSON.
The figures in docs/detectors.md come from this script.

``--channel PRESET --samples K`` also sends each (square) clean and adversarial image
through the numpy print-and-photograph channel of that profile, one tile at a time
(:func:`channel.model.apply_tile`: print, pose, light, optics, sensor, JPEG), K draws
per photo with the same draw for its clean and adversarial image; the truth boxes
follow the draw's pose (:func:`channel.model.tile_homography`). The hiding rate is
then paired per draw, and its interval is the photo bootstrap (several draws per photo).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import torch

from analysis.stats import Rate, bootstrap_weights, rate_from_counts
from capture.faces import OnnxFaceDetector
from contracts.detection import get_detector
from contracts.paths import atomic_write_json
from contracts.profile import ChannelProfile, load_profile
from craft.attacks import AttackSettings, build_attack, parse_spec
from craft.detectors.job import square
from craft.detectors.measure import Detect, PhotoResult, hide_faces, to_tensor
from craft.detectors.mtcnn import MTCNN
from craft.detectors.onnxprep import prepare_onnx
from craft.detectors.photos import FacePhoto, face_photos


def through_channel(
    results: list[PhotoResult],
    photos: list[FacePhoto],
    detectors: dict[str, Detect],
    profile: ChannelProfile,
    samples: int,
    seed: int,
) -> dict[str, list[tuple[int, int]]]:
    """Per detector, per photo: (hidden, found clean) summed over ``samples`` channel draws (module docstring)."""
    import cv2
    import numpy as np

    from channel.model import sample_params, tile_homography
    from channel.tile import apply_tile
    from contracts.detection import found

    counts: dict[str, list[tuple[int, int]]] = {n: [] for n in detectors}
    for r, p in zip(results, photos, strict=True):
        if r.adv is None or not len(r.truth):
            continue
        rng = np.random.default_rng([seed, len(counts["mtcnn"])])
        tot = {n: [0, 0] for n in detectors}
        for _ in range(samples):
            params = sample_params(profile, rng)
            h = tile_homography(params, p.rgb.shape[0], profile)
            corners = np.stack(
                [
                    r.truth.boxes[:, [0, 1]],
                    r.truth.boxes[:, [2, 1]],
                    r.truth.boxes[:, [2, 3]],
                    r.truth.boxes[:, [0, 3]],
                ],
                axis=1,
            ).astype(np.float32)
            moved = cv2.perspectiveTransform(corners.reshape(-1, 1, 2), h).reshape(-1, 4, 2)
            truth = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1)
            shot = {
                k: np.clip(np.round(apply_tile(im, params, profile)), 0, 255).astype(np.uint8)
                for k, im in (("clean", p.rgb), ("adv", r.adv))
            }
            for name, detect in detectors.items():
                before = found(truth, detect(shot["clean"]).boxes)
                after = found(truth, detect(shot["adv"]).boxes)
                tot[name][0] += int((before & ~after).sum())
                tot[name][1] += int(before.sum())
        for name in detectors:
            counts[name].append((tot[name][0], tot[name][1]))
    return counts


def show(title: str, rates: dict[str, Rate]) -> None:
    print(title)
    for name, rate in rates.items():
        ci = f"[{rate.lo:.2f}, {rate.hi:.2f}]" if rate.lo is not None and rate.hi is not None else "[-]"
        value = "-" if rate.value is None else f"{rate.value:.2f}"
        print(f"  {name:<11} hides {rate.num}/{rate.n} = {value} {ci} ({rate.method}, {rate.n_items} photos)")


def _rates_json(rates: dict[str, Rate]) -> dict[str, dict[str, object]]:
    return {
        k: {"num": v.num, "n": v.n, "value": v.value, "lo": v.lo, "hi": v.hi, "photos": v.n_items}
        for k, v in rates.items()
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attack", default="pgd", help="NAME[+di][+eot] from the attack registry, or 'noise' (control)")
    ap.add_argument("--eps", type=float, default=16.0, help="L-inf budget in 0..255 pixel units")
    ap.add_argument("--steps", type=int, default=None, help="iterations (default: the attack's own)")
    ap.add_argument("--lfw", type=int, default=40, help="how many of the LFW face crops to add (0..100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--out", type=Path, default=None, help="write the per-photo counts here (JSON)")
    ap.add_argument("--channel", default=None, help="also through this profile's simulated channel (a preset name)")
    ap.add_argument("--samples", type=int, default=4, help="channel draws per photo")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    attack = None if args.attack == "noise" else build_attack(parse_spec(args.attack), AttackSettings(steps=args.steps))
    label = "random sign noise" if attack is None else attack.label
    mtcnn = MTCNN()
    with tempfile.TemporaryDirectory() as tmp:
        targets: dict[str, Detect] = {
            n: OnnxFaceDetector(prepare_onnx(get_detector(n), Path(tmp) / f"{n}.onnx")).detect
            for n in ("centerface", "yunet")
        }
        photos = face_photos(lfw=args.lfw)
        if args.channel is not None:  # the channel's tiles are square: so is every image, digital figures included
            photos = [FacePhoto(p.key, p.file, p.sha256, square(p.rgb)) for p in photos]
        results: list[PhotoResult] = []
        t0 = time.monotonic()
        for p in photos:
            r = hide_faces(p, attack, args.eps, mtcnn, targets, seed=args.seed)
            results.append(r)
            print(p.key, len(r.truth), {k: f"{h}/{n}" for k, (h, n) in r.counts.items()}, flush=True)
        took = time.monotonic() - t0
        channel_rates: dict[str, Rate] = {}
        if args.channel is not None:
            t1 = time.monotonic()
            detectors: dict[str, Detect] = {"mtcnn": lambda im: mtcnn.detect(to_tensor(im))[0], **targets}
            per = through_channel(results, photos, detectors, load_profile(args.channel), args.samples, args.seed)
            for name, counts in per.items():
                channel_rates[name] = rate_from_counts(counts, bootstrap_weights(len(counts), 1607, "ch-" + name))
            print(f"channel {args.channel}: {args.samples} draws per photo, {time.monotonic() - t1:.0f} s")
    photos_with_faces = sum(1 for r in results if len(r.truth))
    print(
        f"\n{label} eps {args.eps:g}: {len(photos)} photos, MTCNN finds faces in {photos_with_faces}; "
        f"{took:.0f} s ({took / max(len(photos), 1):.1f} s per photo)"
    )
    rates = {}
    for name in ("mtcnn", "centerface", "yunet"):
        counts = [r.counts[name] for r in results if name in r.counts]
        rates[name] = rate_from_counts(counts, bootstrap_weights(len(counts), 1607, name))
    show("digital", rates)
    if channel_rates:
        show(f"through the simulated channel ({args.channel}, {args.samples} draws per photo)", channel_rates)
        shots = sum(len(r.truth) for r in results if r.adv is not None) * args.samples
        found_clean = ", ".join(f"{k} {v.n}/{shots}" for k, v in channel_rates.items())
        print(f"  channel check: clean faces still found through the channel: {found_clean}")
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
                "channel": None
                if args.channel is None
                else {"profile": args.channel, "samples": args.samples, "rates": _rates_json(channel_rates)},
                "rates": _rates_json(rates),
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

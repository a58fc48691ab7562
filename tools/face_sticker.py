"""Measure the printable face sticker: train it on some faces, test it on others, digitally and through the channel.

    python -m tools.face_sticker --train 8 --test 40 --steps 30 --side 0.5 [--eot 2] --channel office-laser-webcam
    python -m tools.face_sticker --place box ...      # placed by the face's box (default: by its landmarks)

Trains one sticker (:func:`craft.detectors.facepatch.fit_face_patch`) on the first
``--train`` LFW crops, then puts it on every photo's largest MTCNN face (by its landmarks or box,
``--place``, in training and test alike): the training
crops, the next ``--test`` LFW crops and the packaged photos (held out: the sticker is
never tuned on them). Per detector (MTCNN, CenterFace, YuNet) it prints the hiding rate
(truth faces found on the clean image and not on the stickered one) with n and a 95%
interval (photo bootstrap, widened to Wilson), for the sticker and for the **control**:
a uniform-noise sticker of the same size at the same place, which says how much the
occlusion alone hides. ``--channel`` also sends each image through the numpy channel
of that profile (:func:`tools.face_hiding.through_channel`, ``--samples`` draws per photo).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from analysis.stats import Rate, bootstrap_weights, rate_from_counts
from capture.faces import OnnxFaceDetector
from contracts.detection import found, get_detector
from contracts.profile import load_profile
from craft.attacks.eot import EOT
from craft.attacks.patch import paste_uint8
from craft.detectors.facepatch import PLACES, FacePatchSettings, face_placement, fit_face_patch, largest_index, to_uint8
from craft.detectors.job import square
from craft.detectors.measure import Detect, PhotoResult, to_tensor
from craft.detectors.mtcnn import MTCNN
from craft.detectors.onnxprep import prepare_onnx
from craft.detectors.photos import FacePhoto, face_photos, lfw_faces
from tools.face_hiding import show, through_channel


def stickered(photos: list[FacePhoto], sticker: np.ndarray, s: FacePatchSettings, mtcnn: MTCNN,
              detectors: dict[str, Detect]) -> list[PhotoResult]:  # fmt: skip
    """Per photo: its truth, the stickered image and per detector (hidden, found clean)."""
    out = []
    for p in photos:
        truth = mtcnn.detect(to_tensor(p.rgb))[0]
        r = PhotoResult(p.key, truth)
        k = largest_index(truth.boxes)
        if k is not None:
            marks = None if truth.landmarks is None else truth.landmarks[k]
            r.adv = paste_uint8(p.rgb, sticker, s.shape, face_placement(truth.boxes[k], s, None, marks))
            for name, detect in detectors.items():
                before = found(truth.boxes, detect(p.rgb).boxes)
                after = found(truth.boxes, detect(r.adv).boxes)
                r.counts[name] = (int((before & ~after).sum()), int(before.sum()))
        out.append(r)
    return out


def rolled(photos: list[FacePhoto], deg: float) -> list[FacePhoto]:
    """Each photo turned about its centre, alternately +deg and -deg on screen (edges replicated): a head's roll."""
    import cv2

    out = []
    for k, p in enumerate(photos):
        h, w = p.rgb.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), deg if k % 2 == 0 else -deg, 1.0)
        img = cv2.warpAffine(p.rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(FacePhoto(f"{p.key}-roll", p.file, p.sha256, img))
    return out


def rates(results: list[PhotoResult], tag: str) -> dict[str, Rate]:
    out = {}
    for name in ("mtcnn", "centerface", "yunet"):
        counts = [r.counts[name] for r in results if name in r.counts]
        out[name] = rate_from_counts(counts, bootstrap_weights(len(counts), 1607, tag + name))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=8, help="LFW crops the sticker is trained on")
    ap.add_argument("--test", type=int, default=40, help="held-out LFW crops (after the training ones)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--side", type=float, default=0.5, help="the sticker's side / the face box's width")
    ap.add_argument("--place", choices=PLACES, default="landmarks", help="placed by the face's landmarks or box")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--eot", type=int, default=0, help="channel-twin samples per photo and step (0: no EOT)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--roll", type=float, default=0.0, help="also test on the held-out faces turned ±ROLL degrees")
    ap.add_argument("--channel", default=None, help="also through this profile's simulated channel (a preset name)")
    ap.add_argument("--samples", type=int, default=4, help="channel draws per photo")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    mtcnn = MTCNN()
    s = FacePatchSettings(side_frac=args.side, steps=args.steps, lr=args.lr, place=args.place)
    train = [FacePhoto(p.key, p.file, p.sha256, square(p.rgb)) for p in lfw_faces(0, args.train)]
    faces = []
    for p in train:
        d = mtcnn.detect(to_tensor(p.rgb))[0]
        k = largest_index(d.boxes)
        if k is not None:
            faces.append((p.rgb, d.boxes[k], None if d.landmarks is None else d.landmarks[k]))
    eot = EOT(load_profile(args.channel or "office-laser-webcam"), args.eot) if args.eot else None
    t0 = time.monotonic()
    patch, losses = fit_face_patch(mtcnn, [f[0] for f in faces], [f[1] for f in faces], s, seed=args.seed, eot=eot,
                                   landmarks=[f[2] for f in faces])  # fmt: skip
    took = time.monotonic() - t0
    print(f"sticker by {args.place}: {len(faces)} training faces, {args.steps} steps, eot {args.eot}: {took:.0f} s; "
          f"loss {losses[0]:.1f} -> {losses[-1]:.1f}")  # fmt: skip
    sticker = to_uint8(patch, s.shape)
    noise = np.random.default_rng(args.seed + 1).integers(0, 256, sticker.shape, dtype=np.uint8)
    held = [FacePhoto(p.key, p.file, p.sha256, square(p.rgb)) for p in face_photos()]
    held += [FacePhoto(p.key, p.file, p.sha256, square(p.rgb)) for p in lfw_faces(args.train, args.train + args.test)]
    sets = [("held-out faces", held)]
    if args.roll:
        sets.append((f"held-out faces turned ±{args.roll:g}°", rolled(held, args.roll)))
    with tempfile.TemporaryDirectory() as tmp:
        detectors: dict[str, Detect] = {"mtcnn": lambda im: mtcnn.detect(to_tensor(im))[0]}
        for n in ("centerface", "yunet"):
            detectors[n] = OnnxFaceDetector(prepare_onnx(get_detector(n), Path(tmp) / f"{n}.onnx")).detect
        for what, patch_img in (("sticker", sticker), ("control: noise sticker", noise)):
            for title, photos in [("training faces", train), *sets]:
                res = stickered(photos, patch_img, s, mtcnn, detectors)
                show(f"{what}, {title}, digital", rates(res, what + title))
                if args.channel is not None:
                    t1 = time.monotonic()
                    per = through_channel(res, photos, detectors, load_profile(args.channel), args.samples, args.seed)
                    ch = {n: rate_from_counts(c, bootstrap_weights(len(c), 1607, "ch" + what + title + n))
                          for n, c in per.items()}  # fmt: skip
                    show(f"{what}, {title}, through {args.channel} ({args.samples} draws per photo; "
                         f"{time.monotonic() - t1:.0f} s)", ch)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

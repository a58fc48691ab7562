"""Which stage of a preset's channel costs clean accuracy: a leave-one-out ablation on one tile per photo.

For each labelled foolbox sample photo, the clean 224-pixel image is printed as square pixels
onto a tile ``--fraction`` x the model's input size in camera pixels, then run through the
numpy channel (``channel.tile.apply_tile``: print, pose, light, optics, sensor, ISP, JPEG) with
``--draws`` parameter draws of the profile, and the pose is undone as capture's
rectification does. Rows: every stage, and every stage but one. Top-1 accuracy of the
ONNX model over photos x draws, with a 95 % interval clustered by photo (the draws of one
photo are not independent: :func:`gates.rate`, the Wilson interval on the effective n).
Then the same model on the digital images under a plain blur and a JPEG round trip, which
tells a model's own sensitivity from the channel's.

Run: ``python bench/stages.py --profile office-laser-webcam --model lite2 --fraction 1.3 --draws 6``.
With ``--curve 1,1.25,1.5,2`` it prints instead the top-1 through every stage at each tile size
(the whole channel's resolution curve, which the layout's aim in ``printouts.camera`` follows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gates import _model, _photos, photo_hits, rate  # noqa: E402  (bench/gates.py: photos, ONNX export, intervals)

from capture.classify import OnnxClassifier  # noqa: E402
from channel import camera  # noqa: E402
from channel import model as ch  # noqa: E402
from channel.tile import apply_tile  # noqa: E402
from contracts.profile import ChannelProfile, load_profile  # noqa: E402


def photograph(
    img: np.ndarray, n: int, params: ch.ChannelParams, profile: ChannelProfile, stages: tuple[str, ...]
) -> np.ndarray:
    """``img`` printed as square pixels onto ``n`` camera pixels, through ``stages``, rectified back.

    The tile sits on white paper (a margin of ``n // 4`` on each side), so that the pose's
    zoom and rotation never push the tile's edges or corners out of the canvas: the warp
    back then finds every tile pixel, as capture does on a whole sheet.
    """
    tile = cv2.resize(
        cv2.resize(img, (4 * n, 4 * n), interpolation=cv2.INTER_NEAREST), (n, n), interpolation=cv2.INTER_AREA
    )
    pad = n // 4
    paper = cv2.copyMakeBorder(tile, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    m = paper.shape[0]
    out: np.ndarray = np.clip(np.round(apply_tile(paper, params, profile, stages)), 0, 255).astype(np.uint8)
    if "pose" in stages:
        out = cv2.warpPerspective(
            out,
            ch.tile_homography(params, m, profile),
            (m, m),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
    return out[pad : pad + n, pad : pad + n]


def _split(half: str) -> list[tuple[str, int, Path]]:
    """A half of the photo split: (key, ImageNet label or -1, path)."""
    from craft.images import split_photos

    return [(p.key, -1 if p.label is None else int(p.label), p.path) for p in split_photos(half)]


def _rgb(path: Path) -> Image.Image:
    """A photo as RGB, as craft reads it (a packaged ``.npz`` photo: its one 8-bit array)."""
    from craft.images import SourcePhoto, load_rgb

    return load_rgb(SourcePhoto(path.stem, str(path), path, "package", None, None))


def cell(top1: np.ndarray, truth: np.ndarray, reps: int) -> str:
    """One table cell: top-1 (photo-major, ``reps`` draws per photo) right, clustered by photo, with its n."""
    return f"{rate(photo_hits(top1, truth, reps))} (n = {len(top1)}, {len(truth)} photos)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="office-laser-webcam")
    ap.add_argument("--model", default="lite2")
    ap.add_argument("--onnx-dir", type=Path, default=Path("/tmp/photoproof-bench-onnx"))
    ap.add_argument("--fraction", type=float, default=1.3, help="tile side in camera pixels / the model's input size")
    ap.add_argument("--draws", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--images",
        default="samples",
        choices=("samples", "tuning", "validation"),
        help="foolbox's labelled samples, or a half of the photo split (craft/photosplit.toml; a photo without an "
        "ImageNet label takes --label-model's digital top-1, as the crafted batches do)",
    )
    ap.add_argument("--label-model", default="lite0", help="with --images tuning/validation: labels unlabelled photos")
    ap.add_argument(
        "--curve",
        default="",
        help="comma-separated fractions: print top-1 through every stage at each tile size instead of the ablation",
    )
    args = ap.parse_args()
    profile = load_profile(args.profile)
    clf = OnnxClassifier(_model(args.model, args.onnx_dir))
    photos = _photos() if args.images == "samples" else _split(args.images)
    imgs = [np.asarray(_rgb(p).resize((224, 224), Image.Resampling.BICUBIC)) for _, _, p in photos]
    if any(label < 0 for _, label, _ in photos):
        labeller = clf if args.label_model == args.model else OnnxClassifier(_model(args.label_model, args.onnx_dir))
        own = labeller.classify(np.stack([labeller.spec.resize_center_crop(x) for x in imgs]))[0][:, 0]
        photos = [(k, int(own[i]) if label < 0 else label, p) for i, (k, label, p) in enumerate(photos)]
    y = np.array([label for _, label, _ in photos])
    rng = np.random.default_rng(args.seed)
    draws = [ch.sample_params(profile, rng) for _ in range(args.draws)]
    n_px = round(args.fraction * clf.spec.input_size)

    def acc(xs: list[np.ndarray], reps: int = 1) -> str:
        top1 = clf.classify(np.stack([clf.spec.resize_center_crop(x) for x in xs]))[0][:, 0]
        return cell(top1, y, reps)

    if args.curve:
        print(
            f"# {args.profile}, {clf.name}: top-1 through every stage against the tile's side, {args.draws} draws per "
            f"photo, seed {args.seed}\n"
        )
        print(f"| tile / input | tile px | top-1 |\n|---:|---:|---:|\n| digital | - | {acc(imgs)} |")
        for f in (float(v) for v in args.curve.split(",")):
            n = round(f * clf.spec.input_size)
            print(
                f"| {f:g} | {n} | "
                f"{acc([photograph(im, n, p, profile, ch.STAGES) for im in imgs for p in draws], args.draws)} |",
                flush=True,
            )
        return
    print(
        f"# {args.profile}, {clf.name}, tile {n_px} px ({args.fraction} x input), {args.draws} draws per photo, seed "
        f"{args.seed}, photos: {args.images}\n"
    )
    print("| stages | top-1 |\n|---|---:|")
    print(f"| digital | {acc(imgs)} |")
    rows = {"all": ch.STAGES, **{f"all but {s}": tuple(x for x in ch.STAGES if x != s) for s in ch.STAGES}}
    for name, stages in rows.items():
        print(
            f"| {name} | {acc([photograph(im, n_px, p, profile, stages) for im in imgs for p in draws], args.draws)} |",
            flush=True,
        )
    print("\nThe model's own sensitivity, on the digital images:\n\n| transform | top-1 |\n|---|---:|")
    for sigma in (0.4, 0.6, 0.8):
        print(f"| Gaussian blur σ {sigma} px | {acc([cv2.GaussianBlur(im, (0, 0), sigma) for im in imgs])} |")
    for q in (70, 80, 90):
        print(f"| JPEG quality {q} | {acc([camera.apply_jpeg(im, q, bgr=False)[0] for im in imgs])} |")
    lifted = [(56 + im.astype(np.float32) * (234 - 56) / 255).astype(np.uint8) for im in imgs]
    print(f"| blacks lifted to 56, white 234 | {acc(lifted)} |")


if __name__ == "__main__":
    main()

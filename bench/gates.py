"""Clean top-1 accuracy against tile size and viewing angle: the measurement behind the quality gates.

For each model (ONNX, run by onnxruntime as capture runs it) and each of the 20
labelled foolbox sample photos, the clean image at the model's input size is
"photographed" by :func:`channel.resolution.photograph_tile`: a tile ``N`` camera
pixels wide, seen at an angle, with a mild camera blur, rectified back to the
input size. The script prints Markdown tables of top-1 accuracy and the agreement with
each image's digital top-1, then the gate defaults those curves give
(``capture.sheets.quality``). Every interval is clustered by photo (one unit per photo:
:func:`rate`), since the two views of an angle row and the three models of the pooled
rows see the same photo.

Run: ``python bench/gates.py [--models lite0,lite1,lite2] [--onnx-dir DIR] [--blur 0.6]``.
Zoo models are exported once into ``--onnx-dir`` (that needs torch).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from capture.classify import OnnxClassifier  # noqa: E402
from capture.sheets.quality import MAX_ANGLE_DEG, MIN_TILE_FRACTION  # noqa: E402
from channel.resolution import photograph_tile  # noqa: E402
from contracts.verdict import clustered_interval  # noqa: E402

log = logging.getLogger("bench.gates")

SIZE_FRACTIONS = (0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 1.0, 1.25, 1.5)
ANGLES = (0, 15, 30, 40, 50, 60, 70)


def _photos() -> list[tuple[str, int, Path]]:
    from craft.images import sample_photos

    return [(p.key, int(p.label), p.path) for p in sample_photos() if p.origin == "foolbox" and p.label is not None]


def _model(name: str, onnx_dir: Path) -> Path:
    path = Path(name)
    if path.suffix == ".onnx":
        return path
    out = onnx_dir / f"{name}.onnx"
    if not out.is_file():
        from craft.export import export_onnx

        onnx_dir.mkdir(parents=True, exist_ok=True)
        export_onnx(name, out)
    return out


def photo_hits(top1: np.ndarray, truth: np.ndarray, reps: int = 1) -> np.ndarray:
    """``(photos, reps)`` booleans: ``top1`` (photo-major, ``reps`` units per photo) equals the photo's ``truth``."""
    return np.asarray(top1).reshape(len(truth), reps) == np.asarray(truth)[:, None]


def rate(hits: np.ndarray) -> str:
    """``hits`` (one row per photo, one column per view, draw or model) as "65 % [50-78]".

    The 95 % interval is clustered by photo: the Wilson interval on the effective n of
    :func:`contracts.verdict.clustered_interval` (the report's method), between the number
    of photos (every photo's units agree) and the number of units (they are independent).
    """
    h = np.asarray(hits, dtype=bool).reshape(len(hits), -1)
    c = clustered_interval([(int(row.sum()), row.size) for row in h])
    if c.value is None or c.lo is None or c.hi is None:
        return "-"
    return f"{100 * c.num / c.n:.0f} % [{100 * c.lo:.0f}-{100 * c.hi:.0f}]"


def measure_model(path: Path, photos: list[tuple[str, int, Path]], blur: float, angle_fracs: tuple[float, ...]) -> dict:
    """Per-photo top-1 right and agreement (booleans, one row per photo) per tile size and per angle for one model."""
    clf = OnnxClassifier(path)
    s = clf.spec.input_size
    imgs, labels = [], []
    for _, label, p in photos:
        with Image.open(p) as im:
            imgs.append(clf.spec.resize_center_crop(im))
        labels.append(label)
    y = np.array(labels)
    digital = clf.classify(np.stack(imgs))[0][:, 0]
    out: dict = {
        "name": clf.name,
        "input": s,
        "n": len(imgs),
        "digital": digital == y,
        "sizes": [],
        "angles": [],
    }
    for f in SIZE_FRACTIONS:
        n_px = round(f * s)
        top1 = clf.classify(np.stack([photograph_tile(im, n_px, 0.0, blur) for im in imgs]))[0][:, 0]
        out["sizes"].append((f, n_px, top1 == y, top1 == digital))
    for af in angle_fracs:
        n_px = round(af * s)
        for a in ANGLES:
            # Two tilt axes (horizontal and vertical), so that no image is favoured by its orientation.
            top = [
                clf.classify(np.stack([photograph_tile(im, n_px, a, blur, axis_deg=ax) for im in imgs]))[0][:, 0]
                for ax in (0.0, 90.0)
            ]
            right = np.stack([t == y for t in top], axis=1)
            agree = np.stack([t == digital for t in top], axis=1)
            out["angles"].append((af, n_px, a, right, agree))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lite0,lite1,lite2")
    ap.add_argument("--onnx-dir", type=Path, default=Path("/tmp/photoproof-bench-onnx"))
    ap.add_argument(
        "--blur", type=float, default=0.6, help="camera blur sigma in camera pixels (the office webcam's sharper half)"
    )
    ap.add_argument(
        "--angle-at",
        default=f"1.0,{MIN_TILE_FRACTION}",
        help="tile sizes (fractions of the input size) for the angle curves",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    photos = _photos()
    fracs = tuple(float(v) for v in args.angle_at.split(","))
    t0 = time.perf_counter()
    results = [measure_model(_model(m, args.onnx_dir), photos, args.blur, fracs) for m in args.models.split(",")]
    print(
        f"# Gates: clean top-1 against tile size and viewing angle (camera blur sigma {args.blur} px, n = "
        f"{len(photos)} foolbox photos)\n"
    )
    print(
        "Tile size (side in camera pixels, head-on). Top-1 accuracy, Wilson 95 % interval (n = photos); agreement = "
        "same top-1 as digital.\n"
    )
    print("| model (input) | tile / input | tile px | top-1 | agreement with digital |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['name']} ({r['input']}) | digital | - | {rate(r['digital'])} | 100 % |")
        for f, n_px, right, agree in r["sizes"]:
            print(f"| {r['name']} ({r['input']}) | {f:.2f} | {n_px} | {rate(right)} | {rate(agree)} |")
    print(
        f"\nViewing angle (two tilt axes per image: {2 * len(photos)} views), at a head-on tile size of the given "
        f"fraction of the input; 95 % intervals clustered by photo (n = {len(photos)} photos).\n"
    )
    print("| model | tile / input | tile px | angle | top-1 | agreement with digital |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        for af, n_px, a, right, agree in r["angles"]:
            print(f"| {r['name']} | {af:.2f} | {n_px} | {a}° | {rate(right)} | {rate(agree)} |")
    # The pooled curves over all models give the fraction where agreement stays within a few points of digital.
    print("\nPooled over models (agreement with digital top-1; interval clustered by photo):\n")
    print("| tile / input | agreement | n (photos) |")
    print("|---:|---:|---:|")
    for i, f in enumerate(SIZE_FRACTIONS):
        agree = np.stack([r["sizes"][i][3] for r in results], axis=1)
        print(f"| {f:.2f} | {rate(agree)} | {agree.size} ({len(agree)}) |")
    mins = ", ".join(f"{r['name']} {math.ceil(MIN_TILE_FRACTION * r['input'])} px" for r in results)
    print(f"\nCurrent defaults: min tile = {MIN_TILE_FRACTION} x input size ({mins}), max angle {MAX_ANGLE_DEG}°")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

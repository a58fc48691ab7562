"""Measure the adversarial patch (Brown et al. 2017): digital, transfer, simulated camera, EOT or not.

Two patches are optimised on lite0 over the first ``--train`` labelled sample
photos (the same seed and settings; one plain, one with EOT over the channel
twin of ``--profile``), then pasted onto the next ``--test`` photos (held back)
at several areas, ``--placements`` random placements per photo and area
(random location and rotation). For each patch and area it counts, with Wilson
95% intervals over the n pasted images:

- digital: top-1 = target on lite0 (the source) and on lite2 (transfer);
- camera: the same after the numpy print-and-photograph channel of ``--profile``
  (``channel.tile.apply_tile``, one fresh draw per pasted image), on lite2;
- the untargeted fooling rate (top-1 != true class) on lite2 through the camera;
- the same rates on the clean held-back images (no patch) as the baseline.

Writes a JSON of every count to ``--json``. Example::

    python bench/patch.py --train 8 --test 8 --steps 100 --json docs/figures/patch.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from analysis.stats import wilson  # noqa: E402
from channel.model import sample_params  # noqa: E402
from channel.tile import apply_tile  # noqa: E402
from contracts.profile import load_profile, render_toml  # noqa: E402
from craft.attacks.eot import EOT  # noqa: E402
from craft.attacks.patch import AdversarialPatch, paste_uint8, patch_side, sample_placements  # noqa: E402
from craft.fastgrad import gradient_model  # noqa: E402
from craft.images import find_photos, load_rgb  # noqa: E402
from craft.zoo import get_entry, load_model  # noqa: E402


def rate(k: int, n: int) -> dict[str, object]:
    lo_hi = wilson(k, n)
    return {
        "k": k,
        "n": n,
        "rate": round(k / n, 4) if n else None,
        "ci95": [round(v, 4) for v in lo_hi] if lo_hi else None,
    }


def fmt(r: dict[str, object]) -> str:
    ci = r["ci95"]
    return f"{r['k']}/{r['n']} = {100 * r['rate']:.0f}% [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]" if ci else "-"  # type: ignore[index,operator]


def _progress(name: str, steps: int, t0: float) -> Callable[[int], None]:
    """An ``on_step`` callback that prints every 10th step of ``steps``, timed from ``t0``."""
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if done[0] % 10 == 0:
            print(f"  {name}: step {done[0]}/{steps} ({time.monotonic() - t0:.0f} s)", flush=True)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=8)
    ap.add_argument("--test", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--area", type=float, default=0.15, help="training area share")
    ap.add_argument("--areas", default="0.05,0.1,0.15,0.25", help="areas at which the patch is pasted for evaluation")
    ap.add_argument("--placements", type=int, default=3)
    ap.add_argument("--target", type=int, default=859, help="ImageNet class (859: toaster, as in Brown et al.)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--profile", default="office-laser-webcam")
    ap.add_argument("--eot-samples", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(a.threads)
    photos = [p for p in find_photos("samples") if p.label is not None][: a.train + a.test]
    spec0 = get_entry("lite0").spec
    arrays = [spec0.resize_center_crop(load_rgb(p)) for p in photos]
    labels = [int(p.label) for p in photos]  # type: ignore[arg-type]
    train, test = arrays[: a.train], arrays[a.train :]
    y_test = labels[a.train :]
    lite0, lite2 = load_model("lite0"), load_model("lite2")
    grad = gradient_model(lite0)
    x = torch.from_numpy(np.stack(train)).permute(0, 3, 1, 2).float()
    y = torch.tensor(labels[: a.train])
    profile = load_profile(a.profile)
    out: dict[str, object] = {
        "settings": vars(a) | {"json": str(a.json)},
        "train_items": [p.key for p in photos[: a.train]],
        "test_items": [p.key for p in photos[a.train :]],
        "patches": {},
        "profile_toml": render_toml(profile),
    }  # the channel exactly as used (presets get re-grounded)

    def top1(model: torch.nn.Module, imgs: list[np.ndarray]) -> list[int]:
        with torch.inference_mode():
            t = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).float()
            if model is lite2:
                t = torch.nn.functional.interpolate(
                    t, size=get_entry("lite2").spec.input_size, mode="bicubic", align_corners=False
                ).clamp(0, 255)
            return model(t).argmax(1).tolist()

    def camera(imgs: list[np.ndarray], key: int) -> list[np.ndarray]:
        rng = np.random.default_rng([a.seed, key])
        return [
            np.clip(np.round(apply_tile(im, sample_params(profile, rng), profile)), 0, 255).astype(np.uint8)
            for im in imgs
        ]

    def evaluate(imgs: list[np.ndarray], ys: list[int], key: int) -> dict[str, object]:
        cam = camera(imgs, key)
        t0, t2, c0, c2 = top1(lite0, imgs), top1(lite2, imgs), top1(lite0, cam), top1(lite2, cam)
        n = len(imgs)
        return {
            "digital_lite0_target": rate(sum(v == a.target for v in t0), n),
            "digital_lite2_target": rate(sum(v == a.target for v in t2), n),
            "camera_lite0_target": rate(sum(v == a.target for v in c0), n),
            "camera_lite2_target": rate(sum(v == a.target for v in c2), n),
            "digital_lite0_fooled": rate(sum(v != t for v, t in zip(t0, ys, strict=True)), n),
            "camera_lite2_fooled": rate(sum(v != t for v, t in zip(c2, ys, strict=True)), n),
        }

    out["clean"] = evaluate(test, y_test, 0)
    print("clean held-back:", {k: fmt(v) for k, v in out["clean"].items()})  # type: ignore[union-attr]
    areas = [float(v) for v in a.areas.split(",")]
    for eot in (False, True):
        name = "patch+eot" if eot else "patch"
        atk = AdversarialPatch(
            area=a.area, steps=a.steps, lr=a.lr, transform=EOT(profile, a.eot_samples) if eot else None
        )
        t = time.monotonic()
        st = atk.fit(grad, x, y, target=a.target, seed=a.seed, on_step=_progress(name, a.steps, t))
        patch = atk.to_uint8(st.patch)
        rec: dict[str, object] = {
            "fit_s": round(time.monotonic() - t, 1),
            "loss_first": st.losses[0],
            "loss_last": st.losses[-1],
            "by_area": {},
        }
        for k, area in enumerate(areas):
            side = patch_side(area, test[0].shape[0], "square")
            imgs, ys = [], []
            for i, im in enumerate(test):
                g = torch.Generator().manual_seed(1000 * a.seed + 100 * k + i)
                for pl in sample_placements(a.placements, im.shape[0], side, g, (1.0, 1.0), atk.max_angle_deg):
                    imgs.append(paste_uint8(im, patch, "square", pl))
                    ys.append(y_test[i])
            res = evaluate(imgs, ys, 10 + k)
            rec["by_area"][str(area)] = res  # type: ignore[index]
            print(f"{name} area {area:g}:", {kk: fmt(v) for kk, v in res.items()}, flush=True)
        out["patches"][name] = rec  # type: ignore[index]
        print(f"{name}: fit {rec['fit_s']} s, loss {rec['loss_first']:.3f} -> {rec['loss_last']:.3f}", flush=True)
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

"""Images per second of every attack on lite0, beside torchattacks and a bare forward-backward loop.

For each attack at ε = 16 (pixel units) on a batch of sample photos (repeated to
fill the batch), on one device, in one run:

- ``ours``: the attack as ``photoproof craft`` runs it (folded channels_last
  gradient model, the reference model for the lattice check);
- ``bare``: a bare loop of as many forward-and-backward passes through the same
  gradient model, with a minimal update (goal: ours >= 0.9x bare);
- ``ta``: the same attack from torchattacks on the reference model, wrapped to
  take [0, 1] input (x*255), with ε and α divided by 255 (goal on the CPU:
  ours >= 1.5x ta for bim and pgd);
- ``ta@fast`` (``--ta-fast``): torchattacks on our folded model, to separate the
  loop's overhead from the model's.

torchattacks is not a dependency: ``pip install --no-deps torchattacks``.
Prints figures and ratios; asserts nothing. Examples::

    python bench/craft.py                                   # CPU: 1 timed batch of 16 per attack (no eot)
    python bench/craft.py --attacks bim,pgd --batches 2 --ta-fast
    python bench/craft.py --device cuda --batch 256 --attacks bim
    python bench/craft.py --threads 1      # a small CPU shared with other jobs: OpenMP spinning hurts
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from console.terminal import console  # noqa: E402
from craft.attacks import EOT, Attack, AttackSettings, ItemRng, build_attack, parse_spec  # noqa: E402
from craft.fastgrad import gradient_model  # noqa: E402
from craft.images import find_photos, load_rgb  # noqa: E402
from craft.zoo import get_entry, load_model, resolve_device  # noqa: E402

log = logging.getLogger("bench.craft")
ALL = ("fgsm", "bim", "ll", "pgd", "mifgsm", "difgsm", "eot")


class UnitRange(torch.nn.Module):
    """torchattacks wants [0, 1] input: scale it to the zoo's 0..255 pixels."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x * 255.0)


class WithChannel(torch.nn.Module):
    """A model behind a freshly sampled channel transform per call: torchattacks' EOT needs a random model."""

    def __init__(self, model: torch.nn.Module, eot: EOT | None, seed: int = 0) -> None:
        super().__init__()
        self.model, self.eot, self.gen = model, eot, torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        twin = self.eot.twin(x.shape[-1])
        return self.model(twin.apply(x, twin.sample(len(x), self.gen, self.gen.device, torch.float32)))


@dataclass
class Row:
    attack: str
    steps: int
    ours: float
    bare: float
    ta: float | None
    ta_fast: float | None
    fooled: tuple[float, float | None]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], torch.Tensor], batches: int, n: int, device: torch.device) -> tuple[float, torch.Tensor]:
    """Images per second over ``batches`` calls (after the caller's warm-up), and the last output."""
    sync(device)
    t0 = time.perf_counter()
    out = torch.empty(0)
    for _ in range(batches):
        out = fn()
    sync(device)
    return batches * n / (time.perf_counter() - t0), out


def best_of(
    fns: dict[str, Callable[[], torch.Tensor]], rounds: int, batches: int, n: int, device: torch.device
) -> dict[str, tuple[float, torch.Tensor]]:
    """Time every function once per round, interleaved (so load from elsewhere hits all alike); keep each one's best."""
    best: dict[str, tuple[float, torch.Tensor]] = {}
    for _ in range(rounds):
        for k, fn in fns.items():
            ips, out = timed(fn, batches, n, device)
            if k not in best or ips > best[k][0]:
                best[k] = (ips, out)
    return best


def load_batch(images: str, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` photos (repeated to fill), center-cropped to ``size``; labels where known."""
    photos = find_photos(images)
    spec = get_entry("lite0").spec
    arrays = [spec.resize_center_crop(load_rgb(p)) for p in photos[: min(len(photos), n)]]
    labels = [p.label for p in photos[: len(arrays)]]
    idx = [i % len(arrays) for i in range(n)]
    x = torch.from_numpy(np.stack([arrays[i] for i in idx])).permute(0, 3, 1, 2).float()
    y = None if any(labels[i] is None for i in idx) else torch.tensor([labels[i] for i in idx])
    return x, y


def torchattacks_attack(
    name: str, model: torch.nn.Module, eps: float, steps: int, alpha: float, samples: int, eot: EOT | None
) -> Any:
    import torchattacks as ta

    e, a = eps / 255, alpha / 255
    if name == "fgsm":
        return ta.FGSM(model, eps=e)
    if name in ("bim", "ll"):
        atk = ta.BIM(model, eps=e, alpha=a, steps=steps)
        if name == "ll":
            atk.set_mode_targeted_least_likely(kth_min=1, quiet=True)
        return atk
    if name == "pgd":
        return ta.PGD(model, eps=e, alpha=a, steps=steps, random_start=True)
    if name == "mifgsm":
        return ta.MIFGSM(model, eps=e, alpha=a, steps=steps, decay=1.0)
    if name == "difgsm":
        return ta.DIFGSM(model, eps=e, alpha=a, steps=steps, decay=0.0, resize_rate=0.9, diversity_prob=0.5)
    if name == "eot":
        return ta.EOTPGD(
            UnitRange(WithChannel(model.model, eot)), eps=e, alpha=a, steps=steps, eot_iter=samples, random_start=False
        )
    raise KeyError(name)


def bare_loop(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, copies: int) -> torch.Tensor:
    """``steps`` forward-and-backward passes of ``copies`` replicas of the batch, with a sign step."""
    lab = y.repeat_interleave(copies)
    adv = x
    for _ in range(steps):
        xr = adv.detach().requires_grad_(True)
        xin = xr.repeat_interleave(copies, dim=0) if copies > 1 else xr
        (g,) = torch.autograd.grad(F.cross_entropy(model(xin), lab, reduction="sum"), xr)
        adv = (adv + g.sign()).clamp_(0, 255)
    return adv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="samples", help="'samples' or a folder of photos")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument(
        "--attacks", default=None, help=f"comma-separated (default: {','.join(ALL)}; on the CPU without eot)"
    )
    ap.add_argument("--eps", type=float, default=16.0)
    ap.add_argument(
        "--batches",
        type=int,
        default=None,
        help="timed batches per attack and round (default: 1 on the CPU, 3 on CUDA)",
    )
    ap.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds; each method keeps its best (for noisy machines)"
    )
    ap.add_argument("--eot-samples", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--amp", action="store_true", help="bf16 autocast for our gradients (CUDA)")
    ap.add_argument("--ta-fast", action="store_true", help="also run torchattacks on our folded model")
    ap.add_argument("--no-torchattacks", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.attacks is None:
        names = ALL if device.type == "cuda" else tuple(a for a in ALL if a != "eot")
        if device.type != "cuda":
            console.print(
                "note: eot (20 steps x --eot-samples copies through the channel twin) takes minutes on the CPU; add "
                "--attacks eot to run it"
            )
        args.attacks = ",".join(names)
    batches = args.batches or (3 if device.type == "cuda" else 1)
    try:
        import torchattacks  # noqa: F401

        have_ta = not args.no_torchattacks
    except ImportError:
        have_ta = False
        console.print(
            "[yellow]note:[/] torchattacks is not installed; 'pip install --no-deps torchattacks' to compare with it"
        )

    ref = load_model("lite0", device)
    fast = gradient_model(ref)
    x, y = load_batch(args.images, args.batch, 224)
    x = x.to(device)
    with torch.inference_mode():
        pred = ref(x).argmax(1)
    y = pred if y is None else y.to(device)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    x01 = (x / 255).contiguous()
    seeds = list(range(args.batch))
    console.print(
        f"lite0, ε={args.eps:g}, batch {args.batch}, device {device} ({torch.get_num_threads()} threads), torch "
        f"{torch.__version__}, {batches} timed batch(es) per attack after a warm-up; load average "
        f"{os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan'):.1f} on {os.cpu_count()} CPUs (other "
        "processes lower every figure)"
    )

    # Warm-up at the timed shapes: one pass of every model (allocators, oneDNN/cuDNN primitive choice).
    bare_loop(fast, x_cl, y, 1, 1)
    bare_loop(ref, x, y, 1, 1)
    bare_loop(UnitRange(ref), x01, y, 1, 1)

    rows: list[Row] = []
    for name in [a.strip() for a in args.attacks.split(",") if a.strip()]:
        spec = parse_spec(name)
        attack = build_attack(spec, AttackSettings(eot_samples=args.eot_samples, amp=args.amp))
        p = attack.settings(args.eps)
        steps, alpha = int(p["steps"]), float(p["alpha"])
        copies = args.eot_samples if spec.eot else 1

        # Each closure binds this iteration's values as defaults; best_of calls them before the next one.
        def ours(attack: Attack = attack) -> torch.Tensor:
            return attack(fast, x_cl, y, args.eps, generator=ItemRng.from_seeds(seeds), check_model=ref)

        fns: dict[str, Callable[[], torch.Tensor]] = {
            "ours": ours,
            "bare": lambda steps=steps, copies=copies: bare_loop(fast, x_cl, y, steps, copies),
        }
        if have_ta:
            ts = getattr(attack.transform, "transforms", [attack.transform])
            eot_t = next((t for t in ts if t is not None and t.name == "eot"), None)
            ta_name = "eot" if spec.eot else spec.name
            atk = torchattacks_attack(ta_name, UnitRange(ref), args.eps, steps, alpha, copies, eot_t)
            fns["ta"] = lambda atk=atk: atk(x01, y) * 255
            if args.ta_fast:
                atk_f = torchattacks_attack(ta_name, UnitRange(fast), args.eps, steps, alpha, copies, eot_t)
                fns["ta_fast"] = lambda atk_f=atk_f: atk_f(x01, y) * 255
        res = best_of(fns, args.rounds, batches, args.batch, device)
        with torch.inference_mode():
            fooled = {
                k: (ref(v[1]).argmax(1) != y).float().mean().item() for k, v in res.items() if k in ("ours", "ta")
            }
        ours_ips, bare_ips = res["ours"][0], res["bare"][0]
        ta_ips = res["ta"][0] if "ta" in res else None
        ta_fast_ips = res["ta_fast"][0] if "ta_fast" in res else None
        fooled_ours, fooled_ta = fooled["ours"], fooled.get("ta")
        rows.append(Row(spec.label, steps, ours_ips, bare_ips, ta_ips, ta_fast_ips, (fooled_ours, fooled_ta)))
        r = rows[-1]
        log.info("%s: %.2f img/s", r.attack, r.ours)

    t = Table(
        "attack",
        "steps",
        "ours img/s",
        "bare img/s",
        "ours/bare",
        "torchattacks img/s",
        "ours/ta",
        "ta@fast img/s",
        "ours/ta@fast",
        "fooled ours / ta",
    )
    for r in rows:
        t.add_row(
            r.attack,
            str(r.steps),
            f"{r.ours:.2f}",
            f"{r.bare:.2f}",
            f"{r.ours / r.bare:.2f}x",
            "-" if r.ta is None else f"{r.ta:.2f}",
            "-" if r.ta is None else f"{r.ours / r.ta:.2f}x",
            "-" if r.ta_fast is None else f"{r.ta_fast:.2f}",
            "-" if r.ta_fast is None else f"{r.ours / r.ta_fast:.2f}x",
            f"{r.fooled[0]:.0%} / " + ("-" if r.fooled[1] is None else f"{r.fooled[1]:.0%}"),
        )
    Console(width=200).print(t)
    console.print("goals: ours >= 0.9x bare; ours >= 1.5x torchattacks on the CPU for bim and pgd")


if __name__ == "__main__":
    main()

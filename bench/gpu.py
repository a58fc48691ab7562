"""The prepared GPU check: tests marked ``gpu``, crafting throughput, capture-classifier throughput.

One command, under 6 minutes on one H200::

    python bench/gpu.py --json gpu.json

1. runs ``pytest -m gpu`` (CUDA against the CPU, within the tolerances stated
   in ``tests/test_gpu.py``);
2. lite0 BIM at ε 16 (Kurakin et al. 2016: 20 steps of α 1) in images/s, at
   batch 64 and 256: fp32 NCHW, fp32 channels_last (the job's layout), bf16
   autocast (``--amp``) and ``torch.compile`` of the gradient model. The whole
   attack counts: the craft code path (``craft.attacks`` on the job's folded
   gradient model, the reference model checking), lattice step included. Each
   against a bare loop of the same forward-and-backward passes; EOT with 8
   channel samples; and the whole job (``craft.job.craft_batch``: clean
   images, attack, PNGs, top-5 on the saved PNGs, journal) on a folder of photos;
3. lite2 tiles/s through the capture classifier (``capture.classify.OnnxClassifier``:
   preprocessing, onnxruntime, top-5) with CUDA and, when present, TensorRT,
   against a bare ``InferenceSession.run`` on the same crops, already normalised.

Each figure is the median of ``--reps`` timed runs after a warm-up, with the
slowest and fastest run beside it. Goals (docs/performance.md): lite0 BIM-ε16
>= 500 images/s on one H200; craft >= 0.9x the bare loop; the capture
classifier >= 0.9x bare onnxruntime on CUDA.

Without CUDA (or with ``--smoke``) it runs the same code end to end on the CPU
in a reduced mode (batch 2, 2 steps, 2 EOT samples, one timed run, a tiny ONNX
classifier, ``torch.compile`` with the eager backend), so that it is tested on
machines without a GPU; those figures are not the goals' figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gpu_capture import capture_figures  # noqa: E402
from bench.gpu_figures import Figure, _sync, measure, print_table  # noqa: E402
from craft.attacks import Attack, AttackSettings, ItemRng, build_attack, parse_spec  # noqa: E402
from craft.fastgrad import gradient_model  # noqa: E402
from craft.zoo import load_model  # noqa: E402

GOALS = {
    "lite0 BIM-eps16 images/s on one H200": 500.0,
    "craft / bare loop": 0.9,
    "capture classifier / bare onnxruntime (CUDA)": 0.9,
}


def bare_loop(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, copies: int = 1, amp: bool = False
) -> torch.Tensor:
    """``steps`` forward-and-backward passes (``copies`` replicas per image) with a sign step: the floor."""
    lab = y.repeat_interleave(copies) if copies > 1 else y
    adv = x
    for _ in range(steps):
        xr = adv.detach().requires_grad_(True)
        xin = xr.repeat_interleave(copies, dim=0) if copies > 1 else xr
        with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=amp and x.device.type == "cuda"):
            loss = F.cross_entropy(model(xin).float(), lab, reduction="sum")
        (g,) = torch.autograd.grad(loss, xr)
        adv = (adv + g.sign()).clamp_(0, 255)
    return adv


def run_gpu_tests(smoke: bool) -> dict[str, Any]:
    """``pytest -m gpu``; returns the counts and the summary line."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rs",
        str(ROOT / "tests" / "test_gpu.py"),
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    summary = lines[-1] if lines else r.stderr.strip()[-300:]
    counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
    for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", summary):
        counts["error" if word.startswith("error") else word] += int(n)
    return {
        "returncode": r.returncode,
        "summary": summary,
        "seconds": round(time.perf_counter() - t0, 1),
        **counts,
        "output_tail": r.stdout[-4000:] if r.returncode not in (0, 5) else "",
    }


def sample_batch(n: int, size: int) -> torch.Tensor:
    """``n`` photos from the samples, cycled to fill the batch (``N x 3 x size x size``, 0..255)."""
    from craft.images import find_photos, load_rgb
    from craft.zoo import get_entry

    spec = get_entry("lite0").spec
    photos = find_photos("samples")
    arrs = [spec.resize_center_crop(load_rgb(p)) for p in photos[: min(n, len(photos))]]
    if size != spec.input_size:
        raise ValueError("lite0 only")
    return torch.from_numpy(np.stack([arrs[i % len(arrs)] for i in range(n)])).permute(0, 3, 1, 2).float()


def _crafter(
    atk: Attack, model: Any, x: torch.Tensor, y: torch.Tensor, eps: float, seeds: list[int], ref: Any
) -> Callable[[], torch.Tensor]:
    """One craft call with these arguments, a freshly seeded generator each time (what ``measure`` times)."""
    return lambda: atk(model, x, y, eps, generator=ItemRng.from_seeds(seeds), check_model=ref)


def craft_figures(
    device: torch.device,
    batches: list[int],
    steps: int | None,
    eot_samples: int,
    eot_batch: int,
    reps: int,
    compile_backend: str | None,
    compile_by: float = float("inf"),
) -> list[Figure]:
    """lite0 BIM-ε16 through the craft code path, variant by variant, each against its bare loop.

    The ``torch.compile`` variant is left out once ``time.perf_counter()`` has passed
    ``compile_by`` (compiling takes minutes; the check must stay within its budget).
    """
    eps = 16.0
    ref_cl = load_model("lite0", device)
    figures: list[Figure] = []
    settings = AttackSettings(steps=steps, eot_samples=eot_samples)
    spec = parse_spec("bim")
    n_steps = build_attack(spec, settings).settings(eps)["steps"]
    for bs in batches:
        x0 = sample_batch(bs, 224).to(device)
        with torch.no_grad():
            y = ref_cl(x0.contiguous(memory_format=torch.channels_last)).argmax(1)
        seeds = list(range(bs))
        variants: list[tuple[str, bool, bool, str | None]] = [
            ("fp32 NCHW", False, False, None),
            ("fp32 channels_last", True, False, None),
            ("bf16 autocast, channels_last", True, True, None),
        ]
        if compile_backend:
            variants.append((f"torch.compile ({compile_backend}), bf16, channels_last", True, True, compile_backend))
        for name, cl, amp, backend in variants:
            fmt = torch.channels_last if cl else torch.contiguous_format
            ref = ref_cl.to(memory_format=fmt)
            fast = gradient_model(ref).to(memory_format=fmt)
            x = x0.contiguous(memory_format=fmt)
            note = ""
            if amp and device.type != "cuda":
                note = "autocast is CUDA-only: fp32 here"
            t_compile = None
            if backend and time.perf_counter() > compile_by:
                figures.append(
                    Figure(
                        f"bim eps16 b{bs} {name}",
                        "img/s",
                        float("nan"),
                        float("nan"),
                        float("nan"),
                        0,
                        "left out: the time budget was spent",
                    )
                )
                continue
            if backend:
                try:
                    fast = torch.compile(fast, backend=backend, dynamic=False)
                    t0 = time.perf_counter()
                    bare_loop(fast, x, y, 1, amp=amp)
                    _sync(device)
                    t_compile = time.perf_counter() - t0
                except Exception as e:  # a compiler missing on this machine is a finding, not a crash
                    figures.append(
                        Figure(
                            f"bim eps16 b{bs} {name}",
                            "img/s",
                            float("nan"),
                            float("nan"),
                            float("nan"),
                            0,
                            f"compile failed: {type(e).__name__}: {str(e)[:120]}",
                        )
                    )
                    continue
            atk = build_attack(spec, AttackSettings(steps=steps, amp=amp))

            craft = _crafter(atk, fast, x, y, eps, seeds, ref)
            f_craft = measure(f"bim eps16 b{bs} {name}", "img/s", bs, craft, reps, device, note)
            f_bare = measure(
                f"bare fwd+bwd x{n_steps} b{bs} {name}",
                "img/s",
                bs,
                lambda fast=fast, x=x, y=y, amp=amp: bare_loop(fast, x, y, n_steps, amp=amp),
                reps,
                device,
                note,
            )
            f_craft.extra = {
                "batch": bs,
                "variant": name,
                "steps": n_steps,
                "vs_bare": f_craft.median / f_bare.median,
                "compile_s": t_compile,
            }
            f_bare.extra = {"batch": bs, "variant": name, "steps": n_steps}
            figures += [f_craft, f_bare]
        ref_cl = ref_cl.to(memory_format=torch.channels_last if device.type == "cuda" else torch.contiguous_format)
    # EOT: every step averages the gradient over `eot_samples` draws of the print-and-photograph channel.
    x = sample_batch(eot_batch, 224).to(device).contiguous(memory_format=torch.channels_last)
    ref = load_model("lite0", device)
    fast = gradient_model(ref)
    with torch.no_grad():
        y = ref(x).argmax(1)
    amp = device.type == "cuda"
    atk = build_attack(parse_spec("bim+eot"), AttackSettings(steps=steps, eot_samples=eot_samples, amp=amp))
    name = f"bim+eot eps16 x{eot_samples} samples b{eot_batch}" + (", bf16" if amp else "")
    f_eot = measure(
        name,
        "img/s",
        eot_batch,
        lambda: atk(fast, x, y, eps, generator=ItemRng.from_seeds(range(eot_batch)), check_model=ref),
        reps,
        device,
    )
    f_eot_bare = measure(
        f"bare fwd+bwd x{n_steps} of {eot_samples} copies b{eot_batch}",
        "img/s",
        eot_batch,
        lambda: bare_loop(fast, x, y, n_steps, eot_samples, amp=amp),
        reps,
        device,
    )
    f_eot.extra = {"batch": eot_batch, "samples": eot_samples, "vs_bare": f_eot.median / f_eot_bare.median}
    return figures + [f_eot, f_eot_bare]


def job_figure(device: torch.device, n_photos: int, batch: int, steps: int | None, reps: int) -> Figure:
    """The whole job (``craft_batch``) on a folder of ``n_photos`` JPEGs: clean PNGs, BIM, PNGs, top-5, journal."""
    from PIL import Image

    from craft.job import CraftConfig, craft_batch

    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        x = sample_batch(n_photos, 224).permute(0, 2, 3, 1).to(torch.uint8).numpy()
        for i, a in enumerate(x):
            Image.fromarray(a).save(photos / f"p{i:05d}.jpg", quality=95)
        rates = []
        for r in range(reps + 1):  # the first run warms up
            cfg = CraftConfig(
                images=str(photos),
                attacks=["bim"],
                eps=[16.0],
                batch_size=batch,
                steps=steps,
                device=str(device),
                amp=device.type == "cuda",
            )
            t0 = time.perf_counter()
            craft_batch(Path(tmp) / f"out{r}", cfg)
            _sync(device)
            if r:
                rates.append(n_photos / (time.perf_counter() - t0))
    return Figure(
        f"craft job bim eps16 {n_photos} photos b{batch}" + (", --amp" if device.type == "cuda" else ""),
        "img/s",
        statistics.median(rates),
        min(rates),
        max(rates),
        reps,
        "model loading, PNG writing and the manifest included",
        {"batch": batch, "photos": n_photos},
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description="The prepared GPU check (tests marked gpu, craft and capture throughput).")
    ap.add_argument("--json", type=Path, default=Path("gpu-check.json"), help="where to write the figures")
    ap.add_argument("--smoke", action="store_true", help="the reduced CPU mode (automatic without CUDA)")
    ap.add_argument("--reps", type=int, default=None, help="timed runs per figure (default 3; 1 in smoke mode)")
    ap.add_argument("--no-tests", action="store_true", help="skip pytest -m gpu")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    ap.add_argument("--no-job", action="store_true", help="skip the whole-job figure")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    smoke = args.smoke or not cuda
    device = torch.device("cuda" if cuda and not smoke else "cpu")
    reps = args.reps or (1 if smoke else 3)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    t_start = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    env = {
        "mode": "smoke (reduced CPU mode: not the goals' figures)" if smoke else "full",
        "device": torch.cuda.get_device_name(0)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()})",
        "cpus": os.cpu_count(),
        "load_average": load,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }
    print(
        f"GPU check, {env['mode']}: {env['device']}, torch {env['torch']}, {env['cpus']} CPUs, load average {load:.1f}"
    )
    result: dict[str, Any] = {"environment": env, "goals": GOALS}
    result["gpu_tests"] = {"skipped": "--no-tests"} if args.no_tests else run_gpu_tests(smoke)
    if not args.no_tests:
        print(f"pytest -m gpu: {result['gpu_tests']['summary']}")
    figs: list[Figure] = []
    if smoke:
        figs += craft_figures(device, [2], 2, 2, 2, reps, None if args.no_compile else "eager")
    else:
        figs += craft_figures(
            device, [64, 256], None, 8, 64, reps, None if args.no_compile else "inductor", t_start + 150
        )
    if not args.no_job:
        figs.append(job_figure(device, 4 if smoke else 512, 2 if smoke else 256, 2 if smoke else None, reps))
    with tempfile.TemporaryDirectory() as tmp:
        cap, info = capture_figures(smoke, 8 if smoke else 1024, 4 if smoke else 64, reps, Path(tmp))
    figs += cap
    result["capture"] = info
    result["figures"] = [asdict(f) for f in figs]
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    print_table(figs)
    best = max((f for f in figs if f.what.startswith("bim eps16") and f.n), key=lambda f: f.median, default=None)
    if best is not None:
        print(
            f"best lite0 BIM-eps16: {best.median:,.1f} img/s ({best.what}); goal >= "
            f"{GOALS['lite0 BIM-eps16 images/s on one H200']:g} on one H200"
        )
    print(f"{result['seconds']:.0f} s in all; figures in {args.json}")
    args.json.write_text(json.dumps(result, indent=2, default=float))
    return result


if __name__ == "__main__":
    main()

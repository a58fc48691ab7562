"""The GPU check's capture figures (``bench/gpu.py``): lite2 tiles/s through the capture classifier against bare
onnxruntime on the same crops, per GPU execution provider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.gpu_figures import Figure, measure


def capture_figures(smoke: bool, tiles: int, batch: int, reps: int, work: Path) -> tuple[list[Figure], dict[str, Any]]:
    """lite2 tiles/s through OnnxClassifier against bare onnxruntime on the same crops, per GPU provider."""
    import onnxruntime as ort

    from capture.classify import CPU, CUDA, TENSORRT, OnnxClassifier, default_providers

    info: dict[str, Any] = {"onnxruntime": ort.__version__, "available": ort.get_available_providers()}
    if smoke:
        from testkit.scenes import tiny_classifier

        model, size = tiny_classifier(work / "tiny.onnx", size=64), 64
        info["model"], short = "a tiny onnx.helper classifier (smoke mode)", "tiny"
    else:
        from craft.export import export_onnx

        model, size = export_onnx("lite2", work / "lite2.onnx"), 260
        info["model"] = short = "lite2"
    gpu = [p for p in default_providers() if p in (TENSORRT, CUDA)]
    info["gpu_providers"] = gpu
    providers = gpu if gpu else [CPU]
    if not gpu:
        tiles = min(tiles, 128)  # the CPU figure only says that no GPU provider ran; keep it short
    crops = np.random.default_rng(0).integers(0, 256, (tiles, size, size, 3), dtype=np.uint8)
    figures: list[Figure] = []
    for p in providers:
        clf = OnnxClassifier(model, providers=[p, CPU] if p != CPU else [CPU], max_batch=batch)
        info.setdefault("started", {})[p] = clf.provider
        sess = clf._session  # the same onnxruntime session, driven bare
        name_in, name_out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
        xs = [clf.logits_input(crops[i : i + batch]) for i in range(0, tiles, batch)]

        # Bound as defaults: measure() calls both before the next provider's iteration.
        def ours(clf: OnnxClassifier = clf) -> None:
            clf.classify(crops)

        def bare(sess: Any = sess, xs: list[np.ndarray] = xs, names: tuple[str, str] = (name_in, name_out)) -> None:
            for x in xs:
                sess.run([names[1]], {names[0]: x})

        f_ours = measure(
            f"capture classifier {short} {clf.provider}", "tiles/s", tiles, ours, reps, torch.device("cpu")
        )
        f_bare = measure(
            f"bare onnxruntime {short} {clf.provider}",
            "tiles/s",
            tiles,
            bare,
            reps,
            torch.device("cpu"),
            "input already normalised",
        )
        f_ours.extra = {"provider": clf.provider, "batch": batch, "vs_bare": f_ours.median / f_bare.median}
        f_bare.extra = {"provider": clf.provider, "batch": batch}
        figures += [f_ours, f_bare]
    if not gpu:
        info["note"] = "no GPU execution provider (onnxruntime-gpu and a CUDA device are needed): CPU figures only"
    return figures, info

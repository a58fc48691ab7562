"""CUDA against the CPU: crafting in torch and classifying in onnxruntime. Skipped without CUDA.

Stated tolerances (CUDA uses other kernels, TF32 in convolutions, and a
different summation order, so results agree to rounding, not to the bit):

- lite0 logits of the same images: ``|cuda - cpu| <= 0.05 + 1e-2·|cpu|``;
- an adversarial image from the same attack and seed: at least 99 % of its
  pixels identical (a gradient component near zero can change sign), every
  pixel within ε of the clean image, on the 8-bit lattice; the number of
  images that fool the model differs by at most one;
- onnxruntime's CUDA (and TensorRT, when present) provider against its CPU
  provider on lite2: the same tolerance on the logits, and the same top-1.

Run by ``bench/gpu.py`` (``pytest -m gpu``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

N_IMAGES = 8


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-2, atol=5e-2)


@pytest.fixture(scope="module")
def photos() -> tuple[torch.Tensor, list]:  # type: ignore[type-arg]
    from craft.images import find_photos, load_rgb
    from craft.zoo import get_entry

    spec = get_entry("lite0").spec
    ph = find_photos("samples")[:N_IMAGES]
    arr = np.stack([spec.resize_center_crop(load_rgb(p)) for p in ph])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float(), ph


def test_lite0_logits_on_cuda_match_the_cpu(photos) -> None:  # type: ignore[no-untyped-def]
    from craft.zoo import load_model

    x, _ = photos
    with torch.inference_mode():
        cpu = load_model("lite0", "cpu")(x).numpy()
        cuda = load_model("lite0", "cuda")(x.cuda().contiguous(memory_format=torch.channels_last)).float().cpu().numpy()
    _close(cuda, cpu)
    assert (cuda.argmax(1) == cpu.argmax(1)).all()


@pytest.mark.parametrize("attack", ["fgsm", "bim"])
def test_craft_on_cuda_matches_the_cpu(attack: str, photos) -> None:  # type: ignore[no-untyped-def]
    from craft.attacks import AttackSettings, ItemRng, build_attack, parse_spec
    from craft.fastgrad import gradient_model
    from craft.zoo import load_model

    x, _ = photos
    eps = 16.0
    out = {}
    for dev in ("cpu", "cuda"):
        ref = load_model("lite0", dev)
        xd = x.to(dev).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            y = ref(xd).argmax(1)
        atk = build_attack(parse_spec(attack), AttackSettings(steps=5 if attack == "bim" else None))
        adv = atk(gradient_model(ref), xd, y, eps, generator=ItemRng.from_seeds(range(len(x))), check_model=ref)
        with torch.inference_mode():
            fooled = int((ref(adv).argmax(1) != y).sum())
        out[dev] = (adv.cpu(), fooled)
    (a_cpu, f_cpu), (a_cuda, f_cuda) = out["cpu"], out["cuda"]
    for a in (a_cpu, a_cuda):
        assert (a - x).abs().max() <= eps and torch.equal(a, a.round())
    same = (a_cuda == a_cpu).float().mean().item()
    assert same >= 0.99, f"only {same:.2%} of the pixels agree"
    assert abs(f_cuda - f_cpu) <= 1


def test_craft_job_runs_on_cuda_with_amp(tmp_path: Path) -> None:
    from contracts.manifest import load_batch
    from craft.job import CraftConfig, craft_batch

    batch = craft_batch(
        tmp_path / "b", CraftConfig(limit=2, attacks=["bim"], eps=[16.0], steps=3, device="cuda", amp=True)
    )
    assert batch.config["device"].startswith("cuda") and len(load_batch(tmp_path / "b").items) == 2
    assert all(it.params.get("amp") == "bf16" for it in batch.items)


@pytest.fixture(scope="module")
def lite2_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from craft.export import export_onnx

    return export_onnx("lite2", tmp_path_factory.mktemp("onnx") / "lite2.onnx")


def test_onnxruntime_gpu_providers_match_the_cpu(lite2_onnx: Path, photos) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from capture.classify import CPU, CUDA, TENSORRT, OnnxClassifier, default_providers

    if CUDA not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime ({ort.__version__}) has no CUDA provider; install onnxruntime-gpu")
    _, ph = photos
    from craft.images import load_rgb
    from craft.zoo import get_entry

    spec = get_entry("lite2").spec
    crops = np.stack([spec.resize_center_crop(load_rgb(p)) for p in ph])
    cpu = OnnxClassifier(lite2_onnx, providers=[CPU])
    ref = cpu.logits(crops)
    for provider in [p for p in default_providers() if p in (CUDA, TENSORRT)] or [CUDA]:
        clf = OnnxClassifier(lite2_onnx, providers=[provider, CPU])
        assert clf.provider == provider, f"{provider} did not start"
        got = clf.logits(crops)
        _close(got, ref)
        assert (got.argmax(1) == ref.argmax(1)).all()

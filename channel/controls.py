"""Controls: the perturbation budget spent with no gradient, to say what an attack earns beyond it.

A figure that random noise of the same ε also gives is not the attack's (Kurakin et al.
2016, https://arxiv.org/abs/1607.02533, compare their adversarial and random-noise
destruction; Goodfellow et al. 2015 show random ±ε signs rarely change a classifier).
Used by the face attacks' measurement (:mod:`craft.detectors.measure`) and by the face
sweep's stability baseline (:mod:`sweep.faces`). Numpy only.
"""

from __future__ import annotations

import numpy as np


def sign_noise(img: np.ndarray, eps: float, rng: np.random.Generator) -> np.ndarray:
    """Every pixel and channel of ``img`` (uint8) moved by ``±eps`` at random, clipped to 0..255 (uint8)."""
    signs = rng.integers(0, 2, img.shape, dtype=np.int8).astype(np.float32) * 2 - 1
    return np.clip(np.round(img.astype(np.float32) + float(eps) * signs), 0, 255).astype(np.uint8)

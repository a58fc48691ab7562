"""The ISP's first table merged with the sensor's (``apply_isp(..., sensor_lut=)``) and the reused buffers give
exactly what the two steps give one after the other, for every preset's ISP."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from channel import camera
from channel import model as ch
from channel.scratch import Scratch
from contracts.profile import PRESETS, Isp, load_profile


def _codes(seed: int) -> np.ndarray:
    """Every 8-bit code in each channel (shuffled per channel), then random codes: a 64 x 64 x 3 image."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for c in range(3):
        img.reshape(-1, 3)[:256, c] = rng.permutation(256)
    return img


@pytest.mark.parametrize("preset", [*PRESETS, "no-isp"])
@pytest.mark.parametrize("bgr", [True, False])
def test_merged_tables_equal_the_two_steps(preset: str, bgr: bool) -> None:
    profile = load_profile("office-laser-webcam" if preset == "no-isp" else preset)
    if preset == "no-isp":
        profile = replace(profile, isp=Isp())
    rng = np.random.default_rng(5)
    scratch = Scratch()
    for k in range(4):
        p = ch.sample_params(profile, rng)
        gains = ch.wb_gains(profile, p)
        curve = camera.sensor_curve(p, profile.camera, gains[::-1].copy() if bgr else gains)
        code = _codes(k)
        expect = camera.apply_isp(cv2.LUT(code, curve.lut), profile, p, bgr=bgr)
        got = camera.apply_isp(code, profile, p, bgr=bgr, sensor_lut=curve.lut, scratch=scratch)
        assert got.dtype == np.uint8 and np.array_equal(got, expect), f"{preset} params {k}"
        assert np.array_equal(camera.apply_isp(code, profile, p, bgr=bgr, sensor_lut=curve.lut), expect)


def test_sensor_code_into_a_buffer_equals_a_fresh_one() -> None:
    profile = load_profile("harsh")
    p = ch.sample_params(profile, np.random.default_rng(1))
    curve = camera.sensor_curve(p, profile.camera, ch.wb_gains(profile, p))
    rng = np.random.default_rng(2)
    y = (curve.y_lo + rng.random((32, 48, 3), dtype=np.float32) * (curve.y_hi - curve.y_lo) * 1.1).astype(np.float32)
    noise = rng.standard_normal(y.shape, dtype=np.float32)
    out = np.full(y.shape, 7, np.uint8)
    got = camera.sensor_code(y, curve, noise, out=out)
    assert got is out or np.shares_memory(got, out)
    assert np.array_equal(cv2.LUT(got, curve.lut), camera.sensor_encode(y, curve, noise))


def test_scratch_buffers_grow_and_keep_their_names_apart() -> None:
    s = Scratch()
    a = s.get("a", (4, 5, 3), np.float32)
    assert a.shape == (4, 5, 3) and a.flags.c_contiguous
    assert np.shares_memory(s.get("a", (2, 3, 3), np.float32), a)  # smaller: the same memory
    assert not np.shares_memory(s.get("b", (4, 5, 3), np.float32), a)
    big = s.get("a", (40, 50, 3), np.float32)
    assert big.shape == (40, 50, 3) and not np.shares_memory(big, a)
    assert s.get("a", (4, 5, 3), np.uint8).dtype == np.uint8

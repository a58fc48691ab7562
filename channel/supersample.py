"""A simulated camera whose lens blurs before the sensor samples (``tests/test_calibrate_physical.py``,
``bench/calibrate_edges.py --render-scale``).

The simulated camera samples the printed page onto its frame and then blurs the frame on its own pixel grid; a
lens blurs the light before the sensor samples it. Under about a pixel of defocus the two differ: an edge blurred
after sampling keeps the sampled edge's sub-pixel steps (docs/physical-fidelity.md, "The simulator blurs after
sampling"). :class:`RenderedLarger` renders at ``k`` times the frame size with the blur, motion and noise scaled
by ``k`` and no ISP, averages ``k x k`` pixels (the pixel's aperture), then applies the ISP and JPEG at the
frame's size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from channel.camera import apply_isp, apply_jpeg
from channel.model import ChannelParams
from channel.simulate import SimulatedCamera
from contracts.frames import Frame, MappedSource
from contracts.profile import ChannelProfile, Isp

Finish = Callable[[np.ndarray, ChannelParams], np.ndarray]


def larger(truth: ChannelProfile, k: int) -> ChannelProfile:
    """``truth`` at ``k`` x its frame size, before its ISP and JPEG: blur and motion scaled by ``k``, noise by ``k``
    in standard deviation (averaging ``k x k`` pixels divides it by ``k``), no ISP, JPEG at 100."""
    c = truth.camera
    cam = replace(
        c,
        width=c.width * k,
        height=c.height * k,
        defocus_sigma_px=(c.defocus_sigma_px[0] * k, c.defocus_sigma_px[1] * k),
        motion_blur_px=(c.motion_blur_px[0] * k, c.motion_blur_px[1] * k),
        shot_noise=(c.shot_noise[0] * k * k, c.shot_noise[1] * k * k),
        read_noise=(c.read_noise[0] * k, c.read_noise[1] * k),
        jpeg_quality=(100.0, 100.0),
    )
    return replace(truth, camera=cam, isp=Isp())


JPEG_STREAM = 27  # the quality's generator is seeded with (the frame's noise seed, this): a stream of its own


def frame_quality(quality: tuple[float, float], noise_seed: int) -> int:
    """A frame's JPEG quality, uniform in ``quality``, from a generator seeded with the frame's ``noise_seed``."""
    lo, hi = quality
    return int(round(lo + (hi - lo) * float(np.random.default_rng((noise_seed, JPEG_STREAM)).random())))


def own_finish(truth: ChannelProfile) -> Finish:
    """``truth``'s ISP and JPEG on a frame of its size, with the frame's sampled parameters (its JPEG quality
    from :class:`RenderedLarger`)."""

    def finish(img: np.ndarray, p: ChannelParams) -> np.ndarray:
        return apply_jpeg(apply_isp(img, truth, p, bgr=True), p.jpeg_quality)[0]

    return finish


class RenderedLarger(MappedSource):
    """``inner`` (rendered at ``k`` x the frame size, see :func:`larger`) averaged down to the frame, then
    ``finish`` with the frame's sampled parameters (read from its truth; a frame with no sheet in it, which the
    simulated camera's sessions do not have, is only averaged down). ``quality``: the JPEG quality range the
    finish encodes at (:func:`frame_quality`, written into the frame's truth); None keeps the inner camera's."""

    def __init__(
        self, inner: SimulatedCamera, k: int, finish: Finish, quality: tuple[float, float] | None = None
    ) -> None:
        super().__init__(inner, f"rendered-x{k}:{inner.description}")
        self.k, self.finish, self.quality = k, finish, quality

    def map(self, frame: Frame) -> Frame:
        h, w = frame.image.shape[:2]
        small = cv2.resize(frame.image, (w // self.k, h // self.k), interpolation=cv2.INTER_AREA)
        truth = frame.truth or {}
        sheets = truth.get("sheets") or []
        if not sheets:
            return replace(frame, image=small)
        p = ChannelParams.from_dict(sheets[0]["params"])
        if self.quality is not None:
            p = replace(p, jpeg_quality=frame_quality(self.quality, p.noise_seed))
            sheets = [{**s, "params": {**s["params"], "jpeg_quality": p.jpeg_quality}} for s in sheets]
            truth = {**truth, "sheets": sheets}
        return replace(frame, image=self.finish(small, p), truth=truth)


def rendered_larger(batch_dir: Path, truth: ChannelProfile, k: int, seed: int, n_frames: int) -> RenderedLarger:
    """The simulated camera of ``truth`` over ``batch_dir``, its lens blurring before the sampling."""
    sim = SimulatedCamera.from_batch(batch_dir, larger(truth, k), seed=seed, n_frames=n_frames)
    return RenderedLarger(sim, k, own_finish(truth), truth.camera.jpeg_quality)

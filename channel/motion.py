"""Hand-held motion: every channel parameter drifts smoothly from frame to frame.

The simulated camera (:mod:`channel.simulate`) draws each frame's pose, light and camera
parameters from this process, so that consecutive frames look like a person holding a
camera rather than independent draws.
"""

from __future__ import annotations

import math

import numpy as np

from channel import model as ch

TAU_S = {"pose": 1.5, "light": 8.0, "camera": 3.0}  # correlation times of the hand-held process
POSE_FIELDS = frozenset({"sheet_fill", "tilt_deg", "tilt_axis_deg", "rotation_deg", "centre_x", "centre_y"})
LIGHT_FIELDS = frozenset(
    {"illuminance", "colour_temperature_k", "gradient", "gradient_angle_deg", "glare", "glare_x", "glare_y"}
)


def _phi(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))
    return out


class HandHeldProcess:
    """Smooth random motion of every :class:`ChannelParams` field, as values in (0, 1).

    Per field, ``x`` is a unit-variance AR(1) (Ornstein-Uhlenbeck) process and ``y``
    low-passes it with the same time constant; ``y`` is rescaled to unit variance and
    mapped through the normal CDF, so each value is marginally uniform on (0, 1).
    """

    def __init__(self, dt: float, rng: np.random.Generator) -> None:
        taus = [
            TAU_S["pose" if n in POSE_FIELDS else "light" if n in LIGHT_FIELDS else "camera"] for n in ch.UNIT_FIELDS
        ]
        self.a = np.exp(-dt / np.array(taus))
        self.norm = np.sqrt(1.0 + self.a**2) / (1.0 + self.a)
        self.rng = rng
        self.x = rng.standard_normal(self.a.size)
        self.y = (self.x + self.a * rng.standard_normal(self.a.size)) / (1.0 + self.a)  # stationary start

    def step(self) -> dict[str, float]:
        """Advance one frame and return the unit value of every field."""
        u = _phi(self.y / self.norm)
        self.x = self.a * self.x + np.sqrt(1.0 - self.a**2) * self.rng.standard_normal(self.a.size)
        self.y = self.a * self.y + (1.0 - self.a) * self.x
        return dict(zip(ch.UNIT_FIELDS, u, strict=True))

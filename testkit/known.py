"""A channel profile with every parameter ``calibrate`` fits held fixed (``tests/test_calibrate.py`` gives the
tolerances), for the closed-loop calibration tests."""

from __future__ import annotations

from contracts.profile import ChannelProfile, parse_profile


def known_profile(
    defocus: float = 1.5, shot: float = 0.0008, read: float = 0.004, jpeg: float = 95.0
) -> ChannelProfile:
    """A channel with every calibrated parameter fixed (narrow ranges elsewhere)."""
    return parse_profile(
        {
            "printer": {
                "tone_gamma": 1.3,
                "dot_gain": 0.08,
                "paper_white": [0.85, 0.86, 0.88],
                "ink_black": [0.05, 0.05, 0.06],
                "gamut_compression": 0.25,
            },
            "scene": {
                "sheet_fill": 0.9,
                "tilt_deg": [0.0, 10.0],
                "rotation_deg": [-3.0, 3.0],
                "illuminance": 1.0,
                "colour_temperature_k": 5000.0,
                "gradient": 0.0,
                "glare": 0.0,
            },
            "camera": {
                "defocus_sigma_px": defocus,
                "motion_blur_px": 0.0,
                "shot_noise": shot,
                "read_noise": read,
                "white_balance_error": 0.0,
                "exposure": 1.0,
                "jpeg_quality": jpeg,
                "gamma": 2.2,
            },
        },
        "known",
        "test profile",
    )

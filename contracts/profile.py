"""The channel profile: one TOML schema for printer, scene and camera.

Two implementations read it: the simulated camera in ``capture/`` (numpy and
OpenCV) and the differentiable twin in ``craft/`` (torch and kornia) that EOT
samples from (Athalye et al. 2018, https://arxiv.org/abs/1707.07397).

Every ranged parameter is a ``[low, high]`` pair sampled uniformly; a scalar
means a fixed value. Presets live in ``contracts/profiles/<name>.toml``; a user
file is any path ending in ``.toml``. See ``docs/channel-profile.md``.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from contracts.batchdir import SESSION_RE
from contracts.errors import UserError
from contracts.paths import atomic_write_text

Range = tuple[float, float]


@dataclass(frozen=True)
class Printer:
    """Print stage: tone, dot gain, paper and ink, gamut, resolution."""

    dpi: float = 300.0
    tone_gamma: float = 1.0  # printed reflectance = input ** tone_gamma
    dot_gain: float = 0.0  # Murray-Davies style mid-tone darkening, 0..0.3
    paper_white: tuple[float, float, float] = (0.95, 0.95, 0.93)  # linear reflectance
    ink_black: tuple[float, float, float] = (0.04, 0.04, 0.05)
    gamut_compression: float = 0.0  # 0 = none, 1 = fully desaturated
    halftone: bool = False
    halftone_lpi: float = 150.0


@dataclass(frozen=True)
class Scene:
    """The page's pose in front of the camera and the light on it."""

    sheet_fill: Range = (0.55, 0.85)  # sheet height as a fraction of frame height
    tilt_deg: Range = (0.0, 30.0)  # out-of-plane angle
    rotation_deg: Range = (-10.0, 10.0)  # in-plane angle
    illuminance: Range = (0.8, 1.1)  # multiplies exposure
    colour_temperature_k: Range = (4000.0, 6500.0)
    gradient: Range = (0.0, 0.15)  # linear fall-off across the page
    glare: Range = (0.0, 0.0)  # peak of a soft specular blob, 0..1


@dataclass(frozen=True)
class Camera:
    """The camera: optics, sensor and encoding."""

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    defocus_sigma_px: Range = (0.3, 1.2)
    motion_blur_px: Range = (0.0, 2.0)
    shot_noise: Range = (0.002, 0.01)  # variance per unit linear signal
    read_noise: Range = (0.002, 0.006)  # std of additive noise, linear units
    white_balance_error: Range = (-0.05, 0.05)  # relative gain error on R and B
    exposure: Range = (0.9, 1.1)
    jpeg_quality: Range = (70.0, 95.0)
    gamma: float = 2.2  # sensor output encoding (sRGB-like)


TONE_KNOTS = 17  # a tone curve's outputs at inputs 0, 1/16, ..., 1 (encoded 0..1)
IDENTITY_TONE: tuple[float, ...] = tuple(i / (TONE_KNOTS - 1) for i in range(TONE_KNOTS))
IDENTITY_MATRIX: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class Isp:
    """The camera's image signal processor after the sensor: what a phone or webcam does to every frame.

    Auto white balance and auto levels adapt per frame to the sheet they meter (its paper
    white and ink black in that frame's light); then a 3x3 colour matrix on the encoded values,
    a monotone tone curve per channel, and an unsharp mask. The defaults do nothing.
    Formulas and sources: docs/channel-profile.md ("ISP").
    """

    awb_strength: float = 0.0  # share of the paper's colour cast the auto white balance removes, 0..1
    levels_strength: float = 0.0  # share of the auto-levels stretch applied, 0..1
    levels_black: float = 0.0  # where auto levels puts the sheet's ink black (encoded 0..1)
    levels_white: float = 1.0  # ... and its paper white
    tone_r: tuple[float, ...] = IDENTITY_TONE  # monotone curve: outputs at inputs 0, 1/16, ..., 1
    tone_g: tuple[float, ...] = IDENTITY_TONE
    tone_b: tuple[float, ...] = IDENTITY_TONE
    colour_matrix: tuple[float, ...] = IDENTITY_MATRIX  # row-major 3x3 on encoded RGB, before the curve
    sharpen_amount: float = 0.0  # unsharp mask: v + amount * (v - gaussian(v, sharpen_sigma_px))
    sharpen_sigma_px: float = 1.0  # in camera pixels

    def is_identity(self) -> bool:
        return self == Isp(sharpen_sigma_px=self.sharpen_sigma_px)


@dataclass(frozen=True)
class ChannelProfile:
    name: str
    description: str = ""
    printer: Printer = field(default_factory=Printer)
    scene: Scene = field(default_factory=Scene)
    camera: Camera = field(default_factory=Camera)
    isp: Isp = field(default_factory=Isp)
    calibrated_from: tuple[str, ...] = ()  # the capture sessions calibrate fitted this profile to (their ids)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- what both channel implementations sample from a profile ---------------------
# channel/model.py (numpy) and channel/twin.py (torch) read these, so the two
# implementations always draw the same parameters from the same ranges.

CHANNEL_STAGES = ("print", "pose", "light", "optics", "sensor", "isp", "jpeg")
TILE_VIEW_DEG = 10.0  # angular size of a tile in view (60 mm at 35 cm): keystone strength of tile warps
GLARE_RADIUS = 0.15  # std of the glare blob, as a fraction of the page side

# A sampled channel parameter -> the (section, key) of the profile range it is drawn from.
CHANNEL_RANGES: dict[str, tuple[str, str]] = {
    "sheet_fill": ("scene", "sheet_fill"),
    "tilt_deg": ("scene", "tilt_deg"),
    "rotation_deg": ("scene", "rotation_deg"),
    "illuminance": ("scene", "illuminance"),
    "colour_temperature_k": ("scene", "colour_temperature_k"),
    "gradient": ("scene", "gradient"),
    "glare": ("scene", "glare"),
    "defocus_sigma_px": ("camera", "defocus_sigma_px"),
    "motion_blur_px": ("camera", "motion_blur_px"),
    "shot_noise": ("camera", "shot_noise"),
    "read_noise": ("camera", "read_noise"),
    "wb_error_r": ("camera", "white_balance_error"),
    "wb_error_b": ("camera", "white_balance_error"),
    "exposure": ("camera", "exposure"),
    "jpeg_quality": ("camera", "jpeg_quality"),
}
# Parameters drawn from fixed ranges (directions and positions), whatever the profile.
CHANNEL_FIXED_RANGES: dict[str, tuple[float, float]] = {
    "tilt_axis_deg": (0.0, 360.0),
    "centre_x": (0.0, 1.0),
    "centre_y": (0.0, 1.0),
    "gradient_angle_deg": (0.0, 360.0),
    "glare_x": (0.2, 0.8),
    "glare_y": (0.2, 0.8),
    "motion_angle_deg": (0.0, 180.0),
}


def channel_range(profile: ChannelProfile, name: str) -> tuple[float, float]:
    """The (low, high) range the channel parameter ``name`` is drawn from."""
    if name in CHANNEL_RANGES:
        section, key = CHANNEL_RANGES[name]
        lo, hi = getattr(getattr(profile, section), key)
        return float(lo), float(hi)
    return CHANNEL_FIXED_RANGES[name]


PRESETS = ("careful-lab", "office-laser-webcam", "inkjet-phone", "harsh")
DEFAULT_PRESET = "office-laser-webcam"


# Physical bounds of each parameter (inclusive). Values outside are refused, so that a
# typo cannot make the simulated camera allocate a 100 GiB frame or divide by zero.
BOUNDS: dict[str, tuple[float, float]] = {
    "dpi": (50, 2400),
    "tone_gamma": (0.05, 20),
    "dot_gain": (0, 1),
    "paper_white": (0, 1),
    "ink_black": (0, 1),
    "gamut_compression": (0, 1),
    "halftone_lpi": (10, 1200),
    "sheet_fill": (0.01, 2),
    "tilt_deg": (0, 89),
    "rotation_deg": (-360, 360),
    "illuminance": (0.001, 100),
    "colour_temperature_k": (1000, 40000),
    "gradient": (0, 1),
    "glare": (0, 1),
    "width": (16, 8192),
    "height": (16, 8192),
    "fps": (0.1, 1000),
    "defocus_sigma_px": (0, 100),
    "motion_blur_px": (0, 200),
    "shot_noise": (0, 10),
    "read_noise": (0, 10),
    "white_balance_error": (-0.99, 10),
    "exposure": (0.001, 1000),
    "jpeg_quality": (1, 100),
    "gamma": (0.05, 20),
    "awb_strength": (0, 1),
    "levels_strength": (0, 1),
    "levels_black": (0, 0.5),
    "levels_white": (0.5, 1),
    "tone_r": (0, 1),
    "tone_g": (0, 1),
    "tone_b": (0, 1),
    "colour_matrix": (-3, 3),
    "sharpen_amount": (0, 5),
    "sharpen_sigma_px": (0.3, 10),
}


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise UserError(f"{where}: expected a finite number, got {v!r}")
    return float(v)


def _value(default: Any, v: Any, where: str) -> Any:
    """``v`` checked against the type of its field's ``default`` (a number given for a range means both ends)."""
    if isinstance(default, tuple):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and len(default) == 2:
            v = (v, v)
        if not isinstance(v, (list, tuple)) or len(v) != len(default):
            raise UserError(f"{where}: expected a list of {len(default)} numbers")
        v = tuple(_number(x, where) for x in v)
        if len(v) == 2 and v[0] > v[1]:
            raise UserError(f"{where}: range low {v[0]} is above high {v[1]}")
    elif isinstance(default, bool):
        if not isinstance(v, bool):
            raise UserError(f"{where}: expected true or false")
    elif isinstance(default, (int, float)):
        v = _number(v, where)
        if isinstance(default, int) and v != int(v):
            raise UserError(f"{where}: expected a whole number, got {v:g}")
        v = type(default)(v)
    elif isinstance(default, str) and not isinstance(v, str):
        raise UserError(f"{where}: expected a string")
    return v


def _section(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a table of keys, got {data!r:.60}")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for k, v in data.items():
        if k not in known:
            raise UserError(f"{where}: unknown key {k!r}; known keys are {', '.join(sorted(known))}")
        v = _value(getattr(cls(), k), v, f"{where}.{k}")
        if k in BOUNDS and isinstance(v, (int, float, tuple)) and not isinstance(v, bool):
            lo, hi = BOUNDS[k]
            for x in v if isinstance(v, tuple) else (v,):
                if not lo <= x <= hi:
                    raise UserError(f"{where}.{k}: {x:g} is outside the physical range {lo:g}..{hi:g}")
        kwargs[k] = v
    return cls(**kwargs)


def _check_isp(isp: Isp, where: str) -> Isp:
    for key in ("tone_r", "tone_g", "tone_b"):
        knots = getattr(isp, key)
        if any(b < a for a, b in zip(knots[:-1], knots[1:], strict=True)):
            raise UserError(f"{where}.{key}: a tone curve must not decrease; got {', '.join(f'{v:g}' for v in knots)}")
    m = isp.colour_matrix
    if (
        abs(
            m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6])
        )
        < 1e-3
    ):
        raise UserError(
            f"{where}.colour_matrix: the matrix is singular; give 9 numbers, row by row (identity: 1,0,0,0,1,0,0,0,1)"
        )
    if isp.levels_white <= isp.levels_black:
        raise UserError(f"{where}.levels_white: must be above levels_black ({isp.levels_black:g})")
    return isp


SECTIONS = ("printer", "scene", "camera", "isp")


def parse_profile(data: dict[str, Any], name: str, where: str) -> ChannelProfile:
    """Build a profile from parsed TOML, naming ``where`` in any error."""
    extra = set(data) - {"name", "description", "calibrated_from", *SECTIONS}
    if extra:
        raise UserError(
            f"{where}: unknown section(s) {', '.join(sorted(extra))}; expected [printer], [scene], [camera], [isp]"
        )
    sessions = data.get("calibrated_from", [])
    if not isinstance(sessions, list) or not all(isinstance(v, str) and SESSION_RE.match(v) for v in sessions):
        raise UserError(
            f"{where}: calibrated_from must list the capture sessions the profile was fitted to (names of letters, "
            "digits, '.', '_' and '-'); remove the key or write calibrate's own value back"
        )
    return ChannelProfile(
        name=str(data.get("name", name)),
        description=str(data.get("description", "")),
        printer=_section(Printer, data.get("printer", {}), f"{where} [printer]"),
        scene=_section(Scene, data.get("scene", {}), f"{where} [scene]"),
        camera=_section(Camera, data.get("camera", {}), f"{where} [camera]"),
        isp=_check_isp(_section(Isp, data.get("isp", {}), f"{where} [isp]"), f"{where} [isp]"),
        calibrated_from=tuple(sessions),
    )


def load_profile(name_or_path: str) -> ChannelProfile:
    """Load a preset by name or a TOML file by path.

    Raises:
        UserError: when the preset does not exist or the file is unreadable/invalid.
    """
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(
                f"--profile {name_or_path}: no such file; use a preset ({', '.join(PRESETS)}) or a .toml path"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{path}: not UTF-8 text (byte {e.start}); a profile is a TOML file") from None
        where = str(path)
        name = path.stem
    else:
        if name_or_path not in PRESETS:
            raise UserError(
                f"--profile {name_or_path!r}: unknown preset; choose one of {', '.join(PRESETS)} or give a .toml file"
            )
        text = resources.files("contracts.profiles").joinpath(f"{name_or_path}.toml").read_text(encoding="utf-8")
        where = f"preset {name_or_path}"
        name = name_or_path
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{where}: invalid TOML ({e})") from None
    return parse_profile(data, name, where)


def default_profile() -> ChannelProfile:
    """The :data:`DEFAULT_PRESET` profile (``office-laser-webcam``)."""
    return load_profile(DEFAULT_PRESET)


# -- writing: the inverse of parse_profile ----------------------------------------
def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.6g}" if "e" in f"{v:.6g}" or "." in f"{v:.6g}" else f"{v:.6g}.0"
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml(float(x)) for x in v) + "]"
    return json.dumps(str(v))


def render_toml(profile: ChannelProfile, header: list[str] | None = None, notes: dict[str, str] | None = None) -> str:
    """The profile as TOML that :func:`parse_profile` reads back: every key written,
    ``header`` lines as comments at the top and ``notes[section.key]`` as a comment above its key."""
    notes = notes or {}
    out = [f"# {h}" for h in header or []] + [
        f"name = {_toml(profile.name)}",
        f"description = {_toml(profile.description)}",
        *(
            ["calibrated_from = [" + ", ".join(json.dumps(v) for v in profile.calibrated_from) + "]"]
            if profile.calibrated_from
            else []
        ),
        "",
    ]
    for section in SECTIONS:
        obj = getattr(profile, section)
        out.append(f"[{section}]")
        for f in fields(obj):
            note = notes.get(f"{section}.{f.name}")
            if note:
                out.append(f"# {note}")
            out.append(f"{f.name} = {_toml(getattr(obj, f.name))}")
        out.append("")
    return "\n".join(out)


def write_profile(
    path: Path, profile: ChannelProfile, header: list[str] | None = None, notes: dict[str, str] | None = None
) -> str:
    """Write ``profile`` to ``path`` (.toml) atomically, after checking that :func:`load_profile` reads it back; return
    the text.
    """
    text = render_toml(profile, header, notes)
    parse_profile(tomllib.loads(text), path.stem, str(path))  # never write a file load_profile would refuse
    atomic_write_text(path, text)
    return text

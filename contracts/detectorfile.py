"""A user's own face detector: an ``.onnx`` file and a small decoder spec beside it (docs/detectors.md).

``my.onnx`` with ``my.detector.toml`` (or ``my.detector.json``) beside it plugs in
as ``--model my.onnx``, like the zoo's CenterFace and YuNet::

    decoder = "yunet"          # how to read the outputs: "centerface" or "yunet" (the supported decodings)
    name = "my-yunet"          # shown in the report (default: the file's stem)
    input_size = 640           # yunet: the fixed square input (multiple of 32); centerface: 0 (any multiple of 32)
    mean = [0, 0, 0]           # subtracted, 0..255 units
    std = [1, 1, 1]            # then divided by
    channel_order = "BGR"      # RGB or BGR
    layout = "NCHW"            # NCHW or NHWC
    score = 0.9                # a box needs at least this score
    nms_iou = 0.3              # boxes overlapping a better one by more are dropped

Everything from outside is checked here (one line naming the file and the key);
the network itself is checked against its decoder when it loads
(:func:`capture.faces.check_outputs`). Torch-free.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

from contracts.detection import Decoder, DetectorSpec
from contracts.errors import UserError

SUFFIXES = (".detector.toml", ".detector.json")
KEYS = ("decoder", "name", "input_size", "mean", "std", "channel_order", "layout", "score", "nms_iou")
MAX_BYTES = 64_000


def detector_sidecar(model_file: Path) -> Path | None:
    """``<stem>.detector.toml`` (or ``.json``) beside the model file, else ``None``."""
    for suffix in SUFFIXES:
        cand = model_file.with_name(model_file.stem + suffix)
        if cand.is_file():
            return cand
    return None


def _number(d: dict[str, Any], key: str, default: float, lo: float, hi: float, where: Path) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise UserError(f"{where}: {key} must be a number in {lo:g}..{hi:g}, got {v!r}")
    return float(v)


def _triple(d: dict[str, Any], key: str, default: float, where: Path, positive: bool = False) -> tuple[float, ...]:
    v = d.get(key, [default] * 3)
    ok = isinstance(v, list) and len(v) == 3
    ok = ok and all(not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) for x in v)
    if not ok or (positive and any(x <= 0 for x in v)) or any(abs(x) > 1e4 for x in v):
        what = "three positive numbers" if positive else "three finite numbers"
        raise UserError(f"{where}: {key} must be {what} (0..255 units), got {v!r}")
    return tuple(float(x) for x in v)


def _choice(d: dict[str, Any], key: str, default: str | None, choices: tuple[str, ...], where: Path) -> str:
    v = d.get(key, default)
    if v not in choices:
        raise UserError(f"{where}: {key} must be one of {', '.join(choices)}, got {v!r}")
    return str(v)


def read_detector_sidecar(path: Path, model_file: Path) -> DetectorSpec:
    """The :class:`DetectorSpec` of ``model_file`` from its sidecar ``path`` (TOML or JSON, at most 64 kB).

    Raises:
        UserError: unreadable, too large, an unknown key, or a value out of range (naming the file and the key).
    """
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"{path}: larger than {MAX_BYTES} bytes; a decoder spec is a few lines")
        text = path.read_text(encoding="utf-8")
        d = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise UserError(f"{path}: not a readable decoder spec ({str(e)[:200]})") from None
    if not isinstance(d, dict):
        raise UserError(f"{path}: expected a table of keys ({', '.join(KEYS)})")
    unknown = sorted(set(d) - set(KEYS))
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(KEYS)}")
    return spec_from_dict(d, path, model_file.stem)


def spec_from_metadata(d: dict[str, Any], where: Path) -> DetectorSpec:
    """A prepared file's spec (its ``photoproof.detector`` metadata), checked as a sidecar is."""
    spec = spec_from_dict({k: v for k, v in d.items() if k in KEYS}, where, where.stem)
    text = {k: d[k] for k in ("package", "version", "file", "paper", "license") if isinstance(d.get(k), str)}
    return replace(spec, **{k: v[:300] for k, v in text.items()})


def spec_from_dict(d: dict[str, Any], path: Path, stem: str) -> DetectorSpec:
    """:class:`DetectorSpec` from the keys of the module docstring; each value checked (one line naming it)."""
    decoder = _choice(d, "decoder", None, ("centerface", "yunet"), path)
    size = d.get("input_size", 640 if decoder == "yunet" else 0)
    if isinstance(size, bool) or not isinstance(size, int) or size % 32 or not 0 <= size <= 2048:
        raise UserError(f"{path}: input_size must be 0 or a multiple of 32 up to 2048, got {size!r}")
    if decoder == "yunet" and size == 0:
        raise UserError(f"{path}: input_size: the yunet decoding needs the fixed square input's side (e.g. 640)")
    name = d.get("name", stem)
    if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable():
        raise UserError(f"{path}: name must be printable text of 1 to 64 characters")
    return DetectorSpec(
        name=name,
        decoder=cast(Decoder, decoder),
        runtime="onnx",
        package="",
        version="",
        file=path.name,
        score=_number(d, "score", 0.5 if decoder == "centerface" else 0.9, 0.0, 1.0, path),
        nms_iou=_number(d, "nms_iou", 0.3, 0.0, 1.0, path),
        channel_order=cast(Literal["RGB", "BGR"], _choice(d, "channel_order", "RGB", ("RGB", "BGR"), path)),
        paper="",
        license="",
        input_size=size,
        mean=_triple(d, "mean", 0.0, path),
        std=_triple(d, "std", 1.0, path, positive=True),
        layout=cast(Literal["NCHW", "NHWC"], _choice(d, "layout", "NCHW", ("NCHW", "NHWC"), path)),
    )

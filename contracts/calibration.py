"""``BATCH/calibrations/<profile>.json``: what ``photoproof calibrate`` fitted, kept in the batch for the report.

calibrate writes the profile wherever ``--out`` says and, beside the captures it was fitted to, this record: the
fitted keys against the base profile's, the tone curves, the grey ramp observed and predicted (the residual per
strip patch) and the edge spread function observed and fitted. ``photoproof report`` shows each record it finds
(``analysis.calibration``); the console table of calibrate is drawn from the same record. A record is read as
hostile: every field is type- and range-checked, and a bad one is a one-line error naming the file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.batchdir import CALIBRATIONS
from contracts.errors import UserError
from contracts.paths import atomic_write_json
from contracts.validate import Fields

SCHEMA = "photoproof.calibration"
SCHEMA_VERSION = 1
MAX_RECORDS = 64  # a batch's calibration records the report reads; more is a folder to tidy
MAX_BYTES = 1_000_000
MAX_ROWS = 256
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
KEY_FIELDS = ("key", "fitted", "base", "from")  # a key row's fields in the file

Triple = tuple[float, float, float]


@dataclass(frozen=True)
class KeyRow:
    """One profile key: its fitted value and the base's (as text), and where the fitted one came from."""

    key: str
    fitted: str
    base: str
    source: str


@dataclass(frozen=True)
class CalibrationRecord:
    """One calibrated profile. ``tone`` (R, G, B knots over input 0..1) and ``ramp_predicted`` are ``None`` when the
    strip showed no camera processing beyond the printer model; the ESF fields are empty without edges."""

    profile: str
    base: str
    sessions: tuple[str, ...]
    views: str
    written: str
    keys: tuple[KeyRow, ...]
    tone: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]] | None
    ramp_levels: tuple[int, ...]
    ramp_observed: tuple[Triple, ...]
    ramp_predicted: tuple[Triple, ...] | None
    esf_offsets_px: tuple[float, ...] = ()
    esf_observed: tuple[float, ...] = ()
    esf_predicted: tuple[float, ...] = ()
    esf_fit: str = ""  # the fitted blur and sharpening in words

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "profile": self.profile,
            "base": self.base,
            "sessions": list(self.sessions),
            "views": self.views,
            "written": self.written,
            "keys": [{"key": k.key, "fitted": k.fitted, "base": k.base, "from": k.source} for k in self.keys],
            "tone": None if self.tone is None else [list(c) for c in self.tone],
            "ramp": {
                "levels": list(self.ramp_levels),
                "observed": [list(v) for v in self.ramp_observed],
                "predicted": None if self.ramp_predicted is None else [list(v) for v in self.ramp_predicted],
            },
            "esf": {
                "offsets_px": list(self.esf_offsets_px),
                "observed": list(self.esf_observed),
                "predicted": list(self.esf_predicted),
                "fit": self.esf_fit,
            },
        }


def calibration_path(batch_dir: Path, profile: str) -> Path:
    """Where the record of ``profile`` goes: its name made a safe file stem."""
    stem = _UNSAFE.sub("_", profile)[:64].lstrip(".") or "profile"
    return Path(batch_dir) / CALIBRATIONS / f"{stem}.json"


def write_calibration(batch_dir: Path, rec: CalibrationRecord) -> Path:
    """Write ``rec`` atomically (a newer calibration of the same profile name replaces it)."""
    path = calibration_path(batch_dir, rec.profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, rec.to_dict())
    return path


def read_calibrations(batch_dir: Path) -> list[CalibrationRecord]:
    """Every record in ``BATCH/calibrations/``, by file name; none when there is no such folder."""
    folder = Path(batch_dir) / CALIBRATIONS
    if not folder.is_dir():
        return []
    if folder.is_symlink() or not folder.resolve().is_relative_to(Path(batch_dir).resolve()):
        raise UserError(f"{folder}: a link out of the batch, not its calibration records; remove it")
    files = sorted(p for p in folder.glob("*.json") if p.is_file() and not p.is_symlink())
    if len(files) > MAX_RECORDS:
        raise UserError(f"{folder}: {len(files)} calibration records, at most {MAX_RECORDS}: remove the old ones")
    return [read_calibration(p) for p in files]


def read_calibration(path: Path) -> CalibrationRecord:
    """One record, every field checked; a :class:`UserError` naming the file and the field otherwise."""
    fix = "run 'photoproof calibrate' again or remove the file"
    if path.stat().st_size > MAX_BYTES:
        raise UserError(f"{path}: larger than {MAX_BYTES} bytes, not a calibration record; {fix}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise UserError(f"{path}: corrupt JSON ({e}); {fix}") from None
    f = Fields(str(path), fix)
    d = f.obj(data, "record")
    if d.get("schema") != SCHEMA or d.get("schema_version") != SCHEMA_VERSION:
        raise f.fail("schema", f"expected {SCHEMA} version {SCHEMA_VERSION}", d.get("schema"))

    def texts(v: Any, field: str) -> tuple[str, ...]:
        return tuple(f.text(x, f"{field}[{i}]") for i, x in enumerate(f.lst(v, field)[:MAX_ROWS]))

    def numbers(v: Any, field: str, lo: float, hi: float) -> tuple[float, ...]:
        return tuple(f.number(x, f"{field}[{i}]", lo, hi) for i, x in enumerate(f.lst(v, field)[:MAX_ROWS]))

    def triples(v: Any, field: str) -> tuple[Triple, ...]:
        out = []
        for i, x in enumerate(f.lst(v, field)[:MAX_ROWS]):
            a, b, c = (f.number(y, f"{field}[{i}]", 0.0, 255.0) for y in f.lst(x, f"{field}[{i}]", 3))
            out.append((a, b, c))
        return tuple(out)

    keys = []
    for i, k in enumerate(f.lst(f.key(d, "keys", ""), "keys")[:MAX_ROWS]):
        k = f.obj(k, f"keys[{i}]")
        keys.append(KeyRow(*(f.text(f.key(k, n, f"keys[{i}]"), f"keys[{i}].{n}", True) for n in KEY_FIELDS)))
    tone = f.key(d, "tone", "")
    curves = (
        None
        if tone is None
        else tuple(numbers(c, f"tone[{i}]", 0.0, 1.0) for i, c in enumerate(f.lst(tone, "tone", 3)))
    )
    ramp, esf = f.obj(f.key(d, "ramp", ""), "ramp"), f.obj(f.key(d, "esf", ""), "esf")
    levels = tuple(
        f.integer(x, f"ramp.levels[{i}]", 0, 255)
        for i, x in enumerate(f.lst(f.key(ramp, "levels", "ramp"), "ramp.levels")[:MAX_ROWS])
    )
    observed = triples(f.key(ramp, "observed", "ramp"), "ramp.observed")
    pred = f.key(ramp, "predicted", "ramp")
    predicted = None if pred is None else triples(pred, "ramp.predicted")
    esf_x = numbers(f.key(esf, "offsets_px", "esf"), "esf.offsets_px", -100.0, 100.0)
    esf_o = numbers(f.key(esf, "observed", "esf"), "esf.observed", -10.0, 10.0)
    esf_p = numbers(f.key(esf, "predicted", "esf"), "esf.predicted", -10.0, 10.0)
    if len(observed) != len(levels) or (predicted is not None and len(predicted) != len(levels)):
        raise f.fail("ramp", "expected one observed and one predicted value per level")
    if not len(esf_x) == len(esf_o) == len(esf_p):
        raise f.fail("esf", "expected as many observed and predicted values as offsets")
    return CalibrationRecord(
        profile=f.text(f.key(d, "profile", ""), "profile"),
        base=f.text(f.key(d, "base", ""), "base"),
        sessions=texts(f.key(d, "sessions", ""), "sessions"),
        views=f.text(f.key(d, "views", ""), "views", True),
        written=f.text(f.key(d, "written", ""), "written", True),
        keys=tuple(keys),
        tone=None if curves is None else (curves[0], curves[1], curves[2]),
        ramp_levels=levels,
        ramp_observed=observed,
        ramp_predicted=predicted,
        esf_offsets_px=esf_x,
        esf_observed=esf_o,
        esf_predicted=esf_p,
        esf_fit=f.text(f.key(esf, "fit", "esf"), "esf.fit", True),
    )

"""The names of the files and folders in a batch directory, and the session-name rule.

Every stage finds its inputs and places its outputs through these names (see
``docs/batch-format.md``); no other module spells them out.

::

    BATCH/
      batch.json               MANIFEST    craft
      images/*.png             IMAGES      craft
      patches/<name>.png|.json PATCHES     craft --attack patch (the patch, its record, its checkpoint .state.pt)
      models/<name>.onnx       MODELS      models export (the target models a capture uses)
      sheets.pdf               SHEETS_PDF  printouts (the pages to print)
      cover.pdf                COVER_PDF   printouts (the batch's facts and how to print it: read it first)
      layout.json              LAYOUT      printouts (the newest print's layout)
      layouts/<layout id>.json LAYOUTS     printouts (every print's layout, kept for photos of older sheets)
      captures/<session>.sqlite            capture (one database per session)
      captures/<session>/crops/*.png       capture (each tile's sharpest and blurriest crop)
      sweep.json               SWEEP       sweep
      calibrations/<profile>.json CALIBRATIONS calibrate (what it fitted, for the report: contracts.calibration)
      report/                  REPORT      analysis
"""

from __future__ import annotations

import re
from pathlib import Path

from contracts.errors import UserError

MANIFEST = "batch.json"
IMAGES = "images"
PATCHES = "patches"
MODELS = "models"
SHEETS_PDF = "sheets.pdf"
COVER_PDF = "cover.pdf"
LAYOUT = "layout.json"
LAYOUTS = "layouts"
CAPTURES = "captures"
CAPTURE_SUFFIX = ".sqlite"
CROPS = "crops"
SWEEP = "sweep.json"
CALIBRATIONS = "calibrations"
REPORT = "report"

# A session's name is the stem of its database: a file name on every platform.
SESSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_session_name(name: str, flag: str = "--session") -> str:
    """Return ``name`` if it may name a capture session, else raise a :class:`UserError` naming ``flag``."""
    if not isinstance(name, str) or not SESSION_RE.match(name):
        raise UserError(
            f"{flag} {name!r}: use letters, digits, '.', '_' and '-' (at most 64), "
            f"the name of {CAPTURES}/<session>{CAPTURE_SUFFIX}"
        )
    return name


def image_rel(file_name: str) -> str:
    """The manifest path of an image called ``file_name`` (``images/<file_name>``)."""
    return f"{IMAGES}/{file_name}"


def patch_rel(name: str, suffix: str) -> str:
    """The batch-relative path of an adversarial patch's file: ``patches/<name><suffix>`` (``.png``, ``.json``,
    ``.state.pt``).
    """
    return f"{PATCHES}/{name}{suffix}"


def model_path(batch_dir: Path, name: str) -> Path:
    """Where ``photoproof models export NAME --batch`` puts a model: ``BATCH/models/<name>.onnx``."""
    return Path(batch_dir) / MODELS / f"{name}.onnx"


def captures_dir(batch_dir: Path) -> Path:
    """``BATCH/captures``."""
    return Path(batch_dir) / CAPTURES


def capture_db(batch_dir: Path, session: str) -> Path:
    """``BATCH/captures/<session>.sqlite`` (the name is not checked here: see :func:`check_session_name`)."""
    return captures_dir(batch_dir) / f"{session}{CAPTURE_SUFFIX}"


def capture_dbs(batch_dir: Path) -> list[Path]:
    """Every capture database of the batch, in name order (none when there is no ``captures/``)."""
    d = captures_dir(batch_dir)
    return sorted(d.glob(f"*{CAPTURE_SUFFIX}")) if d.is_dir() else []


def crops_dir(batch_dir: Path, session: str) -> Path:
    """``BATCH/captures/<session>/crops``: a session's crop gallery."""
    return captures_dir(batch_dir) / session / CROPS


def crop_rel(session_folder: str, file_name: str) -> str:
    """The batch-relative path of a crop in a session's gallery."""
    return f"{CAPTURES}/{session_folder}/{CROPS}/{file_name}"

"""What ``photoproof capture`` does once its flags are parsed (``capture.cli`` declares them).

The flags are checked together (:func:`check_modes`, :func:`check_values`), the one frame
source is built (:func:`build_source`), the target model is loaded once with its gates
(:class:`Target`), then one mode runs: a session with a live status line
(:func:`record_session`), a scene session (:func:`scene_session`), or the phones and preview
of ``capture.phones`` and ``capture.preview``. :func:`summary_table` is what the console shows
after a session.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from capture.cameraloop import Progress
from capture.classify import COREML, CPU, CUDA, TENSORRT, OnnxClassifier, default_providers
from capture.facetarget import FaceTarget, is_detector_file
from capture.session import run_capture
from capture.sheets.quality import MIN_TILE_FRACTION, QualityGates
from capture.sources.files import PhotoSource, VideoSource
from console.options import ModelFlags
from console.terminal import console, live_status
from contracts.errors import UserError
from contracts.frames import FrameSource
from contracts.labels import read_label_file, read_label_map

log = logging.getLogger(__name__)

PROVIDERS = {
    "auto": None,
    "cpu": [CPU],
    "cuda": [CUDA, CPU],
    "tensorrt": [TENSORRT, CUDA, CPU],
    "coreml": [COREML, CPU],
}


def build_source(
    batch_dir: Path,
    *,
    camera: int | None,
    url: str | None,
    video: Path | None,
    photos: Path | None,
    simulate: bool,
    width: int,
    height: int,
    fps: float,
    loop: bool,
    profile: str | None,
    seed: int | None,
    frames: int | None,
    connect_timeout: float,
) -> FrameSource:
    """The one frame source named on the command line."""
    given = [
        f for f, v in (("--camera", camera), ("--url", url), ("--video", video), ("--photos", photos)) if v is not None
    ]
    if simulate:
        given.append("--simulate")
    if len(given) != 1:
        raise UserError(
            "give exactly one source: --camera N, --url URL, --video FILE, --photos DIR, --phone or --simulate"
            f" (got {', '.join(given) or 'none'})"
        )
    if not simulate and (profile is not None or seed is not None):
        raise UserError("--profile and --seed apply to --simulate only")
    if loop and video is None and photos is None:
        raise UserError("--loop applies to --video and --photos only")
    if camera is not None:
        from capture.sources.live import CameraSource

        return CameraSource(camera, width=width, height=height, fps=fps)
    if url is not None:
        from capture.sources.live import UrlSource

        return UrlSource(url, open_timeout=connect_timeout)
    if video is not None:
        return VideoSource(video, loop=loop)
    if photos is not None:
        return PhotoSource(photos, loop=loop)
    try:
        from channel.simulate import SimulatedCamera
    except ImportError as e:
        raise UserError(f"--simulate: the simulated camera is not available here ({e})") from None
    from contracts.profile import DEFAULT_PRESET, load_profile

    prof = load_profile(profile or DEFAULT_PRESET)
    return SimulatedCamera.from_batch(
        batch_dir, profile=prof, seed=seed if seed is not None else 0, fps=prof.camera.fps, n_frames=frames
    )


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.0f}%" if n else "-"


def check_values(
    *,
    frames: int | None,
    duration: float | None,
    per_tile: int | None,
    width: int,
    height: int,
    fps: float,
    connect_timeout: float,
    port: int,
    gate_args: dict[str, Any],
) -> None:
    """Refuse bad numbers at once, before a model loads or a camera opens; each error names its flag."""
    positive: tuple[tuple[str, float | None], ...] = (
        ("--frames", frames),
        ("--duration", duration),
        ("--per-tile", per_tile),
        ("--width", width),
        ("--height", height),
        ("--fps", fps),
        ("--connect-timeout", connect_timeout),
    )
    for flag, v in positive:
        if v is not None and not (math.isfinite(v) and v > 0):
            raise UserError(f"{flag}: must be > 0, got {v}")
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: expected 0..65535")
    QualityGates(**{k: v for k, v in gate_args.items() if v is not None})  # raises naming the gate's flag


def summary_table(db: Path) -> Table:
    """Frames, observations and top-1 agreement with the true class, per role, from the database."""
    import json

    from contracts.capturedb import open_db_readonly
    from contracts.manifest import is_face_batch, load_batch

    con = open_db_readonly(db)
    try:
        n_frames, n_sheets = con.execute("SELECT COUNT(*), SUM(sheets_found > 0) FROM frames").fetchone()
        rows = con.execute("SELECT item_id, role, top1, good FROM observations").fetchall()
        cfg = json.loads(con.execute("SELECT config FROM sessions").fetchone()[0] or "{}")
    finally:
        con.close()
    lmap = {int(k): int(v) for k, v in ((cfg.get("labels") or {}).get("map") or {}).items()}
    batch = load_batch(db.parent.parent)
    truth = {it.id: lmap.get(it.label.index, it.label.index) for it in batch.items}
    face = is_face_batch(batch)  # top1 1: every truth face found (capture.facetarget)
    table = Table(title=f"capture {escape(db.stem)}", show_edge=False)
    right_fooled = (
        ("every face found (good)", "a face missed (good)") if face else ("model right (good)", "fooled (good)")
    )
    for col in ("", "observations", "good", *right_fooled):
        table.add_column(col, justify="right")
    for role in ("clean", "adv"):
        good = [r for r in rows if r[1] == role and r[3]]
        right = sum(1 for r in good if truth.get(r[0]) == r[2])
        n_role = sum(1 for r in rows if r[1] == role)
        table.add_row(role, str(n_role), str(len(good)), _pct(right, len(good)), _pct(len(good) - right, len(good)))
    stopped_by = escape(str(cfg.get("stopped_by", "?")))
    table.caption = f"{n_frames} frames, {n_sheets or 0} with a sheet; stopped by {stopped_by}"
    return table


def gates_line(gates: QualityGates, input_size: int) -> str:
    return (
        f"gates: tiles >= {gates.min_tile_px:.0f} px ({MIN_TILE_FRACTION} x {input_size}), view <= "
        f"{gates.max_angle_deg:g}°, sharpness >= {gates.min_sharpness:g}; clean/adversarial pairs judged together"
    )


def scene_session(
    batch: Path,
    source: FrameSource,
    clf: OnnxClassifier | FaceTarget,
    region: str | None,
    label: str | None,
    frames: int | None,
    duration: float | None,
    session: str | None,
    summary: Callable[[list[Path]], object] | None,
    headless: bool = False,
) -> None:
    """``capture --scene``: record the session, then print its with/without-patch figures (``summary``, from the
    analysis).
    """
    from capture.scene import Region, run_scene
    from capture.session import default_session_id
    from contracts.batchdir import check_session_name
    from contracts.classes import parse_label

    if session is not None:
        check_session_name(session)
    db = run_scene(
        batch,
        source,
        clf,
        region=Region.parse(region) if region else None,
        label=parse_label(label, where="--label") if label else None,
        frames=frames,
        duration=duration,
        session_id=session or f"{default_session_id(source)}-scene",
        headless=headless,
    )
    if summary is not None:
        console.print(summary([db]))
    console.print(f"recorded {escape(str(db))}", soft_wrap=True)


def sources_given(
    camera: int | None, url: str | None, video: Path | None, photos: Path | None, simulate: bool
) -> list[str]:
    """The frame-source flags given (``--phone`` and ``--preview`` aside)."""
    flags = (("--camera", camera), ("--url", url), ("--video", video), ("--photos", photos), ("--simulate", simulate))
    return [f for f, v in flags if v is not None and v is not False]


def check_modes(
    provider: str,
    scene: bool,
    phone: bool,
    preview: str | None,
    simulate: bool,
    region: str | None,
    label: str | None,
    given: list[str],
) -> None:
    """The flags that choose what ``capture`` does agree (one-line errors naming them)."""
    if provider not in PROVIDERS:
        raise UserError(f"--provider {provider!r}: choose one of {', '.join(PROVIDERS)}")
    if not scene and (region is not None or label is not None):
        raise UserError("--region and --label apply to --scene only")
    if scene and simulate:
        raise UserError(
            "--simulate: the simulated camera photographs sheets; --scene needs a real scene (--camera, --url, "
            "--video or --photos)"
        )
    if scene and (phone or preview is not None):
        raise UserError(
            f"{'--phone' if phone else '--preview'}: not with --scene; a scene is recorded from --camera, --url, "
            "--video or --photos"
        )
    if preview is not None and (given or phone):
        raise UserError(f"--preview takes its source itself: drop {', '.join(given + ['--phone'] * phone)}")
    if phone and given:
        raise UserError(f"give exactly one source: --phone, or {', '.join(given)} (got both)")


@dataclass(frozen=True)
class Target:
    """The target model as capture runs it: its file, its classifier, the gates sized for it, the label map."""

    model_path: Path
    clf: OnnxClassifier | FaceTarget
    gates: QualityGates
    label_map: dict[str, str] | None

    @classmethod
    def build(
        cls,
        model_path: Path,
        provider: str,
        flags: ModelFlags,
        gate_args: dict[str, Any],
    ) -> Target:
        lmap = read_label_map(flags.label_map) if flags.label_map is not None else None
        if is_detector_file(model_path):  # a face detector (models export centerface|yunet): a face batch's target
            face = FaceTarget(model_path)
            return cls(model_path, face, QualityGates.for_model(face.spec.input_size, face.name, **gate_args), None)
        clf = OnnxClassifier(
            model_path,
            providers=PROVIDERS[provider] or default_providers(),
            class_names=read_label_file(flags.labels) if flags.labels else None,
            overrides=flags.overrides,
        )
        return cls(model_path, clf, QualityGates.for_model(clf.spec.input_size, clf.name, **gate_args), lmap)

    def announce(self, source: str) -> None:
        """The model, its provider, the source and the gates, before the run starts."""
        clf = self.clf
        console.print(
            f"model [bold]{escape(clf.name)}[/] ({escape(self.model_path.name)}, sha256 {clf.sha256[:12]}) on "
            f"[bold]{escape(clf.provider)}[/]; source {escape(source)}",
            soft_wrap=True,
        )
        console.print(gates_line(self.gates, clf.spec.input_size))


def record_session(
    batch: Path,
    source: FrameSource,
    target: Target,
    frames: int | None,
    duration: float | None,
    per_tile: int | None,
    headless: bool,
    session: str | None,
    save_crops: bool,
) -> Path:
    """One capture session with a live status line; return its database."""
    with live_status("starting...") as show:

        def progress(p: Progress) -> None:
            line = f"frame {p.frames}/{frames}  {p.line()}" if frames else p.line()
            line = line if not p.done else f"{line}  -- stopped: {p.stopped_by}"
            show(line + (f"\n{p.coverage.line()}" if p.coverage is not None else ""))

        return run_capture(
            batch,
            target.model_path,
            source,
            frames=frames,
            duration=duration,
            per_tile=per_tile,
            headless=headless,
            session_id=session,
            save_crops=save_crops,
            gates=target.gates,
            classifier=target.clf,
            on_progress=progress,
            label_map=target.label_map,
        )

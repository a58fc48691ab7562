"""``photoproof capture``: photograph printed sheets and record what a model sees.

::

    photoproof capture BATCH --model lite2 --camera 0 --duration 60
    photoproof capture BATCH --model lite2 --url http://PHONE:8080/video --per-tile 20
    photoproof capture BATCH --model net.onnx --input-size 224 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --photos DIR
    photoproof capture BATCH --model lite2 --simulate --profile inkjet-phone --seed 1 --frames 300
    photoproof capture BATCH --model lite2 --phone --per-tile 10
    photoproof capture BATCH --preview 0 --headless --frames 30
    photoproof capture BATCH --scene --label banana --region 320,40,640,640 --camera 0 --duration 60
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from capture.classify import COREML, CPU, CUDA, TENSORRT, OnnxClassifier, default_providers
from capture.session import Progress, run_capture
from capture.sheets.quality import MIN_TILE_FRACTION, QualityGates
from capture.sources.files import PhotoSource, VideoSource
from contracts.cliopts import (
    DEFAULT_CAMERA,
    DEFAULT_TARGET,
    model_flags,
    opt_channel_order,
    opt_crop,
    opt_input_size,
    opt_label_map,
    opt_labels,
    opt_mean,
    opt_resize,
    opt_scale,
    opt_std,
)
from contracts.console import console
from contracts.errors import UserError
from contracts.frames import FrameSource
from contracts.labels import read_label_file, read_label_map

log = logging.getLogger(__name__)

SRC, STOP, GATE = "Source (exactly one)", "When to stop", "Quality gates"
SCENE = "Scene mode (adversarial patch)"
_PROVIDERS = {
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


def _summary(db: Path) -> Table:
    """Frames, observations and top-1 agreement with the true class, per role, from the database."""
    import json

    from contracts.capturedb import open_db_readonly
    from contracts.manifest import load_batch

    con = open_db_readonly(db)
    try:
        n_frames, n_sheets = con.execute("SELECT COUNT(*), SUM(sheets_found > 0) FROM frames").fetchone()
        rows = con.execute("SELECT item_id, role, top1, good FROM observations").fetchall()
        cfg = json.loads(con.execute("SELECT config FROM sessions").fetchone()[0] or "{}")
    finally:
        con.close()
    lmap = {int(k): int(v) for k, v in ((cfg.get("labels") or {}).get("map") or {}).items()}
    truth = {it.id: lmap.get(it.label.index, it.label.index) for it in load_batch(db.parent.parent).items}
    table = Table(title=f"capture {db.stem}", show_edge=False)
    for col in ("", "observations", "good", "model right (good)", "fooled (good)"):
        table.add_column(col, justify="right")
    for role in ("clean", "adv"):
        good = [r for r in rows if r[1] == role and r[3]]
        right = sum(1 for r in good if truth.get(r[0]) == r[2])
        n_role = sum(1 for r in rows if r[1] == role)
        pct = (lambda k: f"{100 * k / len(good):.0f}%") if good else (lambda k: "-")
        table.add_row(role, str(n_role), str(len(good)), pct(right), pct(len(good) - right))
    table.caption = f"{n_frames} frames, {n_sheets or 0} with a sheet; stopped by {cfg.get('stopped_by', '?')}"
    return table


def _gates_line(gates: QualityGates, input_size: int) -> str:
    return (
        f"gates: tiles >= {gates.min_tile_px:.0f} px ({MIN_TILE_FRACTION} x {input_size}), view <= {gates.max_angle_deg:g}°, "
        f"sharpness >= {gates.min_sharpness:g}; clean/adversarial pairs judged together"
    )


def _scene(
    batch: Path,
    source: FrameSource,
    clf: OnnxClassifier,
    region: str | None,
    label: str | None,
    frames: int | None,
    duration: float | None,
    session: str | None,
    summary: Callable[[list[Path]], object] | None,
    headless: bool = False,
) -> None:
    """``capture --scene``: record the session, then print its with/without-patch figures (``summary``, from the analysis)."""
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
    console.print(f"recorded {db}")


def register(
    app: typer.Typer,
    resolve_model: Callable[[str, Path | None], Path],
    scene_summary: Callable[[list[Path]], object] | None = None,
) -> None:
    """Add the ``capture`` command to ``app``; ``resolve_model(name_or_file, batch_dir)`` gives the .onnx path,
    ``scene_summary(dbs)`` the printable figures of ``--scene`` sessions (capture does not import the analysis)."""

    @app.command("capture")
    def capture_cmd(
        batch: Path = typer.Argument(..., help="The batch directory (printed with 'photoproof print')."),
        model: str = typer.Option(
            DEFAULT_TARGET, "--model", "-m", help="Target model: a zoo name (lite2) or an .onnx file."
        ),
        camera: int | None = typer.Option(
            None, "--camera", help="Webcam index (0: the built-in one).", rich_help_panel=SRC
        ),
        url: str | None = typer.Option(
            None, "--url", help="MJPEG/RTSP stream, e.g. http://PHONE:8080/video.", rich_help_panel=SRC
        ),
        video: Path | None = typer.Option(None, "--video", help="A video file.", rich_help_panel=SRC),
        photos: Path | None = typer.Option(
            None, "--photos", help="A folder of photos, taken in name order.", rich_help_panel=SRC
        ),
        simulate: bool = typer.Option(
            False, "--simulate", help="The simulated print-and-photograph channel.", rich_help_panel=SRC
        ),
        phone: bool = typer.Option(
            False,
            "--phone",
            help="Serve a page to phones' browsers (HTTPS, QR code); one session per phone.",
            rich_help_panel=SRC,
        ),
        bind: str = typer.Option(
            "0.0.0.0",
            "--bind",
            help="--phone: the address to listen on (0.0.0.0: every interface; lan: only the one the QR code names).",
            rich_help_panel=SRC,
        ),
        port: int = typer.Option(
            8443, "--port", help="--phone: the port to listen on (0: any free one).", rich_help_panel=SRC
        ),
        preview: str | None = typer.Option(
            None,
            "--preview",
            help="Show a source (camera index, URL, video) with detection overlays; record nothing.",
            rich_help_panel=SRC,
        ),
        width: int = typer.Option(
            DEFAULT_CAMERA[0],
            "--width",
            help="Camera frame width (asked of the camera; it falls back to its nearest mode). 1080p gives tiles the pixels clean accuracy needs.",
            rich_help_panel=SRC,
        ),
        height: int = typer.Option(DEFAULT_CAMERA[1], "--height", help="Camera frame height.", rich_help_panel=SRC),
        fps: float = typer.Option(30.0, "--fps", help="Camera frame rate.", rich_help_panel=SRC),
        connect_timeout: float = typer.Option(
            10.0, "--connect-timeout", help="Seconds to keep trying a --url at start.", rich_help_panel=SRC
        ),
        loop: bool = typer.Option(False, "--loop", help="Replay --video/--photos until stopped.", rich_help_panel=SRC),
        profile: str | None = typer.Option(
            None, "--profile", help="Channel profile for --simulate (preset or .toml).", rich_help_panel=SRC
        ),
        seed: int | None = typer.Option(None, "--seed", help="Seed for --simulate.", rich_help_panel=SRC),
        frames: int | None = typer.Option(None, "--frames", help="Stop after N frames.", rich_help_panel=STOP),
        duration: float | None = typer.Option(None, "--duration", help="Stop after S seconds.", rich_help_panel=STOP),
        per_tile: int | None = typer.Option(
            None, "--per-tile", help="Stop when every tile has K good observations.", rich_help_panel=STOP
        ),
        headless: bool = typer.Option(False, "--headless", help="No live window (automatic without a display)."),
        session: str | None = typer.Option(
            None,
            "--session",
            help="Session name (default: date-time-source-random); an existing one resumes; one in use by another capture is refused.",
        ),
        no_crops: bool = typer.Option(False, "--no-crops", help="Do not save the crop gallery."),
        provider: str = typer.Option(
            "auto",
            "--provider",
            help="onnxruntime provider: auto (TensorRT/CUDA with a GPU, CoreML on a Mac, else the CPU), cpu, cuda, tensorrt, coreml.",
        ),
        min_sharpness: float = typer.Option(
            QualityGates.min_sharpness,
            "--min-sharpness",
            help="Variance of the Laplacian of the crop at the tile's camera resolution.",
            rich_help_panel=GATE,
        ),
        min_tile_px: float | None = typer.Option(
            None,
            "--min-tile-px",
            help=f"Tile side in camera pixels (default: {MIN_TILE_FRACTION} x the model's input size, e.g. 195 for lite2).",
            rich_help_panel=GATE,
        ),
        max_angle_deg: float = typer.Option(
            QualityGates.max_angle_deg,
            "--max-angle-deg",
            help="Viewing angle off the sheet's normal.",
            rich_help_panel=GATE,
        ),
        max_clipped: float = typer.Option(
            QualityGates.max_clipped,
            "--max-clipped",
            help="Fraction of pixels at 0 or 255 where the digital image is mid-tone.",
            rich_help_panel=GATE,
        ),
        max_reproj_px: float = typer.Option(
            QualityGates.max_reproj_px, "--max-reproj-px", help="RMS marker reprojection error.", rich_help_panel=GATE
        ),
        input_size: int | None = opt_input_size(),
        mean: str | None = opt_mean(),
        std: str | None = opt_std(),
        scale: float | None = opt_scale(),
        resize: str | None = opt_resize(),
        crop: str | None = opt_crop(),
        channel_order: str | None = opt_channel_order(),
        labels: Path | None = opt_labels(),
        label_map: Path | None = opt_label_map(),
        scene: bool = typer.Option(
            False,
            "--scene",
            help="Classify the whole view (not tiles) and find the printed patch card in it.",
            rich_help_panel=SCENE,
        ),
        region: str | None = typer.Option(
            None,
            "--region",
            help="--scene: classify only x,y,w,h of the frame (its centred square).",
            rich_help_panel=SCENE,
        ),
        label: str | None = typer.Option(
            None,
            "--label",
            help="--scene: the photographed object's true class (index, WordNet id or name).",
            rich_help_panel=SCENE,
        ),
    ) -> None:
        """Photograph printed sheets and record what the target model sees, tile by tile."""
        if provider not in _PROVIDERS:
            raise UserError(f"--provider {provider!r}: choose one of {', '.join(_PROVIDERS)}")
        if not scene and (region is not None or label is not None):
            raise UserError("--region and --label apply to --scene only")
        if scene and simulate:
            raise UserError(
                "--simulate: the simulated camera photographs sheets; --scene needs a real scene (--camera, --url, --video or --photos)"
            )
        if scene and (phone or preview is not None):
            raise UserError(
                f"{'--phone' if phone else '--preview'}: not with --scene; a scene is recorded from --camera, --url, --video or --photos"
            )
        gate_args: dict[str, Any] = dict(
            min_sharpness=min_sharpness,
            min_tile_px=min_tile_px,
            max_angle_deg=max_angle_deg,
            max_clipped=max_clipped,
            max_reproj_px=max_reproj_px,
        )
        check_values(
            frames=frames,
            duration=duration,
            per_tile=per_tile,
            width=width,
            height=height,
            fps=fps,
            connect_timeout=connect_timeout,
            port=port,
            gate_args=gate_args,
        )
        others = [
            f
            for f, v in (
                ("--camera", camera),
                ("--url", url),
                ("--video", video),
                ("--photos", photos),
                ("--simulate", simulate or None),
            )
            if v is not None
        ]
        if preview is not None:
            from capture.preview import run_preview

            if others or phone:
                raise UserError(f"--preview takes its source itself: drop {', '.join(others + ['--phone'] * phone)}")
            # no model to size the gate from: --min-tile-px, else the default (lite0's input size)
            gates = QualityGates(**{k: v for k, v in gate_args.items() if v is not None})
            run_preview(
                batch,
                preview,
                frames=frames,
                duration=duration,
                headless=headless,
                gates=gates,
                width=width,
                height=height,
                fps=fps,
            )
            return
        if phone:
            if others:
                raise UserError(f"give exactly one source: --phone, or {', '.join(others)} (got both)")
            from capture.phones import run_phone_command

            model_path = resolve_model(model, batch)
            overrides = model_flags(input_size, mean, std, scale, resize, crop, channel_order)
            lmap = read_label_map(label_map) if label_map is not None else None
            clf = OnnxClassifier(
                model_path,
                providers=_PROVIDERS[provider] or default_providers(),
                class_names=read_label_file(labels) if labels else None,
                overrides=overrides,
            )
            gates = QualityGates.for_model(clf.spec.input_size, clf.name, **gate_args)
            console.print(
                f"model [bold]{clf.name}[/] ({model_path.name}, sha256 {clf.sha256[:12]}) on [bold]{clf.provider}[/]; source phone page"
            )
            console.print(_gates_line(gates, clf.spec.input_size))
            for db in run_phone_command(
                batch,
                model_path,
                clf,
                bind=bind,
                port=port,
                frames=frames,
                duration=duration,
                per_tile=per_tile,
                session=session,
                gates=gates,
                save_crops=not no_crops,
                headless=headless,
                label_map=lmap,
            ):
                console.print(_summary(db))
                console.print(f"recorded {db}")
            return
        source = build_source(
            batch,
            camera=camera,
            url=url,
            video=video,
            photos=photos,
            simulate=simulate,
            width=width,
            height=height,
            fps=fps,
            loop=loop,
            profile=profile,
            seed=seed,
            frames=frames,
            connect_timeout=connect_timeout,
        )
        model_path = resolve_model(model, batch)
        overrides = model_flags(input_size, mean, std, scale, resize, crop, channel_order)
        lmap = read_label_map(label_map) if label_map is not None else None
        clf = OnnxClassifier(
            model_path,
            providers=_PROVIDERS[provider] or default_providers(),
            class_names=read_label_file(labels) if labels else None,
            overrides=overrides,
        )
        gates = QualityGates.for_model(clf.spec.input_size, clf.name, **gate_args)
        console.print(
            f"model [bold]{escape(clf.name)}[/] ({escape(model_path.name)}, sha256 {clf.sha256[:12]}) on [bold]{clf.provider}[/]; source {escape(source.description)}",
            soft_wrap=True,
        )
        console.print(_gates_line(gates, clf.spec.input_size))
        if scene:
            _scene(batch, source, clf, region, label, frames, duration, session, scene_summary, headless)
            return
        text = Text("starting...")

        with Live(text, console=console, refresh_per_second=4, transient=False) as live:

            def progress(p: Progress) -> None:
                line = f"frame {p.frames}/{frames}  {p.line()}" if frames else p.line()
                line = line if not p.done else f"{line}  -- stopped: {p.stopped_by}"
                text.plain = line + (f"\n{p.coverage.line()}" if p.coverage is not None else "")
                live.update(text)

            db = run_capture(
                batch,
                model_path,
                source,
                frames=frames,
                duration=duration,
                per_tile=per_tile,
                headless=headless,
                session_id=session,
                save_crops=not no_crops,
                gates=gates,
                classifier=clf,
                on_progress=progress,
                label_map=lmap,
            )
        console.print(_summary(db))
        console.print(f"recorded {escape(str(db))}", soft_wrap=True)

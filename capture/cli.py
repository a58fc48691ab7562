"""``photoproof capture``: photograph printed sheets and record what a model sees (the flags; what the
command then does is :mod:`capture.command`).

::

    photoproof capture BATCH --model lite2 --camera 0 --duration 60
    photoproof capture BATCH --model lite2 --url http://PHONE:8080/video --per-tile 20
    photoproof capture BATCH --model net.onnx --input-size 224 --mean 0.485,0.456,0.406 --photos DIR
    photoproof capture BATCH --model lite2 --simulate --profile inkjet-phone --seed 1 --frames 300
    photoproof capture BATCH --model lite2 --phone --per-tile 10
    photoproof capture BATCH --preview 0 --headless --frames 30
    photoproof capture BATCH --scene --label banana --region 320,40,640,640 --camera 0 --duration 60
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from capture.command import (
    Target,
    build_source,
    check_modes,
    check_values,
    record_session,
    scene_session,
    sources_given,
    summary_table,
)
from capture.facetarget import FaceTarget
from capture.sheets.quality import MIN_TILE_FRACTION, QualityGates
from console.options import (
    DEFAULT_CAMERA,
    DEFAULT_TARGET,
    ModelFlags,
    deprecated_option,
    model_options,
    parse_frame_size,
    renamed,
)
from console.terminal import console
from contracts.errors import UserError

log = logging.getLogger(__name__)

SRC, STOP, GATE = "Source (exactly one)", "When to stop", "Quality gates"
SCENE = "Scene mode (adversarial patch)"


def register(
    app: typer.Typer,
    resolve_model: Callable[[str, Path | None], Path],
    scene_summary: Callable[[list[Path]], object] | None = None,
) -> None:
    """Add the ``capture`` command to ``app``; ``resolve_model(name_or_file, batch_dir)`` gives the .onnx path,
    ``scene_summary(dbs)`` the printable figures of ``--scene`` sessions (capture does not import the analysis)."""

    @app.command("capture")
    @model_options(label_map=True)
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
        frame_size: str = typer.Option(
            f"{DEFAULT_CAMERA[0]}x{DEFAULT_CAMERA[1]}",
            "--frame-size",
            help="Camera frame size WIDTHxHEIGHT, asked of --camera/--preview (it falls back to its nearest mode). "
            "1080p gives tiles the pixels clean accuracy needs.",
            rich_help_panel=SRC,
        ),
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
            help="Session name (default: date-time-source-random); an existing one resumes; one in use by another "
            "capture is refused.",
        ),
        no_crops: bool = typer.Option(False, "--no-crops", help="Do not save the crop gallery."),
        provider: str = typer.Option(
            "auto",
            "--provider",
            help="onnxruntime provider: auto (TensorRT/CUDA with a GPU, CoreML on a Mac, else the CPU), cpu, cuda, "
            "tensorrt, coreml.",
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
            help=f"Tile side in camera pixels (default: {MIN_TILE_FRACTION} x the model's input size, e.g. 195 for "
            "lite2).",
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
        width: int | None = deprecated_option("--width"),
        height: int | None = deprecated_option("--height"),
        *,
        flags: ModelFlags,
    ) -> None:
        """Photograph printed sheets and record what the target model sees, tile by tile."""
        size = parse_frame_size(frame_size)
        size = (
            renamed(size[0], width, "--width", "--frame-size"),
            renamed(size[1], height, "--height", "--frame-size"),
        )
        given = sources_given(camera, url, video, photos, simulate)
        check_modes(provider, scene, phone, preview, simulate, region, label, given)
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
            width=size[0],
            height=size[1],
            fps=fps,
            connect_timeout=connect_timeout,
            port=port,
            gate_args=gate_args,
        )
        if preview is not None:
            from capture.preview import run_preview

            # no model to size the gate from: --min-tile-px, else the default (lite0's input size)
            gates = QualityGates(**{k: v for k, v in gate_args.items() if v is not None})
            run_preview(
                batch,
                preview,
                frames=frames,
                duration=duration,
                headless=headless,
                gates=gates,
                width=size[0],
                height=size[1],
                fps=fps,
            )
            return
        source = None
        if not phone:
            source = build_source(
                batch,
                camera=camera,
                url=url,
                video=video,
                photos=photos,
                simulate=simulate,
                width=size[0],
                height=size[1],
                fps=fps,
                loop=loop,
                profile=profile,
                seed=seed,
                frames=frames,
                connect_timeout=connect_timeout,
            )
        target = Target.build(resolve_model(model, batch), provider, flags, gate_args)
        target.announce("phone page" if source is None else source.description)
        if source is None:
            from capture.phones import run_phone_command

            dbs = run_phone_command(
                batch,
                target.model_path,
                target.clf,
                bind=bind,
                port=port,
                frames=frames,
                duration=duration,
                per_tile=per_tile,
                session=session,
                gates=target.gates,
                save_crops=not no_crops,
                headless=headless,
                label_map=target.label_map,
            )
        elif scene:
            if isinstance(target.clf, FaceTarget):
                raise UserError("--scene: scene mode measures classifiers only so far; capture a face batch's sheets")
            scene_session(batch, source, target.clf, region, label, frames, duration, session, scene_summary, headless)
            return
        else:
            dbs = [record_session(batch, source, target, frames, duration, per_tile, headless, session, not no_crops)]
        for db in dbs:
            console.print(summary_table(db))
            console.print(f"recorded {escape(str(db))}", soft_wrap=True)

"""``photoproof sweep`` and ``photoproof calibrate``.

::

    photoproof sweep BATCH --model lite0 --transforms blur,jpeg --steps 6 --seed 0
    photoproof calibrate BATCH --session 20261122-101500-camera --out my-setup.toml --jpeg-quality 90
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.table import Table

from contracts.console import console
from contracts.errors import UserError
from contracts.profile import DEFAULT_PRESET

log = logging.getLogger(__name__)


def _default_model(batch: Path) -> str:
    """The batch's first source model: batch.json holds its digital top-5, which the report's destruction rate needs."""
    from contracts.manifest import load_batch

    models = load_batch(batch).model("source")
    if not models:
        raise UserError(f"{batch / 'batch.json'}: names no source model; give --model NAME or FILE.onnx")
    return models[0].name


def register(app: typer.Typer, resolve_model: Callable[[str, Optional[Path]], Path]) -> None:
    """Add ``sweep`` and ``calibrate`` to ``app``; ``resolve_model(name_or_file, batch_dir)`` gives the .onnx path."""

    @app.command("sweep")
    def sweep_cmd(
        batch: Path = typer.Argument(..., help="The batch directory (made with 'photoproof craft')."),
        model: Optional[str] = typer.Option(None, "--model", "-m", help="A zoo name (lite0, lite2) or an .onnx file; default: the batch's source model."),
        transforms: Optional[str] = typer.Option(None, "--transforms", "-t", help="Comma-separated: brightness, contrast, blur, noise, jpeg, perspective, tone (default: all seven), dotgain."),
        steps: int = typer.Option(6, "--steps", help="Strengths per transform, from the identity to the strongest."),
        seed: int = typer.Option(0, "--seed", help="Seeds the noise fields and the perspective tilt axes."),
    ) -> None:
        """Apply each artificial transform on its own, at increasing strength, to the digital clean and
        adversarial images; record the model's top-5 in BATCH/sweep.json (Kurakin et al. 2016, sec. 4)."""
        from capture.classify import OnnxClassifier
        from capture.sweep import check_transforms, digital_baseline_known, run_sweep, strengths_table

        names = check_transforms(transforms.split(",") if transforms else None)
        model_path = resolve_model(model or _default_model(batch), batch)
        clf = OnnxClassifier(model_path)
        console.print(f"model [bold]{clf.name}[/] ({model_path.name}, sha256 {clf.sha256[:12]}) on [bold]{clf.provider}[/]")
        table = Table(title="strengths", show_edge=False)
        for col in ("transform", "unit", "strengths"):
            table.add_column(col)
        for row in strengths_table(names, steps):
            table.add_row(*row)
        console.print(table)
        with console.status("sweeping..."):
            out = run_sweep(batch, model_path, names, steps=steps, seed=seed, classifier=clf)
        console.print(f"wrote [bold]{out}[/]; 'photoproof report {batch}' plots it")
        if not digital_baseline_known(batch, clf.name):
            console.print(f"[yellow]note:[/] neither batch.json nor a capture session holds {clf.name}'s predictions on the "
                          f"untransformed PNGs, which the report's destruction rate needs; sweep the source model, or capture "
                          f"with --model {model or clf.name} first", soft_wrap=True)

    @app.command("calibrate")
    def calibrate_cmd(
        batch: Path = typer.Argument(..., help="The batch directory."),
        session: str = typer.Option(..., "--session", "-s", help="The capture session (the name of captures/<session>.sqlite)."),
        out: Path = typer.Option(..., "--out", "-o", help="The profile to write, a .toml file."),
        base: str = typer.Option(DEFAULT_PRESET, "--base", help="Preset or .toml giving every key the strip cannot measure."),
        camera_gamma: Optional[float] = typer.Option(None, "--camera-gamma", help="The camera's output encoding (default: the base's, 2.2 = sRGB-like)."),
        jpeg_quality: Optional[int] = typer.Option(None, "--jpeg-quality", help="The camera's JPEG quality, if known; the noise is fitted through it (default: the middle of the base's range)."),
    ) -> None:
        """Fit a channel profile (tone curve, colours, blur, noise) to the calibration strip seen in a capture."""
        from capture.calibrate import calibrate

        res = calibrate(batch, session, out, base=base, camera_gamma=camera_gamma, jpeg_quality=jpeg_quality)
        f, p = res.fit, res.profile
        table = Table(title=f"estimated from session {res.session} ({f.n_groups} strip views in {f.n_frames} frames)", show_edge=False)
        table.add_column("key")
        table.add_column("value", justify="right")
        rows = [
            ("printer.tone_gamma", f"{p.printer.tone_gamma:.3f}"), ("printer.dot_gain", f"{p.printer.dot_gain:.3f}"),
            ("printer.paper_white", ", ".join(f"{v:.3f}" for v in p.printer.paper_white)),
            ("printer.ink_black", ", ".join(f"{v:.3f}" for v in p.printer.ink_black)),
            ("printer.gamut_compression", f"{p.printer.gamut_compression:.3f}"),
            ("scene.illuminance", "{:.3f} .. {:.3f}".format(*p.scene.illuminance)),
            ("camera.white_balance_error", "±{:.3f}".format(p.camera.white_balance_error[1])),
            ("camera.defocus_sigma_px", "{:.2f} .. {:.2f}".format(*p.camera.defocus_sigma_px) + ("" if f.defocus else " (base)")),
            ("camera.shot_noise", f"{p.camera.shot_noise[0]:.3g}" + ("" if f.shot_noise is not None else " (base)")),
            ("camera.read_noise", f"{p.camera.read_noise[0]:.3g}" + ("" if f.read_noise is not None else " (base)")),
            ("camera.width x height", f"{p.camera.width} x {p.camera.height}"),
        ]
        for k, v in rows:
            table.add_row(k, v)
        console.print(table)
        console.print(f"wrote [bold]{res.path}[/]; use it with 'photoproof capture BATCH --simulate --profile {res.path}'", soft_wrap=True)

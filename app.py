"""Photoproof command line: ``photoproof ...`` or ``python app.py ...``.

This module only assembles the stages' sub-commands (each package owns its own
``cli.py`` with a ``register(app)`` function) and turns bad input into one-line
errors. Torch is imported only by the commands that craft or export, so a
capture station without torch can still run ``capture``, ``print`` and ``report``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.markup import escape
from typer import Abort

try:  # recent typer vendors click as typer._click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException  # type: ignore[no-redef]  # the same class, where click is not vendored

from console.options import deprecated_option, renamed
from console.terminal import console, err_console, help_markup
from contracts import signals
from contracts.batchdir import SHEETS_PDF
from contracts.errors import UserError
from craft.onnxmodel import resolve_onnx_model

app = typer.Typer(
    name="photoproof",
    help="Physical-world robustness tests: craft adversarial images, print and photograph them, report what survived.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=help_markup(),
)


def scene_summary(dbs: list[Path]) -> object:
    """The with/without-patch figures of ``capture --scene`` sessions (analysis.scene), for the console."""
    from analysis.scene import scene_figures, scene_table

    return scene_table(scene_figures(dbs))


def face_sweep_notes(batch_dir: Path) -> list[str]:
    """The stability baseline's verdict lines of a face batch's sweeps (analysis.faces_sweep), for the console."""
    from analysis.faces_sweep import face_sweep_notes as lines
    from analysis.faces_sweep import load_face_sweeps
    from contracts.manifest import load_batch

    batch = load_batch(batch_dir)
    return lines(batch, load_face_sweeps(batch_dir, batch)[0])


def _register_all() -> None:
    from analysis import cli as analysis_cli
    from capture import cli as capture_cli
    from channel import cli as channel_cli
    from craft import cli as craft_cli
    from printouts import cli as printouts_cli
    from sweep import cli as sweep_cli

    craft_cli.register(app)
    printouts_cli.register(app)
    capture_cli.register(app, resolve_model=resolve_onnx_model, scene_summary=scene_summary)
    sweep_cli.register(app, resolve_model=resolve_onnx_model, face_notes=face_sweep_notes)
    channel_cli.register(app)
    analysis_cli.register(app)
    app.command("demo")(demo)


def demo(
    out: Path = typer.Option(Path("demo-batch"), "--out", "-o", help="Batch directory for the demo."),
    limit: int = typer.Option(8, "--limit", help="How many sample photos."),
    eps: str = typer.Option("16", "--eps", help="FGSM ε values (0-255), comma-separated."),
    frames: int = typer.Option(12, "--frames", help="Simulated camera frames (stills, with the default profile)."),
    profile: str = typer.Option(
        "careful-lab",
        "--profile",
        help="Channel profile of the simulated camera. careful-lab (12 MP stills, the sheet filling the frame) keeps "
        "clean accuracy closest to digital, so the demo's survival figures measure the attack rather than the "
        "camera.",
    ),
    seed: int = typer.Option(0, "--seed"),
    model: str = typer.Option("lite2", "--model", "-m", help="Target model (zoo name or .onnx)."),
    target: str | None = deprecated_option("--target"),
) -> None:
    """Run the whole pipeline on the sample photos and the simulated camera, ending with a report."""
    from analysis.cli import show
    from analysis.report import make_report
    from capture.session import run_capture
    from channel.simulate import SimulatedCamera
    from console.progress import make_progress, rich_progress
    from contracts.profile import load_profile
    from craft.config import CraftConfig
    from craft.job import craft_batch
    from craft.options import from_cli
    from printouts.sheets import print_batch

    target = renamed(model, target, "--target", "--model")
    prof = load_profile(profile)
    cfg = from_cli(CraftConfig, {"images": "samples", "limit": limit, "attacks": "fgsm", "eps": eps, "seed": seed})
    console.rule("1/4 craft: FGSM on lite0")
    with make_progress() as progress:
        batch = craft_batch(out, cfg, progress=rich_progress(progress))
    console.print(f"{len(batch.items)} items in {escape(str(out))}")
    console.rule("2/4 print: sheets.pdf")
    # Laid out for the simulated camera and the target model, so that its tiles pass the size gate.
    layout = print_batch(out, camera=(prof.camera.width, prof.camera.height), model=target)
    console.print(
        f"{len(layout.sheets)} sheet(s) of {layout.tile_mm:g} mm tiles on {layout.paper} in "
        f"{escape(str(out / SHEETS_PDF))}"
    )
    console.rule(f"3/4 capture: simulated camera ({escape(profile)}) -> {escape(target)} in onnxruntime")
    onnx = resolve_onnx_model(target, out)
    cam = SimulatedCamera.from_batch(out, profile=prof, seed=seed, n_frames=frames)
    db = run_capture(out, onnx, cam, frames=frames, headless=True, session_id=f"demo-{prof.name}")
    console.print(f"recorded {escape(str(db))}")
    console.rule("4/4 report")
    result = make_report(out)
    show(result)  # ends with the channel check and the key figures (it names the report's path first)
    check = result.checks.get(f"demo-{prof.name}")
    if check is not None and check.judged is not None and check.verdict == "inconclusive":
        console.print(
            f"demo done: {len({it.photo for it in batch.items})} sample photos are too few for the channel check to "
            f"bound the camera's loss (about {check.judged.more_photos} more photos needed), which is the demo's size, "
            "not a fault. With your own: photoproof craft --out runs/mine --images ~/photos --limit 40, then print, "
            "capture and report (README: 'Pointing a real camera or phone at a printed sheet')."
        )


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``photoproof`` console script."""
    signals.install()  # SIGTERM as well as SIGINT unwinds cleanly; exit 128 + its number
    try:
        rv = app(args=argv, prog_name="photoproof", standalone_mode=False)
    except UserError as e:
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
        return 2
    except (Abort, KeyboardInterrupt):
        err_console.print(_stopped_line())
        return signals.exit_status() or 130
    except ClickException as e:
        e.show()
        return e.exit_code
    rv = rv if isinstance(rv, int) else 0
    if rv == 130 or signals.exit_status():  # typer turns Ctrl-C into Exit(130); a capture stops cleanly on a signal
        err_console.print(_stopped_line())
        return signals.exit_status() or 130
    return rv


def _stopped_line() -> str:
    name = signals.received()
    what = f"stopped by {name}" if name else "interrupted"
    return f"{what}: finished work is saved; re-run the same command to resume"


if __name__ == "__main__":
    sys.exit(main())

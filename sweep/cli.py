"""``photoproof sweep``.

::

    photoproof sweep BATCH --model lite0 --transforms blur,jpeg --levels 6 --seed 0
    photoproof sweep FACES --model centerface --transforms blur,jpeg,resolution --levels 4   # a face batch
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from console.options import ModelFlags, deprecated_option, model_options, renamed
from console.terminal import console
from contracts.errors import UserError

log = logging.getLogger(__name__)


def _default_model(batch: Path) -> str:
    """The batch's first source model: batch.json holds its digital top-5, which the report's destruction rate needs."""
    from contracts.batchdir import MANIFEST
    from contracts.manifest import load_batch

    models = load_batch(batch).model("source")
    if not models:
        raise UserError(f"{batch / MANIFEST}: names no source model; give --model NAME or FILE.onnx")
    return models[0].name


def _clean_table(out: Path, batch: Path, input_size: int) -> None:
    """Where the model stops recognising the clean images: clean top-1 per tile size and viewing angle."""
    from contracts.intervals import wilson
    from sweep.run import clean_accuracy

    rows = clean_accuracy(out, batch)
    if not rows:
        return
    table = Table(title="clean top-1 as the camera resolves the tile", show_edge=False)
    for col in ("transform", "strength", "tile px", "clean top-1", "95 % interval", "n"):
        table.add_column(col, justify="right")
    for name, strength, k, n in rows:
        lo, hi = wilson(k, n) or (0.0, 1.0)
        px = f"{strength * input_size:.0f}" if name == "resolution" else f"{input_size}"
        table.add_row(name, f"{strength:g}", px, f"{100 * k / n:.0f}%", f"{100 * lo:.0f}-{100 * hi:.0f}%", str(n))
    console.print(table)


def _is_face_batch(batch: Path) -> bool:
    from contracts.manifest import is_face_batch, load_batch

    return is_face_batch(load_batch(batch))


def _refuse_detector(batch: Path, model_path: Path) -> None:
    """A face detector on a classifier batch measures nothing: one line."""
    from capture.facetarget import is_detector_file

    if is_detector_file(model_path):
        raise UserError(f"--model {model_path.name}: a face detector; {batch} is a classifier batch: give a classifier")


def _face_sweep(
    batch: Path,
    model: str | None,
    flags: ModelFlags,
    names: list[str],
    levels: int,
    seed: int,
    resolve_model: Callable[[str, Path | None], Path],
    face_notes: Callable[[Path], list[str]] | None,
) -> None:
    """``photoproof sweep`` on a face batch (``craft --source mtcnn``): a face detector target (sweep.faces)."""
    from contracts.facesweep import read_face_sweep
    from sweep.faces import run_face_sweep

    if model is None:
        raise UserError(
            f"--model: {batch} is a face batch; sweep it with a face detector target: --model centerface, yunet or "
            "FILE.onnx (its source mtcnn is the white-box torch model)"
        )
    from contracts.detection import DETECTORS

    if Path(model).suffix.lower() != ".onnx" and not Path(model).exists() and model not in DETECTORS:
        raise UserError(
            f"--model {model}: not a face detector; {batch} is a face batch: give centerface, yunet or FILE.onnx"
        )
    if flags.overrides or flags.labels is not None or flags.label_map is not None:
        raise UserError(
            "--labels, --label-map and the preprocessing flags describe classifiers; a face detector brings its own "
            "spec (docs/detectors.md)"
        )
    model_path = resolve_model(model, batch)
    console.print(f"face sweep of [bold]{escape(model_path.name)}[/] on {len(names)} transform(s), {levels} levels")
    out = run_face_sweep(batch, model_path, names, steps=levels, seed=seed)
    console.print(f"wrote [bold]{escape(str(out))}[/]; 'photoproof report {escape(str(batch))}' tables it")
    swept = read_face_sweep(out).target
    for line in face_notes(batch) if face_notes is not None else []:
        if line.startswith(f"stability baseline, {swept} "):  # this target's lines (analysis.faces_sweep's wording)
            console.print(escape(line), soft_wrap=True)


def register(
    app: typer.Typer,
    resolve_model: Callable[[str, Path | None], Path],
    face_notes: Callable[[Path], list[str]] | None = None,
) -> None:
    """Add ``sweep`` to ``app``; ``resolve_model(name_or_file, batch_dir)`` gives the .onnx path; ``face_notes(batch)``
    the face sweep's stability lines (from analysis, which this room does not import)."""

    @app.command("sweep")
    @model_options(label_map=True)
    def sweep_cmd(
        batch: Path = typer.Argument(..., help="The batch directory (made with 'photoproof craft')."),
        model: str | None = typer.Option(
            None, "--model", "-m", help="A zoo name (lite0, lite2) or an .onnx file; default: the batch's source model."
        ),
        transforms: str | None = typer.Option(
            None,
            "--transforms",
            "-t",
            help="Comma-separated: brightness, contrast, blur, noise, jpeg, perspective, tone, resolution, angle "
            "(default: these nine), dotgain.",
        ),
        levels: int = typer.Option(6, "--levels", help="Strengths per transform, from the identity to the strongest."),
        seed: int = typer.Option(0, "--seed", help="Seeds the noise fields and the perspective tilt axes."),
        steps: int | None = deprecated_option("--steps"),
        *,
        flags: ModelFlags,
    ) -> None:
        """Apply each artificial transform on its own, at increasing strength, to the digital clean and
        adversarial images; record the model's top-5 in BATCH/sweep.json (Kurakin et al. 2016, sec. 4).
        On a face batch, give a face detector --model (centerface, yunet, FILE.onnx): the faces it finds go
        into BATCH/sweep-faces-NAME.json, with the stability baseline (±ε noise, resampling)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from capture.classify import OnnxClassifier
        from contracts.labels import read_label_file, read_label_map
        from sweep.run import digital_baseline_known, run_sweep, strengths_table
        from sweep.transforms import check_transforms

        levels = renamed(levels, steps, "--steps", "--levels")
        names = check_transforms(transforms.split(",") if transforms else None)
        if _is_face_batch(batch):
            _face_sweep(batch, model, flags, names, levels, seed, resolve_model, face_notes)
            return
        model_path = resolve_model(model or _default_model(batch), batch)
        _refuse_detector(batch, model_path)
        lmap = read_label_map(flags.label_map) if flags.label_map is not None else None
        labels = read_label_file(flags.labels) if flags.labels else None
        clf = OnnxClassifier(model_path, class_names=labels, overrides=flags.overrides)
        console.print(
            f"model [bold]{escape(clf.name)}[/] ({escape(model_path.name)}, sha256 {clf.sha256[:12]}) on "
            f"[bold]{clf.provider}[/]"
        )
        table = Table(title="strengths", show_edge=False)
        for col in ("transform", "unit", "strengths"):
            table.add_column(col)
        for row in strengths_table(names, levels):
            table.add_row(*row)
        console.print(table)
        with Progress(
            TextColumn("sweep {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("", total=len(names))

            def progress(name: str, done: int, total: int) -> None:
                bar.update(task, description=name, completed=done)

            out = run_sweep(
                batch, model_path, names, steps=levels, seed=seed, classifier=clf, progress=progress, label_map=lmap
            )
        console.print(f"wrote [bold]{escape(str(out))}[/]; 'photoproof report {escape(str(batch))}' plots it")
        _clean_table(out, batch, clf.spec.input_size)
        if not digital_baseline_known(batch, clf.name):
            console.print(
                f"[yellow]note:[/] neither batch.json nor a capture session holds {escape(clf.name)}'s predictions on "
                "the untransformed PNGs, which the report's destruction rate needs; sweep the source model, or "
                f"capture with --model {escape(model or clf.name)} first",
                soft_wrap=True,
            )

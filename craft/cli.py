"""``photoproof craft`` and ``photoproof models ...``. Torch is imported inside the commands."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from console.options import PANEL, UNSAFE_HELP, ModelFlags, model_options
from console.progress import make_progress, rich_progress
from console.terminal import console, help_markup
from contracts.errors import UserError
from craft.config import CraftConfig
from craft.options import cli_parameters, from_cli

models_app = typer.Typer(
    help="The model zoo: list models, export one (or your own) to ONNX.",
    no_args_is_help=True,
    rich_markup_mode=help_markup(),
)


def craft_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Batch directory to create or resume."), **options: Any
) -> None:
    """Craft adversarial images into a batch directory (resumes if it exists)."""
    from craft.job import craft_batch

    cfg = from_cli(CraftConfig, options)  # parsed and validated here, before the progress display starts
    from craft.sources import is_face_source

    if is_face_source(cfg.source[0]):
        _craft_faces(out, cfg)
        return
    from craft.distributed import Dist

    if not Dist.from_env().leader:  # under torchrun, rank 0 alone shows progress and the summary
        craft_batch(out, cfg)
        return
    with make_progress() as progress:
        batch = craft_batch(out, cfg, progress=rich_progress(progress))
    src = batch.models[0].name
    if batch.config.get("target") is None:
        fooled = sum(1 for it in batch.items if int(it.adv.top5[src][0][0]) != it.label.index)
        what = f"fool {src} at top-1"
    else:
        fooled = sum(1 for it in batch.items if int(it.adv.top5[src][0][0]) == it.target)
        what = f"reach their target on {src} at top-1"
    console.print(
        f"batch [bold]{batch.batch_id}[/]: {len(batch.items)} items in {escape(str(out))} ({fooled} {what} on the "
        "saved PNG)"
    )
    _report_unfooled(batch, src)


def _craft_faces(out: Path, cfg: CraftConfig) -> None:
    """A face-detector source (``--source mtcnn`` or ``module:factory``): the sticker and the vanishing attacks
    (:func:`craft.detectors.run.craft_face_batch`, docs/detectors.md), then what they hide on the saved PNGs."""
    from craft.attacks import UNIVERSAL
    from craft.detectors.run import craft_face_batch, sticker_settings

    with make_progress() as progress:
        batch = craft_face_batch(out, cfg, rich_progress(progress))
    name = cfg.source[0]
    labels = [s.label for s in cfg.specs() if s.name not in UNIVERSAL]
    for label in (s.label for s in cfg.specs() if s.name in UNIVERSAL):
        place = sticker_settings(cfg).place
        items = [
            it for it in batch.items if it.attack == label and it.params.get("face_patch", {}).get("place") == place
        ]
        hidden = sum(1 for it in items if not it.adv.boxes.get(name))
        console.print(
            f"batch [bold]{batch.batch_id}[/]: the sticker ({label}) on {len(items)} faces in {escape(str(out))}; "
            f"{escape(name)} finds none in {hidden} of the stickered PNGs; print it with 'photoproof print {out} "
            "--patch-mm 50'"
        )
    vanish = [it for it in batch.items if it.attack in labels]
    if not vanish:
        return
    with_faces = [it for it in vanish if it.truth is not None and it.truth.boxes]
    hidden = sum(1 for it in with_faces if not it.adv.boxes.get(name))
    if cfg.truth is None:
        what = f"{escape(name)} finds faces in {len(with_faces)} clean PNGs and none in"
    else:
        labelled = f"{len(with_faces)} clean PNGs hold faces labelled in {escape(cfg.truth.file)}"
        what = f"{labelled}; {escape(name)} finds none in"
    console.print(
        f"batch [bold]{batch.batch_id}[/]: {len(vanish)} items in {escape(str(out))}; {what} {hidden} of their "
        "adversarial PNGs"
    )


EOT_STEPS = 10  # the steps after which more no longer brought EOT's PNGs closer to fooling digitally (_unfooled_advice)


def _report_unfooled(batch: Any, src: str) -> None:
    """Per attack, the items whose saved adversarial PNG does not fool the source model (top-1).

    Such an item measures nothing physical: its photographed figures cannot be survival. EOT
    (which optimises the expectation over the channel, not the digital image) is the attack
    where this happens most, so it is named item by item.
    """
    target = batch.config.get("target")
    groups: dict[str, list[Any]] = {}
    for it in batch.items:
        groups.setdefault(f"{it.attack} e{it.eps:g}", []).append(it)
    for key, items in groups.items():
        top1 = {it.id: int(it.adv.top5[src][0][0]) for it in items}
        missed = [it for it in items if (top1[it.id] == it.label.index if target is None else top1[it.id] != it.target)]
        if not missed:
            continue
        names = ", ".join(it.id for it in missed[:6]) + (" ..." if len(missed) > 6 else "")
        console.print(
            f"[yellow]{escape(key)}: {len(missed)} of {len(items)} adversarial PNGs "
            f"{'do not fool' if target is None else 'do not reach their target on'} {escape(src)} "
            f"digitally[/] ({escape(names)}); "
            "their photographed figures are not survival (the report counts them as not fooling); "
            + _unfooled_advice(items)
        )


def _unfooled_advice(items: list[Any]) -> str:
    """What to do about adversarial PNGs that do not fool the source: EOT with few steps needs more; else a larger ε.

    EOT spreads its steps over the channel's views (validation half, ε 2, lite0 through a fitted profile: 14 of 25
    PNGs fool lite0 digitally at Kurakin's 3 steps, 20 of 25 at 10 and at 20), and an EOT PNG that misses digitally
    can still fool once photographed (ε 3, 51 photos: each of the 4 photos where EOT beat BIM end to end on the real
    camera was one; docs/physical-fidelity.md)."""
    if any(it.attack.startswith("patch") for it in items):
        return "craft into a new --out with a larger --patch-area or more --steps (docs/patch.md)"
    steps = max((int(it.params.get("steps", 0)) for it in items), default=0)
    eot = any("eot" in it.params for it in items)
    if eot and 0 < steps < EOT_STEPS:
        return (
            "EOT needs more steps than the digital attack: craft into a new --out with "
            f"--steps {EOT_STEPS} (these used {steps}) or a larger --eps"
        )
    if eot:
        return (
            "EOT optimises through the channel, so these may still fool the model once photographed (the report's "
            "adversarial accuracy photographed); for survival figures craft into a new --out with a larger --eps"
        )
    return "craft into a new --out with a larger --eps"


@models_app.command("list")
def models_list() -> None:
    """Show the models of the zoo and their preprocessing."""
    from craft.zoo import ZOO

    t = Table("name", "architecture", "input", "resize", "mean / std (0-255)", "channels", "weights package")
    for e in ZOO.values():
        s = e.spec
        t.add_row(
            e.name,
            e.arch,
            f"{s.input_size}x{s.input_size}",
            s.resize,
            f"{s.mean[0]:g} / {s.std[0]:g}",
            f"{s.channel_order} {s.layout}",
            e.weights_package,
        )
    console.print(t)
    from contracts.detection import DETECTORS

    d = Table("face detector", "runs in", "score", "NMS", "channels")
    d.add_column("weights package", overflow="fold")
    for ds in DETECTORS.values():
        d.add_row(ds.name, ds.runtime, f"{ds.score:g}", f"{ds.nms_iou:g}", ds.channel_order, ds.weights_package)
    console.print(d)


@models_app.command("export")
@model_options(labels_help="Class names, one per line.")
def models_export(
    name: str = typer.Argument(
        ..., help="A zoo name (lite2), FILE.pt2, TorchScript FILE.pt, FILE.onnx or package.module:factory."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the .onnx file."),
    *,
    flags: ModelFlags,
    unsafe_native_code: bool = typer.Option(False, "--unsafe-native-code", help=UNSAFE_HELP, rich_help_panel=PANEL),
) -> None:
    """Export a model to ONNX with its preprocessing spec and class names in the metadata.

    A target face detector (centerface, yunet) is written runnable by onnxruntime, with its spec in the metadata.
    """
    from contracts.detection import DETECTORS

    if name in DETECTORS:
        _export_detector(name, out)
        return
    from craft.export import export_source
    from craft.sources import ModelOptions, load_source, source_kind

    source_kind(name)
    if out.suffix != ".onnx":
        raise UserError(f"--out {out}: expected a file name ending in .onnx")
    opts = ModelOptions(flags.overrides, str(flags.labels) if flags.labels else None, unsafe_native_code)
    stages = ["loading the model", "tracing the model", "checking the graph", "writing"]
    with Progress(
        TextColumn("export {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(stages[0], total=len(stages))
        sm = load_source(name, opts)

        def stage(what: str) -> None:
            progress.update(task, description=what, completed=stages.index(what) if what in stages else None)

        export_source(sm, out, stage)
        progress.update(task, description="done", completed=len(stages))
    s = sm.spec
    console.print(
        f"wrote {escape(str(out))}: {escape(sm.name)} ({sm.kind}), {len(sm.classes)} classes, input {s.input_size} "
        f"{s.layout}, mean {', '.join(f'{v:g}' for v in s.mean)}, std {', '.join(f'{v:g}' for v in s.std)}",
        soft_wrap=True,
    )
    for line in hash_lines(sm.kind, sm.ref, sm.sha256, out):
        console.print(escape(line), soft_wrap=True)


def hash_lines(kind: str, ref: str, weights_sha256: str, out: Path) -> list[str]:
    """What each printed sha256 hashes, so that anyone checking with ``sha256sum`` compares like with like:
    the written .onnx file, and the source's weights (the file itself, or a hash over a module's state dict)."""
    from contracts.paths import sha256_file

    if kind == "zoo":
        from craft.zoo import get_entry, weights_path

        what = f"of the weights file {weights_path(get_entry(ref))}"
    elif kind in ("onnx", "pt2", "torchscript"):
        what = f"of the file {ref}"
    else:
        what = "over the module's state dict (names, shapes, dtypes and bytes, in key order; not a file's hash)"
    return [
        f"sha256 {sha256_file(out)} of {out} (what 'sha256sum {out.name}' prints; capture records it)",
        f"source weights sha256 {weights_sha256} {what} (recorded in batch.json when crafting)",
    ]


def _export_detector(name: str, out: Path) -> None:
    from contracts.detection import get_detector
    from craft.detectors.onnxprep import prepare_onnx

    spec = get_detector(name)
    if spec.runtime != "onnx":
        raise UserError(f"{name}: a torch detector (a white-box source); export centerface or yunet")
    if out.suffix != ".onnx":
        raise UserError(f"--out {out}: expected a file name ending in .onnx")
    prepare_onnx(spec, out)
    console.print(f"wrote {escape(str(out))}: detector {name} ({spec.decoder}), from {spec.weights_package}")


def _craft_signature() -> inspect.Signature:
    """``craft_cmd``'s parameters as typer reads them: ``--out`` and one option per field of :class:`CraftConfig`."""
    out = inspect.signature(craft_cmd).parameters["out"]
    return inspect.Signature(
        [out.replace(kind=inspect.Parameter.KEYWORD_ONLY), *cli_parameters(CraftConfig)], return_annotation=None
    )


def register(app: typer.Typer) -> None:
    craft_cmd.__dict__["__signature__"] = _craft_signature()  # typer reads a function's __signature__
    app.command("craft")(craft_cmd)
    app.add_typer(models_app, name="models")

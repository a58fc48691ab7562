"""``photoproof craft`` and ``photoproof models ...``. Torch is imported inside the commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from contracts.console import console
from contracts.errors import UserError
from contracts.cliopts import (
    PANEL as MODEL, model_flags, opt_channel_order, opt_crop, opt_input_size, opt_mean, opt_resize, opt_scale, opt_std,
)
from contracts.units import parse_eps

models_app = typer.Typer(help="The model zoo: list models, export one (or your own) to ONNX.", no_args_is_help=True)


def parse_list(text: str, option: str, cast: Callable[[str], object] = str) -> list:  # type: ignore[type-arg]
    """Split ``a,b,c``; a bad element is a one-line error naming ``option``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UserError(f"{option}: empty list")
    try:
        return [cast(p) for p in parts]
    except ValueError:
        raise UserError(f"{option} {text!r}: expected a comma-separated list of numbers") from None


def rich_progress(progress: Progress) -> Callable[[str, int], Callable[[int], None]]:
    """Adapt a rich Progress to the job's ``progress(label, total) -> tick(n)`` callback, with the rate per second."""

    def start(label: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(label, total=total, rate="")
        t0 = time.monotonic()
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            rate = done[0] / max(time.monotonic() - t0, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:.1f}/s")

        return tick

    return start


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
    )


def craft_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Batch directory to create or resume."),
    images: str = typer.Option("samples", "--images", help="'samples' (photos shipped with installed packages) or a folder."),
    attack: str = typer.Option(
        "fgsm", "--attack",
        help="Attack(s), comma-separated: fgsm, bim, ll, pgd, mifgsm, difgsm, eot (= bim+eot); add +di and/or +eot, e.g. mifgsm+di+eot.",
    ),
    eps: str = typer.Option("16", "--eps", help="ε values, comma-separated: 16 (0-255 pixel units), 8/255 or 0.0314 ([0, 1] units: any value below 1)."),
    source: str = typer.Option(
        "lite0", "--source",
        help="Source model(s), comma-separated; several make an ensemble: a zoo name, FILE.onnx, FILE.pt2, TorchScript FILE.pt, or package.module:factory (runs your code).",
    ),
    ensemble: str = typer.Option("logits", "--ensemble", help="How an ensemble combines: average the 'logits' or the 'loss'."),
    target: Optional[str] = typer.Option(None, "--target", help="Targeted: a class (index, WordNet id or name), 'll' (least likely) or 'random'."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Iterations of the iterative attacks (default: each attack's own)."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Step size in 0-255 pixel units (default: each attack's own)."),
    momentum: Optional[float] = typer.Option(None, "--momentum", help="mifgsm's decay μ (default 1.0)."),
    random_start: Optional[bool] = typer.Option(None, "--random-start/--no-random-start", help="pgd's random start (default on)."),
    di: bool = typer.Option(False, "--di", help="Add input diversity (Xie et al. 2019) to every attack."),
    di_prob: Optional[float] = typer.Option(None, "--di-prob", help="Probability of the DI transform per step (default 0.5)."),
    eot: bool = typer.Option(False, "--eot", help="Average gradients over the print-and-photograph channel (EOT) for every attack."),
    eot_samples: int = typer.Option(8, "--eot-samples", help="Channel samples per image and step for EOT."),
    profile: str = typer.Option("office-laser-webcam", "--profile", help="Channel profile for EOT: a preset name or a .toml file."),
    repair_steps: int = typer.Option(10, "--repair-steps", help="Most lattice repair steps when rounding to 8 bits undoes an attack (0: off)."),
    amp: bool = typer.Option(False, "--amp", help="bf16 autocast for gradients on CUDA (final checks stay fp32)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N photos."),
    seed: int = typer.Option(0, "--seed", help="Seed recorded with every item."),
    batch_size: int = typer.Option(16, "--batch-size", help="Images per forward/backward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N]."),
    input_size: Optional[int] = opt_input_size(),
    mean: Optional[str] = opt_mean(),
    std: Optional[str] = opt_std(),
    scale: Optional[float] = opt_scale(),
    resize: Optional[str] = opt_resize(),
    crop: Optional[str] = opt_crop(),
    channel_order: Optional[str] = opt_channel_order(),
    labels: Optional[Path] = typer.Option(None, "--labels", help="The source's class names, one per line (default: its metadata, or ImageNet-1k).", rich_help_panel=MODEL),
) -> None:
    """Craft adversarial images into a batch directory (resumes if it exists)."""
    from craft.job import CraftConfig, craft_batch

    cfg = CraftConfig(
        images=images, limit=limit, source=parse_list(source, "--source"), attacks=parse_list(attack, "--attack"),
        eps=parse_eps(eps), seed=seed, target=target, batch_size=batch_size, device=device,
        ensemble=ensemble, steps=steps, alpha=alpha, momentum=momentum, random_start=random_start, di=di,
        di_prob=di_prob, eot=eot, eot_samples=eot_samples, profile=profile, repair_steps=repair_steps, amp=amp,
        labels=str(labels) if labels is not None else None,
        model_spec=model_flags(input_size, mean, std, scale, resize, crop, channel_order),
    )
    cfg.validate()  # bad options fail before the progress display starts
    with make_progress() as progress:
        batch = craft_batch(out, cfg, progress=rich_progress(progress))
    src = batch.models[0].name
    if batch.config.get("target") is None:
        fooled = sum(1 for it in batch.items if int(it.adv.top5[src][0][0]) != it.label.index)
        what = f"fool {src} at top-1"
    else:
        fooled = sum(1 for it in batch.items if int(it.adv.top5[src][0][0]) == it.target)
        what = f"reach their target on {src} at top-1"
    console.print(f"batch [bold]{batch.batch_id}[/]: {len(batch.items)} items in {out} ({fooled} {what} on the saved PNG)")


@models_app.command("list")
def models_list() -> None:
    """Show the models of the zoo and their preprocessing."""
    from craft.zoo import ZOO

    t = Table("name", "architecture", "input", "resize", "mean / std (0-255)", "channels", "weights package")
    for e in ZOO.values():
        s = e.spec
        t.add_row(e.name, e.arch, f"{s.input_size}x{s.input_size}", s.resize, f"{s.mean[0]:g} / {s.std[0]:g}", f"{s.channel_order} {s.layout}", e.weights_package)
    console.print(t)


@models_app.command("export")
def models_export(
    name: str = typer.Argument(..., help="A zoo name (lite2), FILE.pt2, TorchScript FILE.pt, FILE.onnx or package.module:factory."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the .onnx file."),
    input_size: Optional[int] = opt_input_size(),
    mean: Optional[str] = opt_mean(),
    std: Optional[str] = opt_std(),
    scale: Optional[float] = opt_scale(),
    resize: Optional[str] = opt_resize(),
    crop: Optional[str] = opt_crop(),
    channel_order: Optional[str] = opt_channel_order(),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Class names, one per line.", rich_help_panel=MODEL),
) -> None:
    """Export a model to ONNX with its preprocessing spec and class names in the metadata."""
    from craft.export import export_source
    from craft.sources import ModelOptions, load_source, source_kind

    source_kind(name)
    if out.suffix != ".onnx":
        raise UserError(f"--out {out}: expected a file name ending in .onnx")
    opts = ModelOptions(model_flags(input_size, mean, std, scale, resize, crop, channel_order), str(labels) if labels else None)
    stages = ["loading the model", "tracing the model", "checking the graph", "writing"]
    with Progress(TextColumn("export {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(stages[0], total=len(stages))
        sm = load_source(name, opts)

        def stage(what: str) -> None:
            progress.update(task, description=what, completed=stages.index(what) if what in stages else None)

        export_source(sm, out, stage)
        progress.update(task, description="done", completed=len(stages))
    s = sm.spec
    console.print(
        f"wrote {out}: {sm.name} ({sm.kind}), {len(sm.classes)} classes, input {s.input_size} {s.layout}, "
        f"mean {', '.join(f'{v:g}' for v in s.mean)}, std {', '.join(f'{v:g}' for v in s.std)}, sha256 {sm.sha256[:12]}"
    )


def register(app: typer.Typer) -> None:
    app.command("craft")(craft_cmd)
    app.add_typer(models_app, name="models")

"""``photoproof craft`` and ``photoproof models ...``. Torch is imported inside the commands."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts.console import console
from contracts.errors import UserError

models_app = typer.Typer(help="The model zoo: list models, export one to ONNX.", no_args_is_help=True)


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
    """Adapt a rich Progress to the job's ``progress(label, total) -> tick(n)`` callback, with images/s."""

    def start(label: str, total: int) -> Callable[[int], None]:
        task = progress.add_task(label, total=total, rate="")
        t0 = time.monotonic()
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            rate = done[0] / max(time.monotonic() - t0, 1e-9)
            progress.update(task, advance=n, rate=f"{rate:.1f} img/s")

        return tick

    return start


def make_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), console=console, transient=False,
    )


def craft_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Batch directory to create or resume."),
    images: str = typer.Option("samples", "--images", help="'samples' (photos shipped with installed packages) or a folder."),
    attack: str = typer.Option(
        "fgsm", "--attack",
        help="Attack(s), comma-separated: fgsm, bim, ll, pgd, mifgsm, difgsm, eot (= bim+eot); add +di and/or +eot, e.g. mifgsm+di+eot.",
    ),
    eps: str = typer.Option("16", "--eps", help="ε values in 0-255 pixel units, comma-separated."),
    source: str = typer.Option("lite0", "--source", help="Source model(s), comma-separated; several make an ensemble."),
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
) -> None:
    """Craft adversarial images into a batch directory (resumes if it exists)."""
    from craft.job import CraftConfig, craft_batch

    cfg = CraftConfig(
        images=images, limit=limit, source=parse_list(source, "--source"), attacks=parse_list(attack, "--attack"),
        eps=parse_list(eps, "--eps", float), seed=seed, target=target, batch_size=batch_size, device=device,
        ensemble=ensemble, steps=steps, alpha=alpha, momentum=momentum, random_start=random_start, di=di,
        di_prob=di_prob, eot=eot, eot_samples=eot_samples, profile=profile, repair_steps=repair_steps, amp=amp,
    )
    cfg.validate()  # bad options fail before the progress display starts
    with make_progress() as progress:
        batch = craft_batch(out, cfg, progress=rich_progress(progress))
    src = batch.config["source"][0]
    if batch.config.get("target") is None:
        fooled = sum(1 for it in batch.items if int(it.adv.top5[src][0][0]) != it.label.index)
        what = f"fool {src} at top-1"
    else:
        fooled = sum(1 for it in batch.items if int(it.adv.top5[src][0][0]) == it.target)
        what = f"reach their target on {src} at top-1"
    console.print(f"batch [bold]{batch.batch_id}[/]: {len(batch.items)} items in {out} ({fooled} {what} on the saved PNG)")
    _report_unfooled(batch, src)


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
        console.print(f"[yellow]{key}: {len(missed)} of {len(items)} adversarial PNGs do not fool {src} digitally[/] ({names}); "
                      "their photographed figures are not survival (the report counts them as not fooling)")


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
    name: str = typer.Argument(..., help="Zoo model name, e.g. lite2."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the .onnx file."),
) -> None:
    """Export a zoo model to ONNX with its preprocessing spec and class names in the metadata."""
    from craft.export import export_onnx
    from craft.zoo import get_entry

    get_entry(name)
    if out.suffix != ".onnx":
        raise UserError(f"--out {out}: expected a file name ending in .onnx")
    export_onnx(name, out)
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("craft")(craft_cmd)
    app.add_typer(models_app, name="models")

"""``photoproof print BATCH``: the printouts stage's sub-command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from console.options import DEFAULT_CAMERA, DEFAULT_TARGET, parse_frame_size, renamed
from console.terminal import console
from contracts.errors import UserError
from printouts.camera import camera_defaults
from printouts.geometry import LAYOUTS, PAPERS

_CAM = f"{DEFAULT_CAMERA[0]}x{DEFAULT_CAMERA[1]}"


def register(app: typer.Typer) -> None:
    """Add the ``print`` command to ``app``."""

    @app.command("print")
    def print_cmd(
        batch: Annotated[
            Path, typer.Argument(help="Batch directory written by 'photoproof craft'.", show_default=False)
        ],
        paper: Annotated[str, typer.Option("--paper", help=f"Paper size: {' or '.join(PAPERS)}.")] = "a4",
        tile_mm: Annotated[
            float | None,
            typer.Option(
                "--tile-mm",
                help="Printed width of every tile, in millimetres (instead of a layout for --frame-size and --model).",
            ),
        ] = None,
        layout: Annotated[
            str,
            typer.Option(
                "--layout",
                help=f"{' or '.join(LAYOUTS)}: clean and adversarial side by side, or adversarial tiles only.",
            ),
        ] = "pairs",
        cover: Annotated[
            bool,
            typer.Option(
                "--cover/--no-cover",
                help="Also put the cover page (batch facts, printing instructions) first in sheets.pdf; it is "
                "always written alone as cover.pdf.",
            ),
        ] = False,
        frame_size: Annotated[
            str | None,
            typer.Option(
                "--frame-size",
                help=f"Lay out for this camera frame, WIDTHxHEIGHT (default {_CAM}, what capture asks of a webcam); "
                "chooses the tile size and the paper's orientation.",
            ),
        ] = None,
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help=f"The target model the layout is for, a zoo name or an .onnx file (default {DEFAULT_TARGET}).",
            ),
        ] = None,
        patch_mm: Annotated[
            float | None,
            typer.Option(
                "--patch-mm", help="Also print each adversarial patch alone, this many mm wide, with its own markers."
            ),
        ] = None,
        # the old spelling of --frame-size, for one release
        camera: Annotated[str | None, typer.Option("--camera", hidden=True)] = None,
    ) -> None:
        """Lay the batch out on printable sheets: writes BATCH/sheets.pdf, BATCH/cover.pdf and BATCH/layout.json."""
        from contracts.batchdir import COVER_PDF, LAYOUT, SHEETS_PDF
        from printouts.sheets import print_batch

        frame_size = renamed(frame_size, camera, "--camera", "--frame-size")
        if tile_mm is not None and (frame_size is not None or model is not None):
            raise UserError(
                "--tile-mm fixes the tile size; --frame-size and --model choose it: give --tile-mm, or --frame-size "
                "and --model"
            )
        size = parse_frame_size(frame_size) if frame_size is not None else None
        frame, model, assumed = camera_defaults(tile_mm, size, model)
        if assumed:
            console.print(f"assumed {' and '.join(assumed)}: what capture uses when not told", markup=False)
        result = print_batch(
            batch,
            paper=paper,
            tile_mm=60.0 if tile_mm is None else tile_mm,
            layout=layout,
            cover=cover,
            camera=frame,
            model=model,
            patch_mm=patch_mm,
        )
        n_sheets = len(result.sheets)
        n_tiles = sum(len(s.tiles) for s in result.sheets)
        n_cards = len(result.extra.get("patch_cards", []))
        pages = n_sheets + (1 if cover else 0) + n_cards
        console.print(
            f"wrote {escape(str(batch / SHEETS_PDF))}: {pages} page(s), {n_sheets} sheet(s) with {n_tiles} tiles of "
            f"{result.tile_mm:g} mm on {result.paper}, markers {result.aruco_dictionary}"
        )
        if n_cards:
            console.print(
                f"{n_cards} patch card(s) of {patch_mm:g} mm on the last page(s): cut them out with their markers"
            )
        console.print(
            f"wrote {escape(str(batch / COVER_PDF))}: the batch's facts and how to print it (read it first; print "
            "it only if you want it with the sheets)"
        )
        console.print(f"wrote {escape(str(batch / LAYOUT))}")
        if "camera" in result.extra:
            from printouts.camera import CameraPlan

            console.print(f"{escape(CameraPlan(**result.extra['camera']).sentence())}; print on {result.paper}")
        console.print(
            "[bold]print at 100% / actual size[/] (no fit to page), plain white matte paper, printer colour "
            "enhancements off; check that each sheet's ruler measures 100 mm"
        )

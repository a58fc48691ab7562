"""One name per concept on the command line, and the old spellings kept for one release.

``--frame-size WxH`` is a camera frame's size (``print``, ``capture``); ``--camera N`` only a
webcam index (``capture``); ``--model`` the target model (``capture``, ``print``, ``sweep``,
``demo``); ``--target`` only the attack's target class (``craft``); ``--steps`` only an attack's
iterations (``craft``), the sweep's strengths being ``--levels``. The renamed spellings still work,
hidden from ``--help``, and warn on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from app import app
from testkit.batch import write_batch
from testkit.cli import assert_one_line_error, run_cli


def _visible_options() -> dict[str, dict[str, str]]:
    """command -> {flag: help} of every option ``--help`` shows (sub-groups as "models export")."""
    root = typer.main.get_command(app)
    out: dict[str, dict[str, str]] = {}

    def walk(cmd: object, name: str) -> None:
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{name} {sub_name}".strip())
        params = getattr(cmd, "params", [])
        if not getattr(cmd, "commands", None):
            out[name] = {
                flag: p.help or ""
                for p in params
                if not getattr(p, "hidden", False)
                for flag in p.opts
                if flag.startswith("--")
            }

    walk(root, "")
    return out


def test_each_flag_names_one_concept_across_the_commands() -> None:
    opts = _visible_options()
    assert "--frame-size" in opts["print"] and "--frame-size" in opts["capture"]
    assert [c for c, o in opts.items() if "--camera" in o] == ["capture"]  # a webcam index
    assert [c for c, o in opts.items() if "--target" in o] == ["craft"]  # a class
    assert [c for c, o in opts.items() if "--steps" in o] == ["craft"]  # an attack's iterations
    assert "--levels" in opts["sweep"] and "--model" in opts["demo"]
    for gone in ("--width", "--height"):
        assert gone not in opts["capture"]
    # the model flags are declared once: every command that feeds a model shows the same ones, same help
    spec = ("--input-size", "--mean", "--std", "--scale", "--resize", "--crop", "--channel-order")
    for cmd in ("craft", "capture", "sweep", "models export"):
        assert {f: opts[cmd][f] for f in spec} == {f: opts["capture"][f] for f in spec}, cmd


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("vocab") / "b"
    write_batch(d, n_items=2)
    return d


def test_print_frame_size_and_its_old_spelling_agree(batch: Path) -> None:
    new = run_cli("print", str(batch), "--frame-size", "1280x720", "--model", "lite2")
    assert new.returncode == 0, new.stderr
    assert "deprecated" not in new.stderr
    layout = json.loads((batch / "layout.json").read_text())
    old = run_cli("print", str(batch), "--camera", "1280x720", "--model", "lite2")
    assert old.returncode == 0, old.stderr
    assert "--camera is deprecated" in old.stderr and "use --frame-size" in old.stderr
    again = json.loads((batch / "layout.json").read_text())
    assert (again["tile_mm"], again["paper"], again["extra"]["camera"]) == (
        layout["tile_mm"],
        layout["paper"],
        layout["extra"]["camera"],
    )


def test_a_bad_frame_size_is_a_one_line_error_naming_the_flag(batch: Path) -> None:
    assert_one_line_error(run_cli("print", str(batch), "--frame-size", "1280by720", "--model", "lite2"), "--frame-size")
    r = run_cli("capture", str(batch), "--simulate", "--frame-size", "12x4", "--frames", "1", "--headless")
    assert_one_line_error(r, "--frame-size '12x4'")

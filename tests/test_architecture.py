"""The rooms and who may import whom (docs/architecture.md), checked on the source with ``ast``;
and the torch-free rooms imported in a fresh interpreter without loading torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("contracts", "console", "craft", "printouts", "channel", "capture", "sweep", "analysis", "testkit")

# room -> the other rooms it may import (app.py may import every room but testkit; photoproof.py, the Python
# API, every room but testkit and app, and no room's cli module).
ALLOWED: dict[str, set[str]] = {
    "contracts": set(),
    "console": {"contracts"},
    "channel": {"contracts", "console"},
    "printouts": {"contracts", "console"},
    "capture": {"contracts", "console", "channel"},  # channel: the simulated camera behind --simulate
    "sweep": {"contracts", "console", "channel", "capture"},  # capture: the classifier and the digital top-5
    "analysis": {"contracts", "console"},
    "craft": {"contracts", "console", "channel"},  # channel: the twin for EOT
    "testkit": {"contracts"},
    "app": {"contracts", "console", "craft", "printouts", "channel", "capture", "sweep", "analysis"},
    "photoproof": {"contracts", "console", "craft", "printouts", "channel", "capture", "sweep", "analysis"},
}
TORCH = {"torch", "kornia", "torchvision"}
TORCH_ALLOWED = ("craft.", "channel.twin", "testkit.toys", "photoproof.")  # may import torch (the API: lazily)
TORCH_FREE_ROOMS = ("contracts", "console", "printouts", "channel", "capture", "sweep", "analysis")


def _modules() -> list[tuple[str, str, Path]]:
    """(room, dotted module name, file) of every product module, app.py included."""
    out = [("app", "app", ROOT / "app.py"), ("photoproof", "photoproof", ROOT / "photoproof.py")]
    for room in ROOMS:
        for p in sorted((ROOT / room).rglob("*.py")):
            parts = p.relative_to(ROOT).with_suffix("").parts
            out.append((room, ".".join(parts[:-1] if parts[-1] == "__init__" else parts), p))
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every absolute import in a file, lazy ones inside functions included: (module, line)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]  # from channel import twin
    return found


MODULES = _modules()


def test_every_room_imports_only_the_rooms_it_may() -> None:
    bad = []
    for room, mod, path in MODULES:
        for name, line in _imports(path):
            top = name.split(".")[0]
            if top in (*ROOMS, "app", "photoproof") and top != room and top not in ALLOWED[room]:
                bad.append(
                    f"{path.relative_to(ROOT)}:{line}: {mod} imports {name} ({room} may import "
                    f"{sorted(ALLOWED[room]) or 'no other room'})"
                )
    assert not bad, "\n".join(bad)


def test_the_python_api_imports_no_command_line_module() -> None:
    """photoproof.py is a library: nothing of app.py or of a room's ``cli`` (typer commands)."""
    bad = [
        f"photoproof.py:{line}: imports {name}"
        for room, mod, path in MODULES
        if room == "photoproof"
        for name, line in _imports(path)
        if name.split(".")[0] == "app" or "cli" in name.split(".")[1:2]
    ]
    assert not bad, "\n".join(bad)


def _import_graph() -> dict[str, set[str]]:
    """module -> the product modules it imports (lazy and TYPE_CHECKING imports too; a package's own
    ``__init__`` left out of its modules' edges)."""
    known = {mod for _, mod, _ in MODULES}
    graph: dict[str, set[str]] = {mod: set() for mod in known}
    for _, mod, path in MODULES:
        for name, _ in _imports(path):
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != mod and not mod.startswith(name + "."):
                graph[mod].add(name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan 1972), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_only_craft_imports_the_channel_twin() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {mod} imports {name}"
        for room, mod, path in MODULES
        for name, line in _imports(path)
        if name.startswith("channel.twin") and room not in ("craft", "channel")
    ]
    assert not bad, "\n".join(bad)


def test_torch_is_imported_only_by_craft_and_the_twin() -> None:
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {mod} imports {name}"
        for room, mod, path in MODULES
        for name, line in _imports(path)
        if name.split(".")[0] in TORCH and not (mod + ".").startswith(TORCH_ALLOWED) and mod != "craft"
    ]
    assert not bad, "\n".join(bad)


def test_the_rule_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("def f():\n    from analysis.report import make_report\n    from channel import twin\n")
    assert [n for n, _ in _imports(f)] == ["analysis.report", "analysis.report.make_report", "channel", "channel.twin"]


def test_torch_free_rooms_import_without_torch() -> None:
    """Every module of the torch-free rooms, the CLI and craft's option declarations, in one fresh interpreter."""
    names = [mod for room, mod, _ in MODULES if room in TORCH_FREE_ROOMS and mod != "channel.twin"]
    names += ["app", "photoproof", "craft", "craft.cli", "craft.config", "craft.options", "craft.onnxmodel"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in ('torch', 'kornia', 'torchvision') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"torch-free modules loaded {r.stdout.strip()}"
    assert len(names) > 60  # the walk found the rooms


def test_no_test_module_imports_another() -> None:
    """Shared fixtures live in conftest.py, shared builders in testkit/; a test module imports neither tests nor
    conftest.
    """
    bad = [
        f"{p.name}:{line}: imports {name}"
        for p in sorted((ROOT / "tests").glob("*.py"))
        for name, line in _imports(p)
        if name.split(".")[0] in ("tests", "conftest") or name.split(".")[0].startswith("test_")
    ]
    assert not bad, "\n".join(bad)


def test_bench_scripts_take_nothing_from_tests() -> None:
    bad = [
        f"{p.name}:{line}: imports {name}"
        for p in sorted((ROOT / "bench").glob("*.py"))
        for name, line in _imports(p)
        if name.split(".")[0] in ("tests", "conftest") or name.split(".")[0].startswith("test_")
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("room", [r for r in ROOMS])
def test_each_package_docstring_lists_its_modules(room: str) -> None:
    """Each package's ``__init__`` docstring names every module in it."""
    for init in (ROOT / room).rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        missing = [p.stem for p in init.parent.glob("*.py") if p.stem != "__init__" and f"``{p.stem}``" not in doc]
        missing += [
            d.name for d in init.parent.iterdir() if (d / "__init__.py").is_file() and f"``{d.name}``" not in doc
        ]
        assert not missing, f"{init.relative_to(ROOT)}: docstring does not list {missing}"

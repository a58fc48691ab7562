"""The CLI's own console. Library code logs; only CLI commands print here."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

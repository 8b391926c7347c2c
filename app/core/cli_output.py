"""Shared output for the command line: JSON for scripts, rich tables for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def fail(message: str) -> typer.Exit:
    console.print(f"[bold red]Error:[/] {message}")
    return typer.Exit(code=1)


def print_rows(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str, as_json: bool
) -> None:
    """One output path for every read command."""
    if as_json:
        typer.echo(json.dumps(list(rows), default=str, indent=2))
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*(str(row.get(col, "")) for col in columns))
    console.print(table)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, default=str, indent=2))

"""``voxelprompt classes``: list the VISTA3D class table (torch-free, instant)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from voxelprompt.catalog import (
    GROUPS,
    SPECIAL_CLASSES,
    everything_classes,
    vista3d_catalog,
)

__all__ = ["classes"]


def classes(
    everything: bool = typer.Option(False, "--everything", help="Only the classes of the official everything set."),
    plain: bool = typer.Option(False, "--plain", help="Tab-separated 'index<TAB>name' lines, no table."),
) -> None:
    """List VISTA3D class indices and names (groups expand; '*' marks ambiguity-embedding classes)."""
    catalog = vista3d_catalog()
    keep = set(everything_classes(132)) if everything else set(catalog.names)
    rows = [(i, n) for i, n in catalog.names.items() if i in keep]
    if plain:
        for i, n in rows:
            typer.echo(f"{i}\t{n}")
        return
    table = Table(title=f"VISTA3D classes ({len(rows)})")
    table.add_column("index", justify="right")
    table.add_column("name")
    table.add_column("notes")
    for i, n in rows:
        notes = []
        if i in GROUPS:
            notes.append("group: " + ",".join(map(str, GROUPS[i][:6])) + ("..." if len(GROUPS[i]) > 6 else ""))
        if i in SPECIAL_CLASSES:
            notes.append("* ambiguity embedding for clicks")
        if i not in everything_classes(132) and i not in GROUPS:
            notes.append("not in everything")
        table.add_row(str(i), n, "; ".join(notes))
    Console().print(table)

"""``voxelprompt classes``: list the VISTA3D class table (torch-free, instant), or with ``-c`` the
classes one model learnt."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from voxelprompt.catalog import (
    GROUPS,
    SPECIAL_CLASSES,
    everything_classes,
    vista3d_catalog,
)
from voxelprompt.cli.options import checkpoint_option

__all__ = ["classes"]


def classes(
    everything: bool = typer.Option(False, "--everything", help="Only the classes of the official everything set."),
    plain: bool = typer.Option(False, "--plain", help="Tab-separated 'index<TAB>name' lines, no table."),
    checkpoint: Annotated[
        Path | None,
        checkpoint_option(
            "Only the classes this model learnt (its model card, or the publisher's class table); 'demo' names the "
            "shipped demo model. Omitted: the whole VISTA3D table (what the architecture has room for)."
        ),
    ] = None,
) -> None:
    """List VISTA3D class indices and names (groups expand; '*' marks ambiguity-embedding classes), or with -c the
    classes of that model's own family catalog that it learnt."""
    catalog = vista3d_catalog()
    keep = set(everything_classes(132)) if everything else set(catalog.names)
    title = "VISTA3D classes"
    if checkpoint is not None:
        from voxelprompt.api import resolve_family

        family = resolve_family(checkpoint)
        own = family.class_catalog()
        if own is not catalog:  # a family with its own class table (no VISTA3D groups or everything set)
            catalog, keep = own, set(own.names)
        learnt = family.learnt(checkpoint)
        if learnt.classes is None:
            typer.echo(f"{learnt.model} has no closed class set: it reads class names as free text ({learnt.source})")
            return
        keep &= set(learnt.classes)
        title = f"classes {learnt.model} learnt"
        if not plain:
            typer.echo(f"{title}: {len(keep)} (from {learnt.source})")
    rows = [(i, n) for i, n in catalog.names.items() if i in keep]
    if plain:
        for i, n in rows:
            typer.echo(f"{i}\t{n}")
        return
    table = Table(title=f"{title} ({len(rows)})")
    table.add_column("index", justify="right")
    table.add_column("name")
    table.add_column("notes")
    vista3d = catalog is vista3d_catalog()
    for i, n in rows:
        notes = []
        if vista3d and i in GROUPS:
            notes.append("group: " + ",".join(map(str, GROUPS[i][:6])) + ("..." if len(GROUPS[i]) > 6 else ""))
        if vista3d and i in SPECIAL_CLASSES:
            notes.append("* ambiguity embedding for clicks")
        if vista3d and i not in everything_classes(132) and i not in GROUPS:
            notes.append("not in everything")
        table.add_row(str(i), n, "; ".join(notes))
    Console().print(table)

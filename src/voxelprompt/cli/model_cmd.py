"""``voxelprompt info``: inspect a checkpoint of any registered family; ``voxelprompt random-checkpoint``:
make a VISTA3D checkpoint with random weights."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["info", "random_checkpoint"]


def info(
    checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="A checkpoint of any registered family (VISTA3D bundle model.pt or research layout, SegVol_v1.pth, a plugin's)."),
) -> None:
    """Show a checkpoint's family and architecture, and check that it loads strictly."""
    from voxelprompt.api import resolve_family
    from voxelprompt.families import import_target

    family = resolve_family(checkpoint)
    typer.echo(f"checkpoint: {checkpoint}")
    typer.echo(f"model family: {family.name} ({family.description})")
    if family.describe is not None:
        for line in import_target(family.describe)(checkpoint):
            typer.echo(line)
        return
    net = family.load(checkpoint, "cpu").network
    typer.echo("loads strictly")
    typer.echo(f"parameters: {sum(p.numel() for p in net.parameters()):,}")


def random_checkpoint(
    output: Path = typer.Argument(..., metavar="OUTPUT", help="Where to write the checkpoint (.pt)."),
    width: int = typer.Option(48, "--width", metavar="N", help="Encoder width (48 = the released 218 M-parameter size)."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="Random seed."),
) -> None:
    """Write a VISTA3D checkpoint with deterministic random weights (pipeline checks, timing)."""
    from voxelprompt.errors import VoxelPromptError
    from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d, save_vista3d

    try:
        spec = Vista3DSpec(width=width)
    except ValueError as err:
        raise VoxelPromptError(str(err)) from err
    path = save_vista3d(random_vista3d(spec, seed=seed), output)
    typer.echo(f"wrote {path} (VISTA3D width {width}, random weights, seed {seed}: labels are meaningless)")

"""``voxelprompt info`` and ``voxelprompt random-checkpoint``: inspect and make VISTA3D checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["info", "random_checkpoint"]


def info(checkpoint: Path = typer.Argument(..., metavar="CHECKPOINT", help="VISTA3D checkpoint (bundle model.pt or research layout).")) -> None:
    """Show a checkpoint's architecture and check that it loads strictly."""
    from voxelprompt.families.vista3d.network import load_vista3d

    net, spec = load_vista3d(checkpoint)
    n_params = sum(p.numel() for p in net.parameters())
    typer.echo(f"checkpoint: {checkpoint}")
    typer.echo("architecture: VISTA3D (MONAI vista3d132 layout), loads strictly")
    typer.echo(f"encoder width: {spec.width}")
    typer.echo(f"input channels: {spec.in_channels}")
    typer.echo(f"class table: {spec.n_classes} rows, trained ids up to {spec.last_supported}")
    typer.echo(f"parameters: {n_params:,}")


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

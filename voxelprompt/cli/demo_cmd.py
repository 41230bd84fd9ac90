"""``voxelprompt demo``: a thin adapter over :func:`voxelprompt.demo.run_demo`."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["demo"]


def demo(
    out_dir: Path = typer.Argument(Path("voxelprompt-demo"), help="Folder for the NIfTI files, overlays.png and summary.json."),
    seed: int = typer.Option(2026, min=0, help="Phantom seed (the demo model was trained on seeds 0-999)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A VISTA3D checkpoint; default: the shipped demo model."),
    profile: str = typer.Option("bundle", help="Official pipeline: bundle or research."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
) -> None:
    """Segment a generated CT phantom: everything, one click on a tumour, one click edit; write NIfTI and PNG overlays."""
    from voxelprompt.api import load_segmenter
    from voxelprompt.catalog import vista3d_catalog
    from voxelprompt.demo import run_demo

    segmenter = load_segmenter(checkpoint, profile=profile, device=device)
    result = run_demo(out_dir, segmenter, seed=seed)
    name = vista3d_catalog().name
    for c, value in result.organ_dice.items():
        typer.echo(f"  {name(c):<24} automatic Dice {value:.3f}")
    typer.echo(f"mean organ Dice (automatic): {result.mean_organ_dice:.3f}")
    typer.echo(f"hepatic tumour from one click (zero-shot): Dice {result.lesion_dice:.3f}")
    typer.echo(
        f"click edit of {name(result.edited_class)}: Dice {result.dice_before:.3f} -> {result.dice_after:.3f}"
    )
    total = sum(result.seconds.values())
    typer.echo(f"wrote {len(result.files)} files to {out_dir} ({total:.1f} s); look at {result.files['overlays']}")

"""``voxelprompt segment-segvol`` and ``voxelprompt identify``: thin adapters over :mod:`voxelprompt.api_segvol`."""

from __future__ import annotations

from pathlib import Path

import typer

from voxelprompt.cli.options import parse_box, parse_point
from voxelprompt.errors import PromptError

__all__ = ["identify", "segment_segvol"]


def segment_segvol(
    input: Path = typer.Argument(..., help="CT image: .nii/.nii.gz/.nrrd file or a DICOM series folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Label map to write (.nii.gz, .nii or .nrrd)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="SegVol checkpoint (SegVol_v1.pth)."),
    text: str = typer.Option(None, "--text", help='Any class name, e.g. "left kidney" (CLIP-encoded).'),
    box: str = typer.Option(None, "--box", help="Box I0,J0,K0,I1,J1,K1 (inclusive corners)."),
    point: list[str] = typer.Option([], "--point", help="Positive click I,J,K (repeatable)."),
    negative_point: list[str] = typer.Option([], "--negative-point", help="Negative click I,J,K (repeatable)."),
    point_space: str = typer.Option("voxel", help="Frame of clicks and box: voxel (input indices) or world (RAS mm)."),
    mode: str = typer.Option("zoom", help="zoom (zoom-out-zoom-in), sliding (full sliding window) or zoom-out."),
    label_value: int = typer.Option(None, help="Value of the object (default: catalog index of the text, else 1)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Segment one object with SegVol from text, a box and/or clicks; the output has the input's grid."""
    from voxelprompt import api_segvol

    if checkpoint is None:
        raise PromptError("no --checkpoint given: pass a SegVol checkpoint (SegVol_v1.pth)")
    result = api_segvol.segment_segvol(
        input,
        output,
        checkpoint=checkpoint,
        text=text,
        box=None if box is None else parse_box(box),
        points=[parse_point(p, "--point") for p in point],
        negative_points=[parse_point(p, "--negative-point") for p in negative_point],
        point_space=point_space,
        label_value=label_value,
        mode=mode,
        device=device,
        progress=not quiet,
    )
    voxels = int((result.labels.array != 0).sum())
    typer.echo(
        f"wrote {output}: shape {result.labels.shape}, {voxels} object voxels (label {result.classes[0]}), "
        f"{result.windows} windows, {result.seconds:.1f} s"
    )


def identify(
    input: Path = typer.Argument(..., help="CT image the mask belongs to."),
    mask: Path = typer.Option(None, "--mask", "-m", help="Mask on the CT's grid (non-zero voxels count)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="SegVol checkpoint (SegVol_v1.pth)."),
    box: str = typer.Option(None, "--box", help="Instead of --mask: box I0,J0,K0,I1,J1,K1 to segment first."),
    point: list[str] = typer.Option([], "--point", help="Instead of --mask: positive click I,J,K (repeatable)."),
    negative_point: list[str] = typer.Option([], "--negative-point", help="Negative click I,J,K (repeatable)."),
    point_space: str = typer.Option("voxel", help="Frame of clicks and box: voxel or world (RAS mm)."),
    categories: str = typer.Option("", help="Comma-separated names to score (default: the VISTA3D class names)."),
    top: int = typer.Option(8, help="How many categories to print."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
) -> None:
    """Name the class of a mask (or of a box/click result) with SegVol: ranked probabilities."""
    from voxelprompt import api_segvol

    if checkpoint is None:
        raise PromptError("no --checkpoint given: pass a SegVol checkpoint (SegVol_v1.pth)")
    if top < 1:
        raise PromptError(f"--top must be at least 1, got {top}")
    names = [c.strip() for c in categories.split(",") if c.strip()] or None
    result = api_segvol.identify(
        input,
        mask,
        checkpoint=checkpoint,
        box=None if box is None else parse_box(box),
        points=[parse_point(p, "--point") for p in point],
        negative_points=[parse_point(p, "--negative-point") for p in negative_point],
        point_space=point_space,
        categories=names,
        device=device,
    )
    for score in result.scores[:top]:
        typer.echo(f"{score.probability:.4f}\t{score.name}")

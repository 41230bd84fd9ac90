"""``voxelprompt segment``: a thin adapter over :func:`voxelprompt.api.segment`."""

from __future__ import annotations

from pathlib import Path

import typer

from voxelprompt.cli.options import parse_box, parse_point
from voxelprompt.errors import PromptError

__all__ = ["segment"]


def segment(
    input: Path = typer.Argument(..., help="CT image: .nii/.nii.gz/.nrrd file or a DICOM series folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Label map to write (.nii.gz, .nii or .nrrd)."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", "-c", help="Checkpoint: VISTA3D (bundle/research) or SegVol; default: the shipped demo VISTA3D."
    ),
    model: str = typer.Option("vista3d", help="Model family of the checkpoint: vista3d or segvol."),
    classes: str = typer.Option("", "--classes", help="Comma-separated class names or ids, e.g. liver,spleen."),
    everything: bool = typer.Option(False, "--everything", help="Segment the official everything class set."),
    text: str = typer.Option(None, help="Class name as free text (SegVol: CLIP; VISTA3D: the class table)."),
    box: str = typer.Option(None, help="SegVol box I0,J0,K0,I1,J1,K1 (input voxels, inclusive)."),
    point: list[str] = typer.Option([], "--point", help="Positive click I,J,K (repeatable)."),
    negative_point: list[str] = typer.Option([], "--negative-point", help="Negative click I,J,K (repeatable)."),
    point_space: str = typer.Option("voxel", help="Frame of clicks: voxel (input indices) or world (RAS mm)."),
    zero_shot_class: int = typer.Option(None, help="Class id for a point-only object (>132: zero-shot embedding)."),
    profile: str = typer.Option("bundle", help="Official pipeline: bundle (MONAI model zoo) or research (VISTA repo)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    engine: str = typer.Option(
        "exact", help="VISTA3D class prompts: exact (official labels, faster), reference (MONAI's inferer) or fast."
    ),
    amp: bool = typer.Option(False, "--amp", help="float16 autocast (CUDA only)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Segment a CT volume with VISTA3D (default) or SegVol; the output has the input's exact grid."""
    from voxelprompt.api import segment as run

    if model not in ("vista3d", "segvol"):
        raise PromptError(f"--model must be vista3d or segvol, got {model!r}")
    if point_space not in ("voxel", "world"):
        raise PromptError(f"--point-space must be voxel or world, got {point_space!r}")
    if checkpoint is None and model == "segvol":
        raise PromptError("--model segvol needs --checkpoint (SegVol weights are not shipped)")
    if model == "segvol" and everything:
        raise PromptError("--everything is a VISTA3D mode; SegVol segments one prompted object")
    names = [c.strip() for c in classes.split(",") if c.strip()]
    result = run(
        input,
        output,
        checkpoint=checkpoint,
        model=model,
        classes=names,
        everything=everything,
        text=text,
        box=parse_box(box) if box else None,
        points=[parse_point(p, "--point") for p in point],
        negative_points=[parse_point(p, "--negative-point") for p in negative_point],
        point_space=point_space,
        zero_shot_class=zero_shot_class,
        profile=profile,
        device=device,
        engine=engine,
        amp=amp,
        progress=not quiet,
    )
    found = sorted(set(int(v) for v in result.labels.array.ravel().tolist()) - {0})
    typer.echo(
        f"wrote {output}: shape {result.labels.shape}, {len(found)} labels present, "
        f"{result.windows} windows, {result.seconds:.1f} s"
    )

"""``voxelprompt segment``: a thin adapter over :func:`voxelprompt.api.segment`."""

from __future__ import annotations

from pathlib import Path

import typer

from voxelprompt.errors import PromptError

__all__ = ["segment"]


def _triple(text: str, option: str) -> tuple[float, float, float]:
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise PromptError(f"{option} {text!r}: expected three numbers I,J,K") from None
    if len(values) != 3:
        raise PromptError(f"{option} {text!r}: expected three numbers I,J,K, got {len(values)}")
    return values  # type: ignore[return-value]


def segment(
    input: Path = typer.Argument(..., help="CT image: .nii/.nii.gz/.nrrd file or a DICOM series folder."),
    output: Path = typer.Option(..., "-o", "--output", help="Label map to write (.nii.gz, .nii or .nrrd)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="VISTA3D checkpoint (bundle or research)."),
    classes: str = typer.Option("", "--classes", help="Comma-separated class names or ids, e.g. liver,spleen."),
    everything: bool = typer.Option(False, "--everything", help="Segment the official everything class set."),
    point: list[str] = typer.Option([], "--point", help="Positive click I,J,K (repeatable)."),
    negative_point: list[str] = typer.Option([], "--negative-point", help="Negative click I,J,K (repeatable)."),
    point_space: str = typer.Option("voxel", help="Frame of clicks: voxel (input indices) or world (RAS mm)."),
    zero_shot_class: int = typer.Option(None, help="Class id for a point-only object (>132: zero-shot embedding)."),
    profile: str = typer.Option("bundle", help="Official pipeline: bundle (MONAI model zoo) or research (VISTA repo)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Segment a CT volume with VISTA3D; the output has the input's exact grid."""
    from voxelprompt.api import segment as run

    if point_space not in ("voxel", "world"):
        raise PromptError(f"--point-space must be voxel or world, got {point_space!r}")
    if checkpoint is None:
        raise PromptError("no --checkpoint given and no default model is installed in this version")
    names = [c.strip() for c in classes.split(",") if c.strip()]
    result = run(
        input,
        output,
        checkpoint=checkpoint,
        classes=names,
        everything=everything,
        points=[_triple(p, "--point") for p in point],
        negative_points=[_triple(p, "--negative-point") for p in negative_point],
        point_space=point_space,
        zero_shot_class=zero_shot_class,
        profile=profile,
        device=device,
        progress=not quiet,
    )
    found = sorted(set(int(v) for v in result.labels.array.ravel().tolist()) - {0})
    typer.echo(
        f"wrote {output}: shape {result.labels.shape}, {len(found)} labels present, "
        f"{result.windows} windows, {result.seconds:.1f} s"
    )

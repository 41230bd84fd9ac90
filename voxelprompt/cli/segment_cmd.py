"""``voxelprompt segment``: a thin adapter over :func:`voxelprompt.api.segment`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import (
    BoxOption,
    DeviceOption,
    Engine,
    Family,
    InputArgument,
    LabelOutputOption,
    NegativePointOption,
    PointOption,
    PointSpaceOption,
    Profile,
    QuietOption,
    SeriesUidOption,
    Space,
    checkpoint_option,
    output_path,
    parse_box,
    parse_point,
    split_names,
)

__all__ = ["segment"]


def segment(
    input: InputArgument,
    output: LabelOutputOption,
    checkpoint: Annotated[
        Path | None,
        checkpoint_option(
            "VISTA3D checkpoint (MONAI bundle models/model.pt or research layout) or, with --model segvol, "
            "SegVol_v1.pth; omitted: the shipped demo VISTA3D (phantoms only, not for real CTs)."
        ),
    ] = None,
    model: Annotated[Family, typer.Option("--model", help="Model family of the checkpoint.")] = Family.vista3d,
    classes: Annotated[
        str, typer.Option("--classes", metavar="NAMES", help="Comma-separated class names or ids, e.g. liver,spleen (`voxelprompt classes` lists them); omitted: none.")
    ] = "",
    everything: Annotated[bool, typer.Option("--everything", help="Segment the official everything class set (VISTA3D).")] = False,
    text: Annotated[
        str | None, typer.Option("--text", metavar="NAME", help="Class name as free text (SegVol: CLIP-encoded; VISTA3D: looked up in the class table); omitted: none.")
    ] = None,
    box: BoxOption = None,
    point: PointOption = None,
    negative_point: NegativePointOption = None,
    point_space: PointSpaceOption = Space.voxel,
    new_structure: Annotated[
        bool,
        typer.Option(
            "--new-structure",
            help="Clicks without --classes mark a structure outside VISTA3D's classes (zero-shot point embedding). "
            "Omitted: VISTA3D's embedding of supported classes, as the official pipeline does.",
        ),
    ] = False,
    series_uid: SeriesUidOption = None,
    profile: Annotated[Profile, typer.Option("--profile", help="Official VISTA3D pipeline: bundle (MONAI model zoo) or research (VISTA repository).")] = Profile.bundle,
    engine: Annotated[Engine, typer.Option("--engine", help="VISTA3D class prompts: exact (official labels, faster), reference (MONAI's inferer) or fast (approximate).")] = Engine.exact,
    device: DeviceOption = "auto",
    amp: Annotated[bool, typer.Option("--amp", help="float16 autocast (CUDA only).")] = False,
    preview: Annotated[
        Path | None, typer.Option("--preview", metavar="PNG", help="Also write a PNG of axial/coronal/sagittal overlays with a legend; omitted: none.")
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Segment a CT with VISTA3D (default) or SegVol; the label map has the input's exact grid and holds only 0 and the prompted ids."""
    from voxelprompt import api
    from voxelprompt.cli.report import report_segmentation, structure_names, volume_clicks

    points = [parse_point(p, "--point") for p in point or ()]
    negatives = [parse_point(p, "--negative-point") for p in negative_point or ()]
    names = split_names(classes)
    boxed = parse_box(box) if box else None
    # Cheap checks before reading the image, and reading before any model work.
    if model is Family.vista3d:
        api.build_prompts(names + ([text] if text else []), points, negatives, point_space.value, new_structure)
    output_path(output, inputs=(input,))
    output_path(preview, (".png",), inputs=(input, output))
    from voxelprompt.imageio import read_volume

    volume = read_volume(input, series_uid=series_uid)
    result = api.segment(
        volume,
        output,
        checkpoint=checkpoint,
        model=model.value,
        classes=names,
        everything=everything,
        text=text,
        box=boxed,
        points=points,
        negative_points=negatives,
        point_space=point_space.value,
        new_structure=new_structure,
        profile=profile.value,
        device=device,
        engine=engine.value,
        amp=amp,
        progress=not quiet,
    )
    if model is Family.segvol:
        label_names = structure_names(result.classes, text or (names[0] if names else "object (SegVol)"))
    elif not names and not text and not everything:
        label_names = structure_names(result.classes, "object from clicks")
    else:
        label_names = structure_names(result.classes)
    report_segmentation(result, output, label_names)
    if preview is not None:
        from voxelprompt.visualize import overlay_file

        marks = [] if not points and not negatives else volume_clicks(points + negatives, point_space.value, volume)
        first = marks[0] if points else None  # the slices cross at the first positive click
        overlay_file(volume, result.labels, preview, point=first, clicks=marks, names=label_names, title=f"{input.name}: {model.value}")
        typer.echo(f"wrote {preview}")

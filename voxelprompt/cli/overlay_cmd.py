"""``voxelprompt overlay``: a PNG of a label map over its CT, a thin adapter over :mod:`voxelprompt.visualize`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import (
    InputArgument,
    SeriesUidOption,
    output_path,
    parse_point,
)

__all__ = ["overlay"]


def overlay(
    input: InputArgument,
    labels: Annotated[Path, typer.Argument(metavar="LABELS", help="Label map on the CT's grid (.nii/.nii.gz/.nrrd), e.g. from `voxelprompt segment`.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="PNG", help="Picture to write (.png); a missing folder is created.")
    ],
    point: Annotated[
        str | None,
        typer.Option("--point", metavar="I,J,K", help="Input voxel the three slices pass through; omitted: the labels' centre of mass."),
    ] = None,
    title: Annotated[str, typer.Option("--title", metavar="TEXT", help="Figure title; omitted: the label file's name.")] = "",
    series_uid: SeriesUidOption = None,
) -> None:
    """Write axial, coronal and sagittal overlays of a label map on its CT, with a legend of the structures shown."""
    from voxelprompt.imageio import read_labels, read_volume
    from voxelprompt.prompts import check_points_inside
    from voxelprompt.types import Points
    from voxelprompt.visualize import overlay_file

    through = None if point is None else tuple(int(round(v)) for v in parse_point(point, "--point"))
    output_path(output, (".png",))
    image = read_volume(input, series_uid=series_uid)
    label_map = read_labels(labels)
    if through is not None:
        check_points_inside(Points.from_lists([through]), image)
    path = overlay_file(image, label_map, output, point=through, title=title or labels.name)
    typer.echo(f"wrote {path}")

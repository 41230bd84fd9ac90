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
    label_names: Annotated[
        Path | None,
        typer.Option(
            "--label-names", metavar="JSON",
            help="Names of the label values, {\"value\": \"name\"} (e.g. TotalSegmentator's classes.json); "
            "omitted: the values are VISTA3D class ids.",
        ),
    ] = None,
    series_uid: SeriesUidOption = None,
) -> None:
    """Write axial, coronal and sagittal overlays of a label map on its CT, with a legend of the structures shown."""
    from voxelprompt.imageio import read_labels, read_volume
    from voxelprompt.prompts import check_points_inside
    from voxelprompt.types import Points
    from voxelprompt.visualize import overlay_file, relabel_to_catalog

    through = None if point is None else tuple(int(round(v)) for v in parse_point(point, "--point"))
    output_path(output, (".png",), inputs=(input, labels))
    image = read_volume(input, series_uid=series_uid)
    label_map = read_labels(labels)
    if through is not None:
        check_points_inside(Points.from_lists([through]), image)
    names = None
    if label_names is not None:
        label_map, names = relabel_to_catalog(label_map, _read_names(label_names))
    marks = () if through is None else (through,)
    path = overlay_file(image, label_map, output, point=through, clicks=marks, names=names, title=title or labels.name)
    typer.echo(f"wrote {path}")


def _read_names(path: Path) -> dict[int, str]:
    import json

    from voxelprompt.errors import InputError

    try:
        raw = json.loads(path.read_text())
        return {int(value): str(name) for value, name in raw.items()}
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(f"{path}: not a JSON object of label value -> name ({err})") from err

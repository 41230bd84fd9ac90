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
            help="Names of the label values, {\"value\": \"name\"} (e.g. TotalSegmentator's classes.json), or "
            "'vista3d' when the values are VISTA3D class ids; omitted: the label_names.json beside LABELS "
            "(as `segment` and `batch` write it), else the legend says 'label N'.",
        ),
    ] = None,
    series_uid: SeriesUidOption = None,
) -> None:
    """Write axial, coronal and sagittal overlays of a label map on its CT, with a legend of the structures shown."""
    from voxelprompt.imageio import align_to_grid, read_labels, read_volume
    from voxelprompt.prompts import check_points_inside
    from voxelprompt.types import Points
    from voxelprompt.visualize import overlay_file, relabel_to_catalog

    through = None if point is None else tuple(int(round(v)) for v in parse_point(point, "--point"))
    output_path(output, (".png",), inputs=(input, labels))
    image = read_volume(input, series_uid=series_uid)
    label_map = align_to_grid(read_labels(labels), image)
    if through is not None:
        check_points_inside(Points.from_lists([through]), image)
    names = None
    if label_names is not None and str(label_names).lower() == "vista3d" and not label_names.exists():
        names = None  # the figure names VISTA3D class ids from the catalog
    elif label_names is not None:
        label_map, names = relabel_to_catalog(label_map, _read_names(label_names))
    else:
        names = _names_beside(labels) or _unnamed(label_map, labels)
    marks = () if through is None else (through,)
    path = overlay_file(image, label_map, output, point=through, clicks=marks, names=names, title=title or labels.name)
    typer.echo(f"wrote {path}")


def _names_beside(labels: Path) -> dict[int, str] | None:
    """The label-names file written beside a label map (``seg.label_names.json``, or a batch case's
    ``label_names.json``), if any."""
    from voxelprompt.imageio import label_names_path, read_label_names

    for path in (label_names_path(labels), labels.parent / "label_names.json"):
        if path.is_file():
            return read_label_names(path)
    return None


def _unnamed(label_map, labels: Path) -> dict[int, str]:
    """Without a class table the legend names values only: guessing VISTA3D names for another
    scheme's ids (TotalSegmentator's 5 is the liver, VISTA3D's the right kidney) would mislead."""
    import logging

    import numpy as np

    logging.getLogger("voxelprompt").info(
        "%s: no class table, so the legend shows label values; pass --label-names JSON (or --label-names vista3d)", labels
    )
    return {int(v): f"label {int(v)}" for v in np.unique(np.asarray(label_map.array)) if v > 0}


def _read_names(path: Path) -> dict[int, str]:
    import json

    from voxelprompt.errors import InputError

    try:
        raw = json.loads(path.read_text())
        return {int(value): str(name) for value, name in raw.items()}
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(f"{path}: not a JSON object of label value -> name ({err})") from err

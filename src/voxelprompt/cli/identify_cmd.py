"""``voxelprompt identify``: name the class of a mask, a thin adapter over :func:`voxelprompt.api.identify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import (
    DeviceOption,
    NegativePointOption,
    PointOption,
    PointSpaceOption,
    SeriesUidOption,
    Space,
    checkpoint_option,
    parse_box,
    parse_point,
    split_names,
    tune_process,
)
from voxelprompt.cli.segvol_cmd import SEGVOL_CHECKPOINT_HELP
from voxelprompt.errors import PromptError

__all__ = ["identify"]


def identify(
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="CT image the mask belongs to (file or DICOM series folder).")],
    mask: Annotated[
        Path | None, typer.Option("--mask", metavar="PATH", help="Mask on the CT's grid (every non-zero voxel counts); omitted: segment --box/--point first.")
    ] = None,
    checkpoint: Annotated[Path | None, checkpoint_option(SEGVOL_CHECKPOINT_HELP)] = None,
    box: Annotated[
        str | None, typer.Option("--box", metavar="I0,J0,K0,I1,J1,K1", help="Instead of --mask: a box to segment first.")
    ] = None,
    point: PointOption = None,
    negative_point: NegativePointOption = None,
    point_space: PointSpaceOption = Space.voxel,
    categories: Annotated[
        str, typer.Option("--categories", metavar="NAMES", help="Comma-separated names to score; omitted: the VISTA3D class names.")
    ] = "",
    top: Annotated[int, typer.Option("--top", min=1, metavar="N", help="How many categories to print.")] = 8,
    series_uid: SeriesUidOption = None,
    device: DeviceOption = "auto",
) -> None:
    """Name the class of a mask (or of a box/click result) with SegVol: ranked probabilities (paper Fig. 5)."""
    from voxelprompt import api
    from voxelprompt.families import families_with, get_family

    if checkpoint is None:
        raise PromptError(get_family(families_with("identify")[0]).missing_checkpoint)
    tune_process(device)
    result = api.identify(
        input,
        mask,
        checkpoint=checkpoint,
        box=None if box is None else parse_box(box),
        points=[parse_point(p, "--point") for p in point or ()],
        negative_points=[parse_point(p, "--negative-point") for p in negative_point or ()],
        point_space=point_space.value,
        categories=split_names(categories) or None,
        series_uid=series_uid,
        device=device,
    )
    for score in result.scores[:top]:
        typer.echo(f"{score.probability:.4f}\t{score.name}")

"""``voxelprompt identify`` (a thin adapter over :func:`voxelprompt.api.identify`) and the deprecated
``voxelprompt segment-segvol`` (now ``voxelprompt segment --model segvol``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import (
    BoxOption,
    DeviceOption,
    InputArgument,
    LabelOutputOption,
    NegativePointOption,
    PointOption,
    PointSpaceOption,
    QuietOption,
    SegVolMode,
    SeriesUidOption,
    Space,
    checkpoint_option,
    parse_box,
    parse_point,
    split_names,
)
from voxelprompt.errors import PromptError

__all__ = ["identify", "segment_segvol"]

_SEGVOL_CHECKPOINT = "SegVol checkpoint (SegVol_v1.pth or the Hugging Face pytorch_model.bin); required: SegVol weights are not shipped."

SegVolModeOption = Annotated[
    SegVolMode,
    typer.Option("--segvol-mode", help="zoom (zoom-out-zoom-in, the paper's), sliding (full sliding window) or zoom-out (coarse pass only)."),
]


def segment_segvol(
    input: InputArgument,
    output: LabelOutputOption,
    checkpoint: Annotated[Path | None, checkpoint_option(_SEGVOL_CHECKPOINT)] = None,
    text: Annotated[str | None, typer.Option("--text", metavar="NAME", help='Any class name, e.g. "left kidney" (CLIP-encoded); omitted: none.')] = None,
    box: BoxOption = None,
    point: PointOption = None,
    negative_point: NegativePointOption = None,
    point_space: PointSpaceOption = Space.voxel,
    segvol_mode: SegVolModeOption = SegVolMode.zoom,
    label_value: Annotated[
        int | None, typer.Option("--label-value", min=1, metavar="N", help="Value of the object; omitted: the class index of the text when it names a VISTA3D class, else 1.")
    ] = None,
    series_uid: SeriesUidOption = None,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
) -> None:
    """Deprecated: use `voxelprompt segment --model segvol` (same options). Segment one object with SegVol."""
    from voxelprompt.cli.segment_cmd import run_segment
    from voxelprompt.families import get_family

    typer.echo("note: segment-segvol is deprecated; use `voxelprompt segment --model segvol` (same options)", err=True)
    if checkpoint is None:
        raise PromptError(get_family("segvol").missing_checkpoint)
    run_segment(
        input, output, checkpoint, "segvol", [], False, text, box, point, negative_point, point_space, False,
        label_value, series_uid, device, None, quiet, options={"mode": segvol_mode},
    )  # fmt: skip


def identify(
    input: Annotated[Path, typer.Argument(metavar="INPUT", help="CT image the mask belongs to (file or DICOM series folder).")],
    mask: Annotated[
        Path | None, typer.Option("--mask", metavar="PATH", help="Mask on the CT's grid (every non-zero voxel counts); omitted: segment --box/--point first.")
    ] = None,
    checkpoint: Annotated[Path | None, checkpoint_option(_SEGVOL_CHECKPOINT)] = None,
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

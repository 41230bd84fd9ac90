"""The deprecated ``voxelprompt segment-segvol``: ``voxelprompt segment --model segvol`` with SegVol's options."""

from __future__ import annotations

import enum
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
    SeriesUidOption,
    Space,
    checkpoint_option,
)
from voxelprompt.errors import PromptError
from voxelprompt.families.segvol.options import MODES

__all__ = ["segment_segvol", "SEGVOL_CHECKPOINT_HELP"]

SEGVOL_CHECKPOINT_HELP = "SegVol checkpoint (SegVol_v1.pth or the Hugging Face pytorch_model.bin); required: SegVol weights are not shipped."

#: SegVol inference modes (``--segvol-mode``), from the family's options record.
SegVolMode = enum.Enum("SegVolMode", {m.replace("-", "_"): m for m in MODES}, type=str)  # type: ignore[misc]

SegVolModeOption = Annotated[
    SegVolMode,
    typer.Option("--segvol-mode", help="zoom (zoom-out-zoom-in, the paper's), sliding (full sliding window) or zoom-out (coarse pass only)."),
]


def segment_segvol(
    input: InputArgument,
    output: LabelOutputOption,
    checkpoint: Annotated[Path | None, checkpoint_option(SEGVOL_CHECKPOINT_HELP)] = None,
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
        input=input, output=output, checkpoint=checkpoint, family="segvol", names=[], everything=False, text=text,
        box=box, point=point, negative_point=negative_point, point_space=point_space, new_structure=False,
        label_value=label_value, series_uid=series_uid, device=device, preview=None, quiet=quiet,
        options={"--segvol-mode": segvol_mode.value},
    )  # fmt: skip

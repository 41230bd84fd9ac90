"""``voxelprompt demo``: a thin adapter over :func:`voxelprompt.demo.run_demo`."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import (
    DeviceOption,
    QuietOption,
    checkpoint_option,
    tune_process,
)
from voxelprompt.families.vista3d.options import PROFILES

__all__ = ["demo"]

#: VISTA3D's official pipelines (``--profile``), from the family's options record.
Profile = enum.Enum("Profile", {p: p for p in PROFILES}, type=str)  # type: ignore[misc]


def demo(
    out_dir: Annotated[
        Path, typer.Argument(metavar="OUT_DIR", help="Folder for the NIfTI files, overlays.png and summary.json (created).")
    ] = Path("voxelprompt-demo"),
    seed: Annotated[int, typer.Option("--seed", min=0, metavar="N", help="Phantom seed (the demo model was trained on seeds 0-23, validated on 500-501; others are unseen).")] = 2026,
    checkpoint: Annotated[
        Path | None, checkpoint_option("A VISTA3D checkpoint; omitted: the shipped demo model.")
    ] = None,
    profile: Annotated[Profile, typer.Option("--profile", help="Official VISTA3D pipeline: bundle or research.")] = Profile["bundle"],
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
) -> None:
    """Segment a generated CT phantom: everything, one click on a tumour, one click edit; write NIfTI, PNG overlays and Dice."""
    from voxelprompt.imageio import check_output_folder

    check_output_folder(out_dir)  # before the model: a read-only or taken path fails in a second
    from voxelprompt.api import load_model
    from voxelprompt.catalog import vista3d_catalog
    from voxelprompt.demo import run_demo

    tune_process(device)
    from voxelprompt.families.vista3d.inference.default_model import default_checkpoint

    segmenter = load_model(checkpoint or default_checkpoint(), "vista3d", device=device, options={"profile": profile.value}, progress=not quiet)
    result = run_demo(out_dir, segmenter, seed=seed)
    name = vista3d_catalog().name
    for c, value in result.organ_dice.items():
        typer.echo(f"  {name(c):<24} automatic Dice {value:.3f}")
    for sentence in result.verdicts().values():
        typer.echo(sentence)
    total = sum(result.seconds.values())
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    typer.echo(f"wrote {len(result.files)} files to {out_dir} in {total:.1f} s ({steps}); look at {result.files['overlays']}")

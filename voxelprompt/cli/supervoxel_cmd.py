"""``voxelprompt supervoxels`` and ``voxelprompt pseudo-masks``: adapters over :mod:`voxelprompt.pseudolabels`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from voxelprompt.errors import InputError

__all__ = ["pseudo_masks", "supervoxels"]

_OUTPUT_SUFFIXES = (".nii.gz", ".nii", ".nrrd")


def _check_output(output: Path) -> None:
    # Fail before minutes of computation, not after.
    if not str(output).lower().endswith(_OUTPUT_SUFFIXES):
        raise InputError(f"output {str(output)!r} must end in one of {', '.join(_OUTPUT_SUFFIXES)}")
    if not output.parent.is_dir():
        raise InputError(f"output folder {str(output.parent)!r} does not exist")


def _write(labels, output: Path) -> None:
    from voxelprompt.imageio import write_volume

    # int16 like the official script's output where ids fit, else int32.
    dtype = np.int16 if int(labels.array.max()) <= np.iinfo(np.int16).max else np.int32
    write_volume(labels, output, dtype=dtype)


def supervoxels(
    input: Annotated[Path, typer.Argument(help="CT image in HU: .nii/.nii.gz/.nrrd file or a DICOM series folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Supervoxel id map to write (.nii.gz, .nii or .nrrd).")],
    preset: Annotated[str, typer.Option(help="official (VISTA script) or paper (Algorithm 2 as printed).")] = "official",
    sam_checkpoint: Annotated[
        Path | None,
        typer.Option("--sam-checkpoint", help="SAM ViT-H checkpoint (needs segment-anything); default: offline filter bank."),
    ] = None,
    n_segments: Annotated[int | None, typer.Option("--n-segments", help="Override the preset's SLIC n_segments.")] = None,
    compactness: Annotated[float | None, typer.Option(help="Override the preset's SLIC compactness.")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Reuse/store the map here, keyed by image and settings.")
    ] = None,
) -> None:
    """VISTA3D supervoxels (Algorithm 2): SLIC on summed axial, coronal and sagittal slice features."""
    from voxelprompt.pseudolabels import supervoxels as run

    _check_output(output)
    start = time.perf_counter()
    labels = run(
        input,
        preset=preset,
        sam_checkpoint=sam_checkpoint,
        cache_dir=cache_dir,
        n_segments=n_segments,
        compactness=compactness,
    )
    _write(labels, output)
    typer.echo(f"wrote {output}: shape {labels.shape}, {int(labels.array.max())} supervoxels, {time.perf_counter() - start:.1f} s")


def pseudo_masks(
    input: Annotated[Path, typer.Argument(help="CT image in HU: .nii/.nii.gz/.nrrd file or a DICOM series folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Pseudo mask id map to write (.nii.gz, .nii or .nrrd).")],
    k: Annotated[float, typer.Option("-k", help="Felzenszwalb scale (HU x voxels); larger gives fewer masks.")] = 500.0,
    min_size: Annotated[int, typer.Option(help="Smallest Felzenszwalb segment in input voxels.")] = 200,
    connectivity: Annotated[int, typer.Option(help="6, 18 or 26 neighbours (26 is ~4x slower).")] = 6,
    no_clean: Annotated[
        bool, typer.Option("--no-clean", help="Skip SegVol's cleaning (1 per mille, opening/closing).")
    ] = False,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="Reuse/store the map here, keyed by image and settings.")
    ] = None,
) -> None:
    """SegVol pseudo masks: 3D Felzenszwalb-Huttenlocher segmentation, then the paper's cleaning."""
    from voxelprompt.pseudolabels import pseudo_masks as run

    _check_output(output)
    start = time.perf_counter()
    labels = run(input, k=k, min_size=min_size, connectivity=connectivity, clean=not no_clean, cache_dir=cache_dir)
    _write(labels, output)
    typer.echo(f"wrote {output}: shape {labels.shape}, {int(labels.array.max())} masks, {time.perf_counter() - start:.1f} s")

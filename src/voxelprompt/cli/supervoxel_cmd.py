"""``voxelprompt supervoxels`` and ``voxelprompt pseudo-masks``: adapters over :mod:`voxelprompt.pseudolabels`."""

from __future__ import annotations

import enum
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from voxelprompt.cli.options import (
    InputArgument,
    SeriesUidOption,
    output_path,
)

__all__ = ["pseudo_masks", "supervoxels"]


class Preset(str, enum.Enum):
    """Supervoxel settings (``--preset``)."""

    official = "official"
    paper = "paper"


class Connectivity(str, enum.Enum):
    """Voxel neighbourhoods of the Felzenszwalb graph (``--connectivity``)."""

    six = "6"
    eighteen = "18"
    twenty_six = "26"


def _shape(volume) -> str:
    return "x".join(str(n) for n in volume.shape)


def _write(labels, output: Path) -> None:
    from voxelprompt.imageio import write_volume

    # int16 like the official script's output where ids fit, else int32.
    dtype = np.int16 if int(labels.array.max()) <= np.iinfo(np.int16).max else np.int32
    write_volume(labels, output, dtype=dtype)


def supervoxels(
    input: InputArgument,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="PATH", help="Supervoxel id map to write (.nii.gz, .nii or .nrrd); a missing folder is created.")
    ],
    preset: Annotated[
        Preset, typer.Option("--preset", help="official (VISTA script) or paper (Algorithm 2 as printed).")
    ] = Preset.official,
    sam_checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--sam-checkpoint", metavar="PATH", help="SAM ViT-H checkpoint (needs segment-anything); omitted: the offline filter bank."
        ),
    ] = None,
    n_segments: Annotated[
        int | None, typer.Option("--n-segments", min=1, metavar="N", help="SLIC n_segments; omitted: the preset's.")
    ] = None,
    compactness: Annotated[float | None, typer.Option("--compactness", metavar="X", help="SLIC compactness; omitted: the preset's.")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", metavar="DIR", help="Reuse/store the map here, keyed by image and settings; omitted: no cache.")
    ] = None,
    series_uid: SeriesUidOption = None,
) -> None:
    """VISTA3D supervoxels (Algorithm 2): SLIC on summed axial, coronal and sagittal slice features."""
    from voxelprompt.imageio import read_volume
    from voxelprompt.pseudolabels import supervoxels as run

    output_path(output, inputs=(input,))
    start = time.perf_counter()
    labels = run(
        read_volume(input, series_uid=series_uid),
        preset=preset.value,
        sam_checkpoint=sam_checkpoint,
        cache_dir=cache_dir,
        n_segments=n_segments,
        compactness=compactness,
    )
    _write(labels, output)
    typer.echo(f"wrote {output}: {_shape(labels)} voxels, {int(labels.array.max())} supervoxels, {time.perf_counter() - start:.1f} s")


def pseudo_masks(
    input: InputArgument,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="PATH", help="Pseudo mask id map to write (.nii.gz, .nii or .nrrd); a missing folder is created.")
    ],
    k: Annotated[float, typer.Option("-k", "--scale", metavar="K", help="Felzenszwalb scale (HU x voxels); larger gives fewer masks.")] = 500.0,
    min_size: Annotated[int, typer.Option("--min-size", min=1, metavar="VOXELS", help="Smallest Felzenszwalb segment in input voxels.")] = 200,
    connectivity: Annotated[
        Connectivity, typer.Option("--connectivity", help="Neighbours of a voxel: 6, 18 or 26 (26 is ~4x slower).")
    ] = Connectivity.six,
    no_clean: Annotated[
        bool, typer.Option("--no-clean", help="Skip SegVol's cleaning (1 per mille, opening/closing).")
    ] = False,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", metavar="DIR", help="Reuse/store the map here, keyed by image and settings; omitted: no cache.")
    ] = None,
    series_uid: SeriesUidOption = None,
) -> None:
    """SegVol pseudo masks: 3D Felzenszwalb-Huttenlocher segmentation, then the paper's cleaning."""
    from voxelprompt.imageio import read_volume
    from voxelprompt.pseudolabels import pseudo_masks as run

    output_path(output, inputs=(input,))
    start = time.perf_counter()
    volume = read_volume(input, series_uid=series_uid)
    labels = run(volume, k=k, min_size=min_size, connectivity=int(connectivity.value), clean=not no_clean, cache_dir=cache_dir)
    _write(labels, output)
    typer.echo(f"wrote {output}: {_shape(labels)} voxels, {int(labels.array.max())} masks, {time.perf_counter() - start:.1f} s")

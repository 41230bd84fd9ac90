"""``voxelprompt phantom``: write seeded synthetic CT cases (NIfTI image + label) and a datalist."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.data.phantom import ContrastPhase, PhantomConfig, write_phantom_dataset

__all__ = ["phantom"]


def phantom(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="Folder for images/, labels/ and datalist.json (created).")],
    n: Annotated[int, typer.Option("--n", "-n", min=1, metavar="N", help="Number of cases.")] = 4,
    shape: Annotated[tuple[int, int, int], typer.Option("--shape", metavar="I J K", help="Voxels along i j k.")] = (128, 128, 128),
    spacing: Annotated[
        tuple[float, float, float] | None,
        typer.Option("--spacing", metavar="X Y Z", help="Voxel size in mm along i j k; omitted: fits a 400 x 400 x 640 mm trunk."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the first case; case i uses seed + i.")] = 0,
    phase: Annotated[
        ContrastPhase, typer.Option("--phase", help="Contrast phase; 'random' draws one per case.")
    ] = ContrastPhase.RANDOM,
    lesions: Annotated[
        bool, typer.Option("--lesions/--no-lesions", help="Add hepatic tumours and a kidney cyst.")
    ] = True,
    noise_hu: Annotated[float, typer.Option("--noise-hu", min=0.0, metavar="HU", help="Image noise standard deviation in HU.")] = 12.0,
    blur_mm: Annotated[float, typer.Option("--blur-mm", min=0.0, metavar="MM", help="Scanner blur (Gaussian sigma) in mm.")] = 0.6,
    orientation: Annotated[str, typer.Option("--orientation", metavar="CODES", help="Axis codes of the written arrays, e.g. RAS or LPS.")] = "RAS",
    n_validation: Annotated[int, typer.Option("--n-validation", min=0, metavar="N", help="How many of the last cases go to 'validation'.")] = 0,
) -> None:
    """Generate procedural abdomen/chest CT phantoms with VISTA3D label maps."""
    config = PhantomConfig(
        shape=shape,
        spacing=spacing,
        seed=seed,
        phase=phase,
        lesions=lesions,
        noise_hu=noise_hu,
        blur_mm=blur_mm,
        orientation=orientation,
    )
    path = write_phantom_dataset(out_dir, n=n, config=config, seed0=seed, n_validation=n_validation)
    typer.echo(f"wrote {n} phantom case(s) to {out_dir} (images/, labels/); datalist: {path}")

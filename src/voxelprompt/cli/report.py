"""What the commands print after segmenting: the structures found, their volumes, and notes."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from voxelprompt.cli.options import as_flags
from voxelprompt.measure import structure_volumes
from voxelprompt.types import Points, Segmentation, Volume

__all__ = ["report_segmentation", "volume_clicks"]


def report_segmentation(result: Segmentation, output: Path | None, names: Mapping[int, str]) -> None:
    """Print one summary line, a line per structure found (id, name, ml), what was asked for but
    not found, and the segmenter's notes (which embedding clicks used, an empty object ...)."""
    found = structure_volumes(result.labels)
    shape = "x".join(str(s) for s in result.labels.shape)
    where = f"wrote {output}" if output is not None else "segmented"
    windows = f"{result.windows} window" + ("s" if result.windows != 1 else "")
    typer.echo(f"{where}: {shape} voxels, {len(found)} structure(s) found, {windows}, {result.seconds:.1f} s")
    for s in found:
        voxels = f"{s.voxels} voxel" + ("s" if s.voxels != 1 else "")
        typer.echo(f"  {s.label:>4}  {names.get(s.label, f'label {s.label}'):<32} {s.ml:>10.1f} ml  ({voxels})")
    present = {s.label for s in found}
    missing = [c for c in result.classes if c not in present]
    if missing:
        listed = ", ".join(f"{names.get(c, f'label {c}')} ({c})" for c in missing)
        typer.echo(f"  not found: {listed}")
    for note in result.notes:
        typer.echo(f"note: {as_flags(note)}")


def volume_clicks(coords: list[tuple[float, float, float]], space: str, volume: Volume) -> list[tuple[int, int, int]]:
    """Clicks as the nearest (i, j, k) voxels of ``volume`` (from voxel or RAS+ mm coordinates)."""
    ijk = Points.from_lists(coords, space=space).to_voxel(volume)
    return [tuple(int(round(v)) for v in row) for row in ijk]  # type: ignore[misc]

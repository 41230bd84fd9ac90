"""``volumes-csv``: one CSV row per non-zero label value (value, name, voxels, ml), a voxelprompt
output format registered through the ``voxelprompt.outputs`` entry-point group."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from voxelprompt.outputs import OutputFormat

__all__ = ["FORMAT", "write_volumes"]

COLUMNS = ("value", "name", "voxels", "ml")


def write_volumes(context, path: Path) -> list[Path]:
    """The label values present in ``context.labels`` with their names, voxel counts and volumes
    (ml from the affine's voxel size) as CSV at ``path``."""
    array = np.asarray(context.labels.array)
    voxel_ml = abs(float(np.linalg.det(np.asarray(context.labels.affine)[:3, :3]))) / 1000.0
    values, counts = np.unique(array[array != 0], return_counts=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            writer.writerow([value, context.label_names.get(value, f"label {value}"), count, round(count * voxel_ml, 3)])
    return [path]


FORMAT = OutputFormat(
    name="volumes-csv",
    description="structure volumes, one CSV row per label value (value, name, voxels, ml)",
    writer="voxelprompt_volumes_csv:write_volumes",
    file_name="volumes.csv",
    suffixes=(".csv",),
    needs=frozenset({"label-names"}),
    media_type="text/csv",
)

"""Per-structure statistics of a label map over its CT: size, Hounsfield units, extent, pieces
(counted and sized by :mod:`voxelprompt.measure.volumes`).

Records per case and structure, written as CSV or JSON, and one cohort table that joins the cases.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cc3d
import numpy as np
from scipy import ndimage

from voxelprompt.errors import InputError
from voxelprompt.imageio.validate import check_mask_grid
from voxelprompt.imageio.writers import write_text
from voxelprompt.measure.volumes import label_counts, voxel_volume_ml
from voxelprompt.types import Volume

__all__ = [
    "HU_PERCENTILES",
    "STATISTICS_COLUMNS",
    "StructureStatistics",
    "structure_statistics",
    "write_statistics_csv",
    "write_statistics_json",
    "join_statistics_csv",
]

#: Percentiles of the HU values reported per structure (numpy's linear interpolation).
HU_PERCENTILES = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class StructureStatistics:
    """One structure (label value) of one label map.

    Args:
        label: the label value.
        name: its name (``"label <value>"`` when none was given).
        voxels: number of voxels holding it.
        volume_ml: voxels x voxel volume (|det| of the affine's 3x3 part, mm^3) / 1000.
        hu_mean: mean of the image's values over the structure (HU for CT); NaN without an image or
            without voxels, likewise the other HU fields.
        hu_std: their standard deviation (population, ddof=0).
        hu_p5, hu_p25, hu_p50, hu_p75, hu_p95: their percentiles (linear interpolation).
        bbox_voxel_min: (i, j, k) smallest voxel index holding the label (inclusive); (-1, -1, -1)
            without voxels.
        bbox_voxel_max: (i, j, k) largest voxel index holding it (inclusive).
        bbox_ras_min: (x, y, z) RAS+ mm, the smallest coordinates of the structure's voxel centres
            (not of the voxels' outer faces); NaN without voxels.
        bbox_ras_max: (x, y, z) RAS+ mm, their largest coordinates.
        components: number of 26-connected components.
    """

    label: int
    name: str
    voxels: int
    volume_ml: float
    hu_mean: float
    hu_std: float
    hu_p5: float
    hu_p25: float
    hu_p50: float
    hu_p75: float
    hu_p95: float
    bbox_voxel_min: tuple[int, int, int]
    bbox_voxel_max: tuple[int, int, int]
    bbox_ras_min: tuple[float, float, float]
    bbox_ras_max: tuple[float, float, float]
    components: int


_AXES = {"bbox_voxel_min": "ijk", "bbox_voxel_max": "ijk", "bbox_ras_min": "xyz", "bbox_ras_max": "xyz"}


def _columns() -> tuple[str, ...]:
    columns: list[str] = []
    for field in dataclasses.fields(StructureStatistics):
        axes = _AXES.get(field.name)
        columns += [f"{field.name}_{axis}" for axis in axes] if axes else [field.name]
    return tuple(columns)


#: Column names of the CSV tables, tuples flattened (``bbox_voxel_min_i``, ..., ``bbox_ras_max_z``).
STATISTICS_COLUMNS = _columns()


def structure_statistics(
    labels: Volume,
    image: Volume | None = None,
    label_names: Mapping[int, str] | None = None,
    *,
    include_absent: bool = False,
) -> list[StructureStatistics]:
    """Statistics of every non-zero label value of ``labels``, in increasing value.

    Args:
        labels: (I, J, K) integer label map (values >= 0), voxel -> RAS+ mm affine.
        image: the CT on the same grid (same shape, affine within 1e-3), values in HU; None leaves
            the HU fields NaN.
        label_names: label value -> name; values without one are named ``"label <value>"``.
        include_absent: also report the values of ``label_names`` that no voxel holds (0 voxels,
            0 ml, 0 components, NaN statistics, bounding boxes -1 / NaN).

    Returns:
        One record per label value.

    Raises:
        InputError: non-integer or negative labels, or an image not on the label map's grid.
    """
    counts = label_counts(labels)
    if image is not None:
        check_mask_grid(labels, image)
    names = dict(label_names or {})
    array = np.asarray(labels.array)
    array = array.astype(np.int64, copy=False) if array.dtype.kind == "b" else array
    present = [int(v) for v in np.flatnonzero(counts) if v]
    boxes = ndimage.find_objects(array) if present else []
    values = sorted(set(present) | ({int(v) for v in names if int(v) > 0} if include_absent else set()))
    per_voxel = voxel_volume_ml(labels)
    records = []
    for value in values:
        name = str(names.get(value, f"label {value}"))
        if value not in present:
            records.append(_absent(value, name))
            continue
        box = boxes[value - 1]
        mask = array[box] == value
        hu = np.asarray(image.array[box], dtype=np.float64)[mask] if image is not None else np.empty(0)
        records.append(_record(value, name, int(counts[value]), per_voxel, mask, box, hu, labels.affine))
    return records


def _record(
    value: int,
    name: str,
    voxels: int,
    per_voxel: float,
    mask: np.ndarray,
    box: tuple[slice, ...],
    hu: np.ndarray,
    affine: np.ndarray,
) -> StructureStatistics:
    """The record of one present value; ``mask`` is its voxels within ``box``, ``hu`` their image values."""
    percentiles = np.percentile(hu, HU_PERCENTILES) if hu.size else np.full(len(HU_PERCENTILES), np.nan)
    corner = np.array([s.start for s in box])
    ras_min, ras_max = _ras_extent(mask, corner, np.asarray(affine, dtype=np.float64))
    _, n_components = cc3d.connected_components(mask, connectivity=26, return_N=True)
    return StructureStatistics(
        label=value,
        name=name,
        voxels=voxels,
        volume_ml=round(voxels * per_voxel, 9),  # no binary-fraction noise (497.934, not 497.93399999999997)
        hu_mean=float(hu.mean()) if hu.size else math.nan,
        hu_std=float(hu.std()) if hu.size else math.nan,
        **{f"hu_p{p}": float(v) for p, v in zip(HU_PERCENTILES, percentiles)},
        bbox_voxel_min=tuple(int(s.start) for s in box),
        bbox_voxel_max=tuple(int(s.stop) - 1 for s in box),
        bbox_ras_min=ras_min,
        bbox_ras_max=ras_max,
        components=int(n_components),
    )


def _ras_extent(
    mask: np.ndarray, corner: np.ndarray, affine: np.ndarray
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Smallest and largest RAS+ coordinates of the voxel centres in ``mask`` (offset ``corner``)."""
    linear = affine[:3, :3]
    if np.count_nonzero(linear, axis=1).max() <= 1:
        # Axis-aligned grid: every world axis follows one voxel axis, so the box's corners are exact.
        shape = np.array(mask.shape) - 1
        ijk = np.array([[a, b, c] for a in (0, shape[0]) for b in (0, shape[1]) for c in (0, shape[2])]) + corner
    else:
        ijk = np.argwhere(mask) + corner
    xyz = ijk @ linear.T + affine[:3, 3]
    return tuple(float(v) for v in xyz.min(axis=0)), tuple(float(v) for v in xyz.max(axis=0))


def _absent(value: int, name: str) -> StructureStatistics:
    nan = math.nan
    return StructureStatistics(
        value, name, 0, 0.0, nan, nan, nan, nan, nan, nan, nan, (-1, -1, -1), (-1, -1, -1), (nan,) * 3, (nan,) * 3, 0
    )


#: Decimals written per field (files only; records keep full precision): HU to 0.01, ml to
#: 0.001, mm to 0.01 - finer digits are float noise ("-21.699999999999932"), not measurement.
_DECIMALS = {"volume_ml": 3, "bbox_ras_min": 2, "bbox_ras_max": 2} | {f"hu_{k}": 2 for k in ("mean", "std")} | {
    f"hu_p{p}": 2 for p in HU_PERCENTILES
}


def _rounded(name: str, value: object) -> object:
    decimals = _DECIMALS.get(name)
    if decimals is None:
        return value
    if isinstance(value, tuple):
        return tuple(_rounded(name, v) for v in value)
    return value if math.isnan(value) else round(float(value), decimals) + 0.0  # + 0.0: no "-0.0"


def _row(record: StructureStatistics) -> list:
    row: list = []
    for field in dataclasses.fields(StructureStatistics):
        value = _rounded(field.name, getattr(record, field.name))
        row.extend(value if isinstance(value, tuple) else [value])
    return row


def write_statistics_csv(records: Sequence[StructureStatistics], path: str | os.PathLike) -> Path:
    """Write ``records`` as a CSV table (header :data:`STATISTICS_COLUMNS`), atomically.

    Floats are rounded (HU and mm to 0.01, ml to 0.001) and written with Python's shortest
    round-trip ``repr``; NaN as ``nan``.

    Raises:
        InputError: the file or its folder cannot be written.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STATISTICS_COLUMNS)
    writer.writerows(_row(r) for r in records)
    return write_text(path, buffer.getvalue())


def write_statistics_json(
    records: Sequence[StructureStatistics], path: str | os.PathLike, *, case: str | None = None, warning: str | None = None
) -> Path:
    """Write ``records`` as JSON, atomically: ``{"case": case, "structures": [{field: value}]}``,
    with ``"warning"`` first when given (e.g. the labels come from the demo model).

    Tuples become lists and NaN becomes ``null`` (strict JSON); keys follow the record's fields;
    floats are rounded as in :func:`write_statistics_csv`.

    Raises:
        InputError: the file or its folder cannot be written.
    """
    structures = [{k: _json_value(_rounded(k, v)) for k, v in dataclasses.asdict(r).items()} for r in records]
    data = ({"warning": warning} if warning else {}) | {"case": case, "structures": structures}
    return write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _json_value(value: object) -> object:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def join_statistics_csv(case_tables: Mapping[str, str | os.PathLike], path: str | os.PathLike) -> Path:
    """Join per-case statistics CSVs into one cohort CSV with a leading ``case`` column, atomically.

    Rows keep their order; cases follow the mapping's order (sort it for a stable table).

    Args:
        case_tables: case name -> a CSV written by :func:`write_statistics_csv`.
        path: the cohort table.

    Returns:
        The path written.

    Raises:
        InputError: a table that is missing, unreadable or has other columns than
            :data:`STATISTICS_COLUMNS`, or an output that cannot be written.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("case", *STATISTICS_COLUMNS))
    for case, table in case_tables.items():
        try:
            with open(table, newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
        except OSError as err:
            raise InputError(f"{table}: cannot read statistics table of case {case!r} ({err.strerror})") from err
        if not rows or tuple(rows[0]) != STATISTICS_COLUMNS:
            raise InputError(f"{table}: not a voxelprompt statistics table (case {case!r}): its columns differ")
        writer.writerows([case, *row] for row in rows[1:])
    return write_text(path, buffer.getvalue())

"""Measuring label maps: structures and their volumes in ml (:mod:`~voxelprompt.measure.volumes`,
what the commands print) and per-structure statistics over the CT with their CSV / JSON tables
(:mod:`~voxelprompt.measure.statistics`)."""

from __future__ import annotations

from voxelprompt.measure.statistics import (
    HU_PERCENTILES,
    STATISTICS_COLUMNS,
    StructureStatistics,
    join_statistics_csv,
    structure_statistics,
    write_statistics_csv,
    write_statistics_json,
)
from voxelprompt.measure.volumes import StructureVolume, label_counts, structure_volumes, voxel_volume_ml

__all__ = [
    "HU_PERCENTILES",
    "STATISTICS_COLUMNS",
    "StructureStatistics",
    "StructureVolume",
    "join_statistics_csv",
    "label_counts",
    "structure_statistics",
    "structure_volumes",
    "voxel_volume_ml",
    "write_statistics_csv",
    "write_statistics_json",
]

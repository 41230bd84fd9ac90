"""Compatibility alias of :mod:`voxelprompt.measure.statistics` (the module moved into the
:mod:`voxelprompt.measure` package); import from :mod:`voxelprompt.measure` instead."""

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

__all__ = [
    "HU_PERCENTILES",
    "STATISTICS_COLUMNS",
    "StructureStatistics",
    "join_statistics_csv",
    "structure_statistics",
    "write_statistics_csv",
    "write_statistics_json",
]

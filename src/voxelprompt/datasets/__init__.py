"""Input cases and datalists, family-neutral: the one :class:`Case` record and the one datalist
reader that batch (:mod:`voxelprompt.batch.cases`), evaluation (:mod:`voxelprompt.evaluation.datasets`)
and training (:mod:`voxelprompt.training.datalist`) build their inputs from."""

from __future__ import annotations

from voxelprompt.datasets.case import DEFAULT_DATASET, IMAGE_SUFFIXES, Case, image_stem
from voxelprompt.datasets.datalist import SUPERVOXEL_KEYS, DatalistFile, entry_case, read_datalist

__all__ = [
    "Case",
    "DEFAULT_DATASET",
    "DatalistFile",
    "IMAGE_SUFFIXES",
    "SUPERVOXEL_KEYS",
    "entry_case",
    "image_stem",
    "read_datalist",
]

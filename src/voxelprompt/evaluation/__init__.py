"""Evaluation: metrics (Dice, NSD), simulated clicks and boxes (VISTA3D, SegVol protocols), baselines.

Library level only; the runner that drives models over a dataset builds on these pieces.
"""

from __future__ import annotations

from voxelprompt.evaluation.baselines import region_grow
from voxelprompt.evaluation.clicks import (
    Box,
    Click,
    bounding_box,
    center_click,
    clicks_to_points,
    correction_click,
    patch_center_clicks,
    patch_correction_clicks,
    segvol_points,
)
from voxelprompt.evaluation.metrics import (
    ClassScore,
    dice,
    score_class,
    score_labels,
    surface_dice,
)

__all__ = [
    "Box",
    "ClassScore",
    "Click",
    "bounding_box",
    "center_click",
    "clicks_to_points",
    "correction_click",
    "dice",
    "patch_center_clicks",
    "patch_correction_clicks",
    "region_grow",
    "score_class",
    "score_labels",
    "segvol_points",
    "surface_dice",
]

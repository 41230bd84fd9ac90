"""The performance engine: the official VISTA3D computation with less time and memory.

``layout`` keeps one memory format end to end (channels-last kernels, exact re-expressions of slow
layers), ``class_windows`` + ``accumulate`` run class prompts over sliding windows with bounded
stitching memory, ``point_head`` answers clicks from cached per-window features. See README.md.
"""

from voxelprompt.families.vista3d.inference.engine.accumulate import (
    CellStitcher,
    RunningArgmax,
    Window,
    window_grid,
)
from voxelprompt.families.vista3d.inference.engine.class_windows import (
    FastSettings,
    stitched_class_labels,
)
from voxelprompt.families.vista3d.inference.engine.layout import prepare_network

__all__ = [
    "CellStitcher",
    "RunningArgmax",
    "Window",
    "window_grid",
    "FastSettings",
    "stitched_class_labels",
    "prepare_network",
]

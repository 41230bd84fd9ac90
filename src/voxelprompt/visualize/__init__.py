"""PNG overlays of label maps on a CT: axial, coronal and sagittal slices through one point.

Slices are cut in the RAS-reoriented volume (nibabel's closest canonical orientation) and shown as
a radiologist reads them: axial and coronal with the patient's right on the image's left, sagittal
with anterior on the left; anterior up in axial, superior up in coronal and sagittal. Pixels keep
the voxel aspect ratio, except that a panel thinner than :data:`MIN_PANEL_RATIO` (a thin series'
coronal view) is stretched vertically, which its caption says; each caption names its slice (input
index and RAS+ mm). Labels take the anatomical colours of :func:`voxelprompt.catalog.class_color`;
the PNG's Description holds the captions and legends as text.

``panels``: the three views as pictures; ``figure``: rows of panels with legends, as a PNG;
``labels``: label files over their CT (where to slice, other id schemes).
"""

from __future__ import annotations

from voxelprompt.visualize.figure import MIN_PANEL_RATIO, RowSpec, overlay_figure, overlay_png
from voxelprompt.visualize.labels import default_point, overlay_file, relabel_to_catalog
from voxelprompt.visualize.panels import VIEWS, Panel, overlay_panels

__all__ = [
    "VIEWS",
    "MIN_PANEL_RATIO",
    "Panel",
    "RowSpec",
    "overlay_panels",
    "overlay_figure",
    "overlay_png",
    "overlay_file",
    "default_point",
    "relabel_to_catalog",
]

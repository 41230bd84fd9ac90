"""The three views of an overlay as display-ready pictures: axial, coronal and sagittal slices
through one point of the RAS-reoriented volume, CT windowed and label colours blended in
(orientation rules in :mod:`voxelprompt.visualize`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation

from voxelprompt.catalog import class_color
from voxelprompt.errors import PromptError
from voxelprompt.imageio.grid import align_to_grid
from voxelprompt.types import Volume

__all__ = ["VIEWS", "Panel", "overlay_panels", "panel_rows"]

VIEWS = ("axial", "coronal", "sagittal")
_WINDOW = (-160.0, 240.0)  # abdominal soft-tissue window in HU
_FIXED = {"axial": 2, "coronal": 1, "sagittal": 0}  # RAS axis held constant by each view
_PLANE = {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2)}  # RAS axes shown (across, up)
_WORLD_AXES = "xyz"  # RAS+ mm: x to the patient's left, y posterior -> anterior, z inferior -> superior


@dataclass(frozen=True)
class Panel:
    """One view of an overlay, ready to show.

    Args:
        view: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
        rgb: (H, W, 3) float32 colours in [0, 1], row 0 at the top, column 0 on the left, oriented
            as the module docstring states.
        ids: label values > 0 visible in the slice, ascending.
        pixel_aspect: height / width of one pixel in millimetres.
        marks: (row, column) of the clicks lying in this slice.
        slice_text: which slice is shown: the input voxel index along the held axis and the
            slice's RAS+ position in mm, e.g. ``"k=10, z=-784.5 mm"``.
    """

    view: str
    rgb: np.ndarray
    ids: tuple[int, ...]
    pixel_aspect: float
    marks: tuple[tuple[int, int], ...] = ()
    slice_text: str = ""


def _to_ras(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A view of ``array`` in the closest RAS orientation (no copy) and its voxel -> RAS+ affine."""
    ornt = io_orientation(affine)
    return apply_orientation(array, ornt), affine @ inv_ornt_aff(ornt, array.shape)


def _ras_index(point: Sequence[float], affine: np.ndarray, ras_affine: np.ndarray) -> np.ndarray:
    """Input voxel (i, j, k) -> nearest voxel of the RAS-reoriented array (same world frame)."""
    world = affine @ np.append(np.asarray(point, dtype=float), 1.0)
    return np.rint(np.linalg.solve(ras_affine, world)[:3]).astype(int)


def _plane(ras: np.ndarray, view: str, p: np.ndarray) -> np.ndarray:
    """The ``view`` slice through RAS voxel ``p`` as displayed (row 0 top, column 0 left)."""
    index: list[slice | int] = [slice(None)] * 3
    index[_FIXED[view]] = int(p[_FIXED[view]])
    # Slice axes are (across, up) in increasing R/A/S; the display runs both the other way.
    return np.asarray(ras[tuple(index)])[::-1, ::-1].T


def _display_position(m: np.ndarray, view: str, shape: tuple[int, int, int]) -> tuple[int, int]:
    """(row, column) at which RAS voxel ``m`` appears in the ``view`` panel."""
    across, up = _PLANE[view]
    return int(shape[up] - 1 - m[up]), int(shape[across] - 1 - m[across])


def _blend(ct: np.ndarray, labels: np.ndarray | None, alpha: float) -> tuple[np.ndarray, tuple[int, ...]]:
    """Windowed grey CT with label colours mixed in at ``alpha``; also the label values seen."""
    grey = np.clip((ct.astype(np.float32) - _WINDOW[0]) / (_WINDOW[1] - _WINDOW[0]), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    if labels is None:
        return rgb, ()
    if labels.dtype.kind == "f":
        labels = np.rint(labels)
    labels = labels.astype(np.int64, copy=False)
    values, inverse = np.unique(labels, return_inverse=True)
    table = np.array([class_color(v) if v > 0 else (0, 0, 0) for v in values], dtype=np.float32) / 255.0
    colour = table[inverse.reshape(labels.shape)]
    on = labels > 0
    rgb[on] = (1.0 - alpha) * rgb[on] + alpha * colour[on]
    return rgb, tuple(int(v) for v in values if v > 0)


def _check_point(point: Sequence[float], image: Volume) -> tuple[int, int, int]:
    p = tuple(int(round(float(c))) for c in point)
    if len(p) != 3 or any(not 0 <= c < s for c, s in zip(p, image.shape)):
        raise PromptError(f"point {tuple(point)} is outside the volume of shape {image.shape} (voxel indices i, j, k)")
    return p  # type: ignore[return-value]


def overlay_panels(
    image: Volume,
    labels: Volume | None = None,
    point: Sequence[float] | None = None,
    clicks: Sequence[Sequence[float]] = (),
    alpha: float = 0.5,
) -> tuple[Panel, Panel, Panel]:
    """The three display-ready views through one point: axial, coronal, sagittal.

    Args:
        image: CT in HU, (I, J, K) in on-disk order with its voxel -> RAS+ affine.
        labels: label map on the image's grid (0 = background), or None for the CT alone.
        point: input voxel (i, j, k) the slices pass through (default: the volume centre).
        clicks: input voxels (i, j, k) reported in :attr:`Panel.marks` where they lie in a slice.
        alpha: opacity of the label colours.

    Returns:
        One :class:`Panel` per view, in :data:`VIEWS` order, oriented as the module docstring states.

    Raises:
        InputError: ``labels`` is not on the image's grid.
        PromptError: ``point`` is outside the volume.
    """
    return panel_rows(image, [labels], point, clicks, alpha)[0]


def panel_rows(
    image: Volume,
    label_maps: Sequence[Volume | None],
    point: Sequence[float] | None,
    clicks: Sequence[Sequence[float]],
    alpha: float,
    row_points: Sequence[Sequence[float] | None] = (),
) -> list[tuple[Panel, Panel, Panel]]:
    """Panels for several label maps over one CT (the CT is reoriented once).

    Args:
        label_maps: one label map (or None: the CT alone) per row, on the image's grid.
        row_points: input voxel per row that overrides ``point`` (None: ``point``).
        image, point, clicks, alpha: as in :func:`overlay_panels`.

    Returns:
        Per row, the three :class:`Panel` objects in :data:`VIEWS` order.
    """
    point = tuple(s // 2 for s in image.shape) if point is None else _check_point(point, image)
    label_maps = [None if lab is None else align_to_grid(lab, image) for lab in label_maps]
    ct, ras_affine = _to_ras(np.asarray(image.array), image.affine)
    input_axis = {int(ras): a for a, (ras, _) in enumerate(io_orientation(image.affine))}  # RAS axis -> input axis
    zooms = np.linalg.norm(ras_affine[:3, :3], axis=0)
    marks = [_ras_index(c, image.affine, ras_affine) for c in clicks]
    rows = []
    for r, lab in enumerate(label_maps):
        own = row_points[r] if r < len(row_points) else None
        through = point if own is None else _check_point(own, image)
        p = _ras_index(through, image.affine, ras_affine)
        world = (ras_affine @ np.append(p, 1.0))[:3]
        lab_ras = None if lab is None else _to_ras(np.asarray(lab.array), lab.affine)[0]
        panels = []
        for view in VIEWS:
            ct_plane = _plane(ct, view, p)
            rgb, ids = _blend(ct_plane, None if lab_ras is None else _plane(lab_ras, view, p), alpha)
            fixed = _FIXED[view]
            shown = tuple(_display_position(m, view, ct.shape) for m in marks if m[fixed] == p[fixed])
            across, up = _PLANE[view]
            where = f"{'ijk'[input_axis[fixed]]}={int(through[input_axis[fixed]])}, {_WORLD_AXES[fixed]}={world[fixed]:.1f} mm"
            panels.append(Panel(view, rgb, ids, float(zooms[up] / zooms[across]), shown, where))
        rows.append(tuple(panels))
    return rows  # type: ignore[return-value]

"""Closed boundary polygons of a 2D mask, for contour-based outputs (RT-STRUCT).

Vertices lie on pixel edges, midway between an inside and an outside pixel centre, so filling the
polygons even-odd at pixel centres (as planning systems and plastimatch rasterise) gives back the mask.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mask_contours"]


def mask_contours(mask: np.ndarray) -> list[np.ndarray]:
    """The closed boundaries of a 2D mask: outer boundaries and hole boundaries alike.

    A hole (or an island inside a hole) is one more polygon, nested inside the one around it, so
    an even-odd (XOR) fill of all polygons gives back ``mask``; pixels touching only at a corner
    are separate regions (4-connectivity of the foreground). Collinear vertices are dropped (the
    polygon is unchanged) and the first vertex is not repeated at the end.

    Args:
        mask: (rows, columns) boolean or 0/1 array.

    Returns:
        Polygons as (N, 2) float64 arrays of (row, column) in pixel-index units (pixel centres at
        integers; every vertex has one half-integer coordinate), N >= 4, in a fixed order (the
        same mask always gives the same list). Empty when the mask is empty.

    Raises:
        ValueError: ``mask`` is not 2D.
    """
    from skimage.measure import find_contours

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2D (rows, columns), got shape {mask.shape}")
    if not mask.any():
        return []
    # A zero border closes every boundary; level 0.5 between 0 and 1 puts each vertex midway
    # between two pixel centres, which binary input makes an exact half-integer.
    padded = np.pad(mask.astype(np.uint8), 1)
    polygons = []
    for contour in find_contours(padded, 0.5):
        points = contour[:-1] - 1.0  # closed: the last point repeats the first
        polygons.append(_drop_collinear(points))
    return polygons


def _drop_collinear(points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2), a closed polygon, without vertices on a straight line between their neighbours."""
    before = points - np.roll(points, 1, axis=0)
    after = np.roll(points, -1, axis=0) - points
    turn = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
    return points[turn != 0]

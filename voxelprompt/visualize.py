"""PNG overlays of label maps on a CT: axial, coronal and sagittal slices through one point.

Slices are cut in the RAS-reoriented volume (nibabel's ``as_closest_canonical``), shown in
radiological convention (patient right on the image's left, anterior up in axial, superior up in
coronal and sagittal) with the voxel aspect ratio kept.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from voxelprompt.types import Volume

__all__ = ["overlay_png", "VIEWS"]

VIEWS = ("axial", "coronal", "sagittal")
_WINDOW = (-160.0, 240.0)  # abdominal soft-tissue window in HU


def _canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nibabel's closest-canonical (RAS) reorientation: the array, its voxel sizes, its affine."""
    img = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
    return np.asanyarray(img.dataobj), np.asarray(img.header.get_zooms()[:3], dtype=float), img.affine


def _ras_point(point: Sequence[int], affine: np.ndarray, canonical_affine: np.ndarray) -> np.ndarray:
    """Input voxel -> voxel of the canonical array (both grids share their world frame)."""
    world = affine @ np.append(np.asarray(point, dtype=float), 1.0)
    return np.rint(np.linalg.solve(canonical_affine, world)[:3]).astype(int)


def overlay_png(
    image: Volume,
    labels: Sequence[tuple[str, Volume]],
    path: str | os.PathLike,
    point: Sequence[int] | None = None,
    clicks: Sequence[Sequence[int]] = (),
    title: str = "",
) -> Path:
    """Write one PNG: a row per label map, axial / coronal / sagittal columns through ``point``.

    Args:
        image: CT in HU.
        labels: ``(caption, label map)`` pairs on the image's grid (0 = background).
        path: PNG to write (atomically).
        point: input voxel (i, j, k) the slices pass through (default: the centre).
        clicks: input voxels drawn as crosses where they lie in a shown slice.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    point = tuple(int(s) // 2 for s in image.shape) if point is None else tuple(int(p) for p in point)
    ct, zooms, ras_affine = _canonical(np.asarray(image.array, dtype=np.float32), image.affine)
    p = _ras_point(point, image.affine, ras_affine)
    marks = [_ras_point(c, image.affine, ras_affine) for c in clicks]
    rows = max(1, len(labels))
    fig, axes = plt.subplots(rows, 3, figsize=(12, 4 * rows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for r, (caption, lab) in enumerate(labels or [("", image.with_array(np.zeros(image.shape, np.int32)))]):
        lab_ras, _, _ = _canonical(np.asarray(lab.array).astype(np.int32, copy=False), lab.affine)
        for c, view in enumerate(VIEWS):
            sl, aspect, keep = _slice(view, p, zooms)
            ax = axes[r][c]
            ax.imshow(np.clip(ct[sl], *_WINDOW).T, cmap="gray", origin="lower", aspect=aspect)
            ids = lab_ras[sl].T
            colors = cmap(ids % 10)
            colors[..., 3] = np.where(ids > 0, 0.5, 0.0)
            ax.imshow(colors, origin="lower", aspect=aspect)
            for m in marks:
                if m[keep[0]] == p[keep[0]]:
                    ax.plot(m[keep[1]], m[keep[2]], "y+", markersize=14, markeredgewidth=2)
            if view != "sagittal":
                ax.invert_xaxis()  # radiological: patient right on the left
            ax.set_title(f"{caption} - {view}" if caption else view, fontsize=10)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def _slice(view: str, p: np.ndarray, zooms: np.ndarray) -> tuple[tuple, float, tuple[int, int, int]]:
    """Index of the 2D slice, display aspect (row mm / column mm), and (fixed, x, y) RAS axes."""
    if view == "axial":
        return (slice(None), slice(None), int(p[2])), zooms[1] / zooms[0], (2, 0, 1)
    if view == "coronal":
        return (slice(None), int(p[1]), slice(None)), zooms[2] / zooms[0], (1, 0, 2)
    return (int(p[0]), slice(None), slice(None)), zooms[2] / zooms[1], (0, 1, 2)

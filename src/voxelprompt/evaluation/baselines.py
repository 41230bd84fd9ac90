"""A classical click-driven region grower, the no-network baseline for interactive evaluation.

It answers the same clicks as the models (positive and negative (i, j, k) voxel indices, see
:mod:`voxelprompt.types`) so the evaluation runner can report what a learned model adds.
"""

from __future__ import annotations

from collections.abc import Sequence

import cc3d
import numpy as np

from voxelprompt.errors import InputError, PromptError, VoxelPromptError

__all__ = ["region_grow"]

Coord = Sequence[float]


def _voxel(coord: Coord, shape: tuple[int, ...], kind: str) -> tuple[int, int, int]:
    if len(coord) != 3:
        raise PromptError(f"{kind} click must be (i, j, k), got {tuple(coord)}")
    voxel = tuple(int(round(float(c))) for c in coord)
    if not all(0 <= v < s for v, s in zip(voxel, shape)):
        raise PromptError(f"{kind} click {tuple(coord)} lies outside the volume of shape {shape}")
    return voxel  # type: ignore[return-value]


def _window(center: Sequence[int], size: Sequence[int], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A box of ``size`` voxels around ``center`` (the voxel at index size // 2), clipped to the volume."""
    return tuple(slice(max(c - n // 2, 0), min(c - n // 2 + n, s)) for c, n, s in zip(center, size, shape))


def region_grow(
    image: np.ndarray,
    positive: Sequence[Coord],
    negative: Sequence[Coord] = (),
    *,
    window: int | Sequence[int] = 128,
    half_width: float | None = None,
    k: float = 2.5,
    radius: int = 2,
    connectivity: int = 6,
) -> np.ndarray:
    """Segment the region connected to each positive click whose intensity matches the click's.

    For each positive click, the reference intensity is the mean of the (2 * radius + 1)^3
    neighbourhood around it; voxels within ``mean ± half_width`` (or ``mean ± k * std`` of the
    neighbourhood when ``half_width`` is None) and inside a ``window`` box centred on the click
    are kept if they are connected to the click. The clicked voxel is always kept. The results
    of all positive clicks are united. A negative click splits the component it lies in between
    the clicks: voxels of that component at least as near to a negative click as to every
    positive click are removed (a nearest-seed split, since intensity cannot separate a leak
    from the object), and only pieces still connected to a positive click are kept.

    Args:
        image: (I, J, K) intensities (Hounsfield units for CT).
        positive: (i, j, k) voxel indices of positive clicks; at least one.
        negative: (i, j, k) voxel indices of negative clicks.
        window: edge length in voxels of the box each click may grow in (one int or one per axis).
        half_width: fixed half-width of the intensity range (for example 100 HU); ``None``
            adapts it to the neighbourhood as ``k`` standard deviations.
        k: number of neighbourhood standard deviations when ``half_width`` is None.
        radius: neighbourhood radius in voxels for the reference intensity.
        connectivity: 6, 18 or 26 neighbours for growing and for negative-click removal.

    Returns:
        (I, J, K) bool mask.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise InputError(f"image must be 3D (I, J, K), got shape {image.shape}")
    sizes = (window,) * 3 if np.isscalar(window) else tuple(window)
    if len(sizes) != 3 or any(int(n) < 1 for n in sizes):
        raise VoxelPromptError(f"window must be a positive int or three of them, got {window}")
    sizes = tuple(int(n) for n in sizes)
    if half_width is not None and not half_width >= 0:
        raise VoxelPromptError(f"half_width must be >= 0 or None, got {half_width}")
    if not k >= 0:
        raise VoxelPromptError(f"k must be >= 0, got {k}")
    if radius < 0:
        raise VoxelPromptError(f"radius must be >= 0, got {radius}")
    if connectivity not in (6, 18, 26):
        raise VoxelPromptError(f"connectivity must be 6, 18 or 26, got {connectivity}")
    if len(positive) == 0:
        raise PromptError("region growing needs at least one positive click")
    positives = [_voxel(c, image.shape, "positive") for c in positive]
    negatives = [_voxel(c, image.shape, "negative") for c in negative]

    mask = np.zeros(image.shape, dtype=bool)
    for click in positives:
        neighbourhood = image[_window(click, (2 * radius + 1,) * 3, image.shape)].astype(np.float64)
        center = float(neighbourhood.mean())
        spread = float(half_width) if half_width is not None else k * float(neighbourhood.std())
        box = _window(click, sizes, image.shape)
        crop = image[box]
        in_range = (crop >= center - spread) & (crop <= center + spread)
        local = tuple(c - s.start for c, s in zip(click, box))
        in_range[local] = True
        components = cc3d.connected_components(in_range, connectivity=connectivity)
        mask[box] |= components == components[local]

    if negatives:
        mask = _split_off_negatives(mask, positives, negatives, connectivity)
    return mask


def _split_off_negatives(
    mask: np.ndarray, positives: list[tuple[int, int, int]], negatives: list[tuple[int, int, int]], connectivity: int
) -> np.ndarray:
    components = cc3d.connected_components(mask, connectivity=connectivity)
    touched = sorted({int(components[c]) for c in negatives} - {0})
    if not touched:
        return mask
    region = np.isin(components, touched)
    idx = np.argwhere(region).astype(np.float64)

    def nearest(clicks: list[tuple[int, int, int]]) -> np.ndarray:
        return np.min([((idx - np.asarray(c, dtype=np.float64)) ** 2).sum(axis=1) for c in clicks], axis=0)

    drop = nearest(negatives) <= nearest(positives)
    mask = mask.copy()
    mask[tuple(idx[drop].astype(np.int64).T)] = False
    pieces = cc3d.connected_components(mask, connectivity=connectivity)
    keep = sorted({int(pieces[c]) for c in positives} - {0})
    return np.isin(pieces, keep) if keep else np.zeros_like(mask)

"""Does a volume hold CT Hounsfield units? A cheap, torch-free check run before a CT model.

A CT rescaled to 0..1, a CT stored without its rescale intercept, or an MR given to a CT model
gives a near-empty result without any error; a one-line warning names the likely cause.
"""

from __future__ import annotations

import numpy as np

from voxelprompt.types import Volume

__all__ = ["hounsfield_warning"]

# Percentiles are taken on at most about this many voxels (a regular strided subsample).
_SAMPLE_VOXELS = 1_000_000

# A CT, even a small crop of soft tissue, spans fat (about -100 HU) to tissue and contrast
# (+100 HU and more) between its 1st and 99th percentiles.
_MIN_SPREAD_HU = 100.0

# Air (-1000), lung (-850) and fat (-100) lie below this; a CT of the body holds some of them.
_DARK_HU = -100.0
_MIN_DARK_FRACTION = 0.001

# Robust bounds of body CT: air is -1000 HU (values below it are padding such as -2048 or -3024,
# excluded as the volume's minimum), dense bone about +2000 HU.
_LOWEST_HU = -1200.0
_HIGHEST_HU = 3000.0


def hounsfield_warning(volume: Volume | np.ndarray) -> str | None:
    """A one-line warning when intensities do not look like CT Hounsfield units, else ``None``.

    The rule, on a strided subsample of at most about a million voxels (``p`` = percentile):

    1. not constant (an empty or blank image);
    2. ``p99 - p1 >= 100`` (a CT rescaled to 0..1 or z-scored spans a few units);
    3. at least 0.1 % of voxels below -100 HU: air, lung or fat. MR and PET have no negative
       values, nor has a CT stored without its rescale intercept (air at 0, water at 1024);
    4. ``p1 >= -1200`` once padding (voxels equal to a minimum below -1024) is left out, and
       ``p99 <= 3000`` (air is -1000 HU, dense bone about +2000 HU).

    A crop that holds no fat or air (only liver, say) is warned about by rule 3 although it is a
    CT; the warning is advice, never an error.

    Args:
        volume: an (I, J, K) volume or array of intensities.

    Returns:
        The warning (naming ``volume.source`` for a :class:`~voxelprompt.types.Volume`), or
        ``None`` when the values are plausible HU.
    """
    array = volume.array if isinstance(volume, Volume) else np.asarray(volume)
    prefix = f"{volume.source}: " if isinstance(volume, Volume) else ""
    reason = _reason(_subsample(array))
    if reason is None:
        return None
    return (
        f"{prefix}intensities do not look like CT Hounsfield units: {reason}; "
        "CT models expect HU (air -1000, water 0)"
    )


def _reason(values: np.ndarray) -> str | None:
    if values.size == 0:
        return "the image is empty"
    low, high = float(values.min()), float(values.max())
    if low == high:
        return f"every voxel is {low:g}"
    p1, p99 = (float(v) for v in np.percentile(values, [1, 99]))
    span = f"{p1:.4g}..{p99:.4g} (1st-99th percentile)"
    if p99 - p1 < _MIN_SPREAD_HU:
        return f"values span only {span}, as in a rescaled image"
    if (values < _DARK_HU).mean() < _MIN_DARK_FRACTION:
        return (
            f"almost no values below {_DARK_HU:g} (air, lung, fat) in {span}, as in an MR or PET image "
            "or a CT stored without its rescale intercept"
        )
    body = values[values != low] if low < -1024 else values  # leave out padding
    lowest = float(np.percentile(body, 1)) if body.size else p1
    if lowest < _LOWEST_HU or p99 > _HIGHEST_HU:
        return (
            f"values span {lowest:.4g}..{p99:.4g} (1st-99th percentile), "
            "beyond air (-1000) and dense bone (about +2000)"
        )
    return None


def _subsample(array: np.ndarray) -> np.ndarray:
    """Every s-th voxel along each axis (a view), flattened to float64."""
    if array.size > _SAMPLE_VOXELS and array.ndim > 0:
        stride = int(np.ceil((array.size / _SAMPLE_VOXELS) ** (1.0 / array.ndim)))
        array = array[(slice(None, None, stride),) * array.ndim]
    values = np.asarray(array, dtype=np.float64).ravel()
    return values[np.isfinite(values)]

"""How a client's image array becomes a :class:`~voxelprompt.types.Volume`.

The protocol carries an array ``[C, X, Y, Z]`` and ``image_properties`` (nnInteractive's clients
send only ``spacing``, in the array's axis order). The volume keeps the client's array exactly
as sent (its axes are the volume's i, j, k), so the clients' voxel coordinates, boxes and masks
need no conversion. Its affine, which VISTA3D's left/right classes depend on, comes from:

1. ``image_properties["affine"]``: a 4x4 matrix, array index -> RAS+ mm (voxelprompt extension);
2. else ``image_properties["orientation"]``: three axis codes such as ``"RAS"`` or ``"SPL"``,
   where each array axis points (voxelprompt extension), with ``spacing``;
3. else :data:`DEFAULT_ORIENTATION` ``"SPL"``: what 3D Slicer's ``arrayFromVolume`` gives (the
   array is (k, j, i)) for a volume whose IJK axes point Left, Posterior, Superior, which is how
   Slicer loads an axial CT series (ITK's identity direction in LPS). SlicerNNInteractive sends
   exactly that array with the reversed spacing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from voxelprompt.errors import PromptError
from voxelprompt.types import Volume

__all__ = ["DEFAULT_ORIENTATION", "client_volume", "orientation_affine"]

DEFAULT_ORIENTATION = "SPL"
_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))


def orientation_affine(codes: str, spacing: tuple[float, float, float]) -> np.ndarray:
    """The (4, 4) array index -> RAS+ mm affine of axis ``codes`` (e.g. ``"SPL"``), origin 0.

    Raises:
        PromptError: codes that are not one letter of each of L/R, P/A, I/S.
    """
    import nibabel as nib

    codes = str(codes).upper()
    try:
        ornt = nib.orientations.axcodes2ornt(tuple(codes), labels=_LABELS)
    except Exception:
        ornt = None
    if ornt is None or len(codes) != 3 or np.isnan(ornt).any() or sorted(ornt[:, 0]) != [0, 1, 2]:
        raise PromptError(f"orientation must be three axis codes such as RAS or SPL, got {codes!r}")
    affine = np.eye(4)
    affine[:3, :3] = 0.0
    for axis, (ras, flip) in enumerate(ornt):
        affine[int(ras), axis] = flip * spacing[axis]
    return affine


def client_volume(image: np.ndarray, properties: Mapping[str, Any]) -> Volume:
    """The volume of a ``/set_image`` body (see the module docstring for the affine).

    Args:
        image: (1, X, Y, Z) CT in HU (one channel).
        properties: the request's ``image_properties``.

    Raises:
        PromptError: another shape, a non-numeric array, bad spacing, orientation or affine.
    """
    if image.ndim != 4 or image.shape[0] != 1 or min(image.shape[1:]) < 1:
        raise PromptError(f"the image must be [1, X, Y, Z] (one CT channel), got shape {list(image.shape)}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool):
        raise PromptError(f"the image must be numeric, got {image.dtype}")
    properties = properties if isinstance(properties, Mapping) else {}
    spacing = properties.get("spacing", (1.0, 1.0, 1.0))
    try:
        spacing = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise PromptError(f"image_properties spacing must be three numbers, got {spacing!r}") from None
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise PromptError(f"image_properties spacing must be three positive numbers, got {list(spacing)}")
    if properties.get("affine") is not None:
        try:
            affine = np.asarray(properties["affine"], dtype=np.float64)
        except (TypeError, ValueError):  # strings, objects, ragged rows
            affine = np.full(1, np.nan)
        if affine.shape != (4, 4) or not np.isfinite(affine).all():
            raise PromptError("image_properties affine must be a 4x4 matrix (array index -> RAS+ mm)")
    else:
        affine = orientation_affine(properties.get("orientation") or DEFAULT_ORIENTATION, spacing)
    return Volume(np.asarray(image[0]), affine, source="nnInteractive client image")

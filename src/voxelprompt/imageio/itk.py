"""SimpleITK images as our (i, j, k) arrays with RAS+ affines, and ITK's messages as one line.

ITK arrays are (k, j, i) and its world frame is LPS+ (as DICOM and NRRD); see
:mod:`voxelprompt.types` for ours. SimpleITK is imported where used: NIfTI users never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import contextlib
from collections.abc import Iterator

import numpy as np

from voxelprompt.errors import InputError

if TYPE_CHECKING:
    import SimpleITK as sitk

__all__ = ["LPS_TO_RAS", "itk_affine", "sitk_to_array_affine", "sitk_voxel_type", "itk_warnings_off", "sitk_message"]

# ITK (and DICOM, NRRD) world coordinates are LPS+; flipping x and y gives nibabel's RAS+.
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def sitk_to_array_affine(image: sitk.Image, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(i, j, k) array and voxel -> RAS+ mm affine of a SimpleITK image.

    Args:
        image: a scalar image of any dimension; its array is (k, j, i) and its world LPS+.
        source: name used in messages.

    Returns:
        The array in (i, j, k) order (a view) and a (4, 4) affine; images with fewer than three
        dimensions get an identity affine, for the caller to reject by their dimension.

    Raises:
        InputError: more than one value per voxel.
    """
    import SimpleITK as sitk

    n_components = image.GetNumberOfComponentsPerPixel()
    if n_components != 1:
        raise InputError(f"{source}: expected one value per voxel, got {n_components} components")
    ndim = image.GetDimension()
    array = sitk.GetArrayFromImage(image).transpose(tuple(range(ndim - 1, -1, -1)))
    if ndim < 3:
        return array, np.eye(4)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(ndim, ndim)[:3, :3]
    return array, itk_affine(direction, image.GetSpacing()[:3], image.GetOrigin()[:3])


def itk_affine(direction: np.ndarray, spacing, origin) -> np.ndarray:
    """The (4, 4) voxel index -> RAS+ mm affine of ITK image geometry.

    Args:
        direction: (3, 3) ITK direction matrix (row-major as ITK prints it; column c is where
            index axis c points, in LPS+).
        spacing: three voxel sizes in mm along ITK's index axes (i, j, k).
        origin: the first voxel's centre, LPS+ mm.
    """
    affine_lps = np.eye(4)
    affine_lps[:3, :3] = np.asarray(direction, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)  # column c = spacing[c] * axis c
    affine_lps[:3, 3] = np.asarray(origin, dtype=np.float64)
    return LPS_TO_RAS @ affine_lps


def sitk_voxel_type(reader: sitk.ImageFileReader) -> tuple[np.dtype, int]:
    """numpy dtype of one component, and the number of components, of the image whose
    information ``reader`` has read (before its data is read)."""
    import SimpleITK as sitk

    # A one-voxel image of the same pixel type asks SimpleITK itself for the numpy dtype.
    n_components = reader.GetNumberOfComponents()
    probe = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID(), n_components)
    return np.dtype(sitk.GetArrayViewFromImage(probe).dtype), n_components


@contextlib.contextmanager
def itk_warnings_off() -> Iterator[None]:
    """Silence ITK's warnings on stderr (empty folders, uneven slices): callers raise InputErrors."""
    import SimpleITK as sitk

    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


def sitk_message(err: RuntimeError) -> str:
    """The description line of an ITK exception (which spans several lines from its source location)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if line.lower().startswith("description:"):
            return line.split(":", 1)[1].strip()
    return lines[-1] if lines else type(err).__name__

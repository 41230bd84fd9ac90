"""Write :class:`~voxelprompt.types.Volume` records to NIfTI or NRRD, atomically, and check output paths.

The file gets exactly the volume's shape and affine; it appears under its final name only once
fully written (temporary file in the same folder, then ``os.replace``). A missing output folder
is created, as TotalSegmentator, nnU-Net and MONAI's writers do.
"""

from __future__ import annotations

import contextlib
import logging
import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from voxelprompt.errors import InputError
from voxelprompt.imageio.itk import LPS_TO_RAS, sitk_message
from voxelprompt.imageio.readers import NIFTI_SUFFIXES, _suffix
from voxelprompt.types import Volume

__all__ = [
    "write_volume",
    "write_text",
    "atomic_output",
    "check_output_path",
    "check_output_folder",
    "NIFTI_XFORM_CODE",
    "IMAGE_SUFFIXES",
]

logger = logging.getLogger(__name__)

# sform and qform code written to NIfTI files: 1 = scanner-based anatomical coordinates. Our
# affines are the scanner frame of the input (DICOM patient coordinates, or the input file's own
# frame); readers (nibabel, ITK, MONAI) treat codes 1 and 2 alike.
NIFTI_XFORM_CODE = 1

# What write_volume writes (.nhdr is read but not written: header and data cannot be replaced
# in one step).
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd")

# int64 arrays (torch's default) are narrowed to the first of these that holds their range:
# nibabel refuses int64 by default and many viewers cannot show it.
_NARROW_INT_DTYPES = (np.uint8, np.int16, np.int32)


def check_output_path(
    path: str | os.PathLike, suffixes: Sequence[str] = IMAGE_SUFFIXES, inputs: Sequence[str | os.PathLike] = ()
) -> Path:
    """Check that an output file can be written, before any expensive work; create its folder.

    Cheap and side-effect free apart from creating a missing parent folder (``mkdir -p``): the
    folder is probed by creating and removing a uniquely named hidden file in it.

    Args:
        path: the output file.
        suffixes: accepted endings, compared case-insensitively (``.nii.gz`` before ``.gz``).
        inputs: files (or folders) the command reads; writing over one of them is refused.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InputError: a path that is an existing folder or one of ``inputs``, an ending not in
            ``suffixes``, a parent folder that cannot be created, or a folder that cannot be
            written (read-only file system, no permission).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file in it, such as {path / ('seg' + suffixes[0])}")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise InputError(f"{path}: is the input image; give another output file (the input is never overwritten)")
    _check_suffix(path, suffixes)
    _prepare_folder(path)
    return path


def check_output_folder(folder: str | os.PathLike) -> Path:
    """Check that files can be written into ``folder`` before any expensive work; create it.

    Raises:
        InputError: ``folder`` is a file, cannot be created, or cannot be written.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file; give a folder for the outputs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{folder}: cannot create output folder ({_reason(err)})") from err
    _probe(folder, f"{folder}: cannot write into this folder")
    return folder


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def write_volume(volume: Volume, path: str | os.PathLike, dtype: np.dtype | type | None = None) -> Path:
    """Write ``volume`` to ``path`` with its exact shape and affine.

    NIfTI files get the affine as both sform and qform (code :data:`NIFTI_XFORM_CODE`) and no
    intensity scaling; NRRD files (gzip-compressed) get the affine as LPS+ space directions and
    origin. The affine is stored in float32 by NIfTI and as text by NRRD.

    Args:
        volume: (I, J, K) array in on-disk order with a voxel -> RAS+ mm affine.
        path: ``.nii``, ``.nii.gz`` or ``.nrrd``; an existing file is replaced, a missing
            folder created.
        dtype: on-disk voxel type; ``None`` keeps the array's dtype, except that bool becomes
            uint8 and 64-bit integers the smallest of uint8, int16, int32 that holds the values.
            Floats cast to an integer type are rounded; values must fit the target type.

    Returns:
        The path written.

    Raises:
        InputError: unknown extension, values that do not fit ``dtype``, or the file or its
            folder cannot be written.
    """
    path = Path(path)
    name = path.name.lower()
    _check_suffix(path, IMAGE_SUFFIXES)
    array = _cast(volume.array, dtype, path)
    _prepare_folder(path)
    suffix = ".nii.gz" if name.endswith(".nii.gz") else path.suffix
    # Hidden name with the real extension, so nibabel/ITK pick the same format and compression.
    tmp = path.parent / f".{path.name[: -len(suffix)]}.{secrets.token_hex(4)}.tmp{suffix}"
    try:
        if name.endswith(NIFTI_SUFFIXES):
            _write_nifti(array, volume.affine, tmp)
        else:
            _write_nrrd(array, volume.affine, tmp)
        os.replace(tmp, path)
    except BaseException as err:
        _remove_quietly(tmp)
        if isinstance(err, OSError):
            raise InputError(f"{path}: cannot write file ({_reason(err)})") from err
        if isinstance(err, RuntimeError):  # ITK
            raise InputError(f"{path}: cannot write file ({sitk_message(err)})") from err
        raise
    logger.debug("wrote %s %s %s", path, array.shape, array.dtype)
    return path


def _write_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    affine = np.asarray(affine, dtype=np.float64)
    image = nib.Nifti1Image(array, affine, dtype=array.dtype)
    header = image.header
    header.set_sform(affine, code=NIFTI_XFORM_CODE)
    header.set_qform(affine, code=NIFTI_XFORM_CODE)
    header.set_xyzt_units(xyz="mm", t="sec")
    # The array already has the on-disk dtype: store values as they are, without scaling.
    header.set_slope_inter(1.0, 0.0)
    nib.save(image, path)


def _write_nrrd(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk

    affine_lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)  # the flip is its own inverse
    spacing = np.linalg.norm(affine_lps[:3, :3], axis=0)
    # SimpleITK arrays are (k, j, i).
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(spacing.tolist())
    image.SetDirection((affine_lps[:3, :3] / spacing).ravel().tolist())
    image.SetOrigin(affine_lps[:3, 3].tolist())
    sitk.WriteImage(image, str(path), useCompression=True)


def _cast(array: np.ndarray, dtype: np.dtype | type | None, path: Path) -> np.ndarray:
    if dtype is None:
        if array.dtype.kind == "b":
            return array.astype(np.uint8)
        if array.dtype == np.float16:  # not a NIfTI type
            return array.astype(np.float32)
        if array.dtype.kind in "iu" and array.dtype.itemsize == 8:
            return _narrow_int(array, path)
        return array
    target = np.dtype(dtype)
    if target == array.dtype:
        return array
    if target.kind in "iu" and array.size:
        values = np.rint(array) if array.dtype.kind == "f" else array
        info = np.iinfo(target)
        low, high = values.min(), values.max()
        if low < info.min or high > info.max:
            raise InputError(f"{path}: values {low}..{high} do not fit in {target}")
        return values.astype(target)
    return array.astype(target)


def _narrow_int(array: np.ndarray, path: Path) -> np.ndarray:
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for candidate in _NARROW_INT_DTYPES:
        info = np.iinfo(candidate)
        if info.min <= low and high <= info.max:
            return array.astype(candidate)
    raise InputError(f"{path}: integer values {low}..{high} do not fit in int32; pass dtype explicitly")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (JSON, Markdown, CSV) atomically: hidden temporary file, then rename.

    Args:
        path: the file; a missing folder is created.
        text: the content (UTF-8).

    Returns:
        The path written.

    Raises:
        InputError: the file or its folder cannot be written.
    """
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A hidden temporary path beside ``path`` that replaces ``path`` when the block succeeds.

    The folder is created and probed first; if the block raises, the temporary file is removed and
    ``path`` is left as it was.

    Args:
        path: the final file.
        suffix: ending of the temporary name, for writers that choose a format by it (``".nrrd"``).

    Yields:
        The temporary path to write to.

    Raises:
        InputError: the folder cannot be written, or an ``OSError`` while writing or renaming.
    """
    path = Path(path)
    _prepare_folder(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        _remove_quietly(tmp)
        if isinstance(err, OSError):
            raise InputError(f"{path}: cannot write file ({_reason(err)})") from err
        raise


def _check_suffix(path: Path, suffixes: Sequence[str]) -> None:
    if not path.name.lower().endswith(tuple(suffix.lower() for suffix in suffixes)):
        raise InputError(f"{path}: unknown output extension {_suffix(path)!r}; expected {', '.join(suffixes)}")


def _prepare_folder(path: Path) -> None:
    """Refuse a path that is a folder, create a missing parent, and probe that it is writable.

    The probe gives the same one-line message on a read-only folder for every writer (nibabel,
    ITK and plain files each word it differently, ITK with its own prefix).
    """
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name")
    _make_parent(path.parent, path)
    _probe(path.parent, f"{path}: cannot write into folder {path.parent}")


def _probe(folder: Path, message: str) -> None:
    """Create and remove a uniquely named hidden file in ``folder``; InputError(``message``) if not."""
    probe = folder / f".{secrets.token_hex(8)}.voxelprompt-write-test"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR) and folder.is_dir():  # /proc, /sys: no new files there
            raise InputError(f"{message} (it takes no new files: not a place for output)") from err
        raise InputError(f"{message} ({_reason(err)})") from err
    _remove_quietly(probe)


def _make_parent(folder: Path, path: Path) -> None:
    if folder.is_dir():
        return
    if folder.exists():
        raise InputError(f"{path}: output folder {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{path}: cannot create output folder {folder} ({_reason(err)})") from err
    logger.info("created output folder %s", folder)


def _remove_quietly(path: Path) -> None:
    # The temporary file may never have been created (read-only or vanished folder), and removing
    # it can fail the same way: the error worth reporting is the one that got us here.
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _reason(err: OSError) -> str:
    """``"read-only file system"`` for EROFS: the errno's text, lower-case first letter."""
    text = err.strerror or " ".join(str(err).split()) or type(err).__name__
    return text[:1].lower() + text[1:]

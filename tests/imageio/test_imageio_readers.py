"""Tests for voxelprompt.imageio.readers: parity with MONAI, DICOM geometry, and bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from shared_paths import shared_file
import SimpleITK as sitk

from voxelprompt.errors import InputError
from voxelprompt.imageio import read_labels, read_volume
from voxelprompt.types import Volume


def _nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(array, np.diag([2.0, 2.0, 3.0, 1.0]) if affine is None else affine), path)
    return path


def _scaled_copy(ct_path: Path, tmp_path: Path) -> Path:
    image = nib.load(ct_path)
    raw = np.asanyarray(image.dataobj).astype(np.int16)
    out = nib.Nifti1Image(raw, image.affine, header=image.header)
    out.header.set_slope_inter(0.5, -10.0)
    path = tmp_path / "ct_scaled.nii.gz"
    nib.save(out, path)
    return path


def _uncompressed_copy(ct_path: Path, tmp_path: Path) -> Path:
    path = tmp_path / "ct.nii"
    nib.save(nib.load(ct_path), path)
    return path


@pytest.mark.parametrize("variant", ["ras", "lps", "scaled", "uncompressed"])
def test_nifti_matches_monai_load_image(variant, ct_path, lps_ct_path, tmp_path):
    from monai.transforms import LoadImage

    path = {
        "ras": lambda: ct_path,
        "lps": lambda: lps_ct_path,
        "scaled": lambda: _scaled_copy(ct_path, tmp_path),
        "uncompressed": lambda: _uncompressed_copy(ct_path, tmp_path),
    }[variant]()
    ours = read_volume(path)
    theirs = LoadImage(image_only=True)(str(path))

    assert ours.array.dtype == np.float32
    np.testing.assert_array_equal(ours.array, theirs.numpy())
    np.testing.assert_array_equal(ours.affine, theirs.affine.numpy())
    assert ours.source == str(path)


def test_lps_copy_holds_the_same_voxels(ct_path, lps_ct_path):
    ras, lps = read_volume(ct_path), read_volume(lps_ct_path)
    assert lps.orientation == "LPS"
    np.testing.assert_array_equal(lps.array, ras.array[::-1, ::-1, :])
    # Voxel (0, 0, k) of the RAS copy is voxel (I-1, J-1, k) of the LPS copy: the same point.
    corner = np.array(lps.shape) - [1, 1, lps.shape[2]]
    np.testing.assert_allclose(lps.voxel_to_world(corner), ras.voxel_to_world([0, 0, 0]), atol=1e-4)

def test_dicom_series_is_on_the_label_grid(dicom_dir, dicom_seg_path):
    volume = read_volume(dicom_dir)
    seg = nib.load(dicom_seg_path)

    assert volume.shape == seg.shape == (512, 512, 20)
    assert volume.array.dtype == np.float32
    # ITK index order keeps DICOM rows as stored (LPS); the label file, converted by dcm2niix,
    # stores them flipped (LAS). Same voxel centres: flip j of the labels and the affines agree.
    assert volume.orientation == "LPS"
    assert "".join(nib.aff2axcodes(seg.affine)) == "LAS"
    flip_j = np.array([[1, 0, 0, 0], [0, -1, 0, seg.shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
    np.testing.assert_allclose(volume.affine, seg.affine @ flip_j, atol=1e-3)
    # HU are rescaled (air about -1000) and the flipped labels lie inside the body.
    assert volume.array.min() < -900
    labels = np.asanyarray(seg.dataobj)[:, ::-1, :] > 0
    assert (volume.array[labels] > -300).mean() > 0.95


def test_read_labels_keeps_integer_dtype(dicom_seg_path):
    labels = read_labels(dicom_seg_path)
    assert labels.array.dtype == np.uint8
    assert isinstance(labels, Volume)
    np.testing.assert_array_equal(labels.array, np.asanyarray(nib.load(dicom_seg_path).dataobj))


def test_read_labels_restores_integers_from_floats(tmp_path):
    path = _nifti(tmp_path / "labels.nii.gz", np.array([0, 1, 300, 2], np.float32).reshape(1, 2, 2))
    labels = read_labels(path)
    assert labels.array.dtype == np.int16
    np.testing.assert_array_equal(labels.array.ravel(), [0, 1, 300, 2])


def test_read_labels_rejects_fractional_values(tmp_path):
    path = _nifti(tmp_path / "probs.nii.gz", np.full((2, 2, 2), 0.5, np.float32))
    with pytest.raises(InputError, match="non-integer"):
        read_labels(path)


def test_read_volume_dtype_option(ct_path):
    assert read_volume(ct_path, dtype=None).array.dtype == np.int16
    assert read_volume(ct_path, dtype=np.float64).array.dtype == np.float64


def test_nrrd_read_matches_simpleitk_geometry(ct_path, tmp_path):
    image = sitk.ReadImage(str(ct_path))
    path = tmp_path / "ct.nrrd"
    sitk.WriteImage(image, str(path))
    volume = read_volume(path)
    np.testing.assert_array_equal(volume.array, sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    np.testing.assert_allclose(volume.affine, nib.load(ct_path).affine, atol=1e-4)


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_singleton_fourth_dimension_is_squeezed(suffix, tmp_path):
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4, 1)
    path = tmp_path / f"vol4d{suffix}"
    if suffix == ".nrrd":
        sitk.WriteImage(sitk.GetImageFromArray(array.transpose(3, 2, 1, 0).copy(), isVector=False), str(path))
    else:
        _nifti(path, array)
    volume = read_volume(path)
    assert volume.shape == (2, 3, 4)
    np.testing.assert_array_equal(volume.array, array[..., 0])


# ---- bad inputs: each raises InputError with a one-line message naming the file ----------------


def _missing(tmp_path):
    return tmp_path / "nope.nii.gz"


def _random_nifti(tmp_path):
    path = tmp_path / "random.nii"
    path.write_bytes(np.random.default_rng(0).bytes(2000))
    return path


def _random_nifti_gz(tmp_path):
    path = tmp_path / "random.nii.gz"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    return path


def _random_nrrd(tmp_path):
    path = tmp_path / "random.nrrd"
    path.write_bytes(np.random.default_rng(2).bytes(2000))
    return path


def _truncated_nifti_gz(tmp_path):
    source = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    data = source.read_bytes()
    path = tmp_path / "truncated.nii.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


def _two_d(tmp_path):
    return _nifti(tmp_path / "slice.nii.gz", np.zeros((4, 5), np.float32))


def _four_d(tmp_path):
    return _nifti(tmp_path / "series.nii.gz", np.zeros((4, 5, 6, 2), np.float32))


def _nan_values(tmp_path):
    array = np.zeros((4, 5, 6), np.float32)
    array[1, 2, 3] = np.nan
    return _nifti(tmp_path / "nan.nii.gz", array)


def _zero_spacing_sform(tmp_path):
    image = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), None)
    image.header.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=2)  # nibabel refuses it as a qform
    image.header.set_qform(None, code=0)
    path = tmp_path / "flat.nii.gz"
    nib.save(image, path)
    return path


def _bad_pixdim(value):
    def make(tmp_path):
        image = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), None)
        image.header.set_sform(None, code=0)
        image.header.set_qform(None, code=0)
        image.header["pixdim"][1:4] = [1.0, value, 1.0]
        path = tmp_path / f"pixdim_{value:g}.nii"
        nib.save(image, path)
        return path

    return make


def _empty_dicom_folder(tmp_path):
    folder = tmp_path / "empty_series"
    folder.mkdir()
    return folder


def _folder_without_dicom(tmp_path):
    folder = tmp_path / "not_dicom"
    folder.mkdir()
    (folder / "notes.txt").write_text("no images here\n")
    return folder


def _dicom_missing_slice(tmp_path):
    source = shared_file("data", "totalseg", "example_ct_dicom")
    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(source))
    folder = tmp_path / "gap_series"
    folder.mkdir()
    for i, name in enumerate(files):
        if i != len(files) // 2:
            shutil.copy(name, folder)
    return folder


def _unknown_extension(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n")
    return path


BAD_INPUTS = {
    "missing file": (_missing, "not found"),
    "random bytes .nii": (_random_nifti, "cannot read"),
    "random bytes .nii.gz": (_random_nifti_gz, "cannot read"),
    "random bytes .nrrd": (_random_nrrd, "cannot read"),
    "truncated .nii.gz": (_truncated_nifti_gz, "cannot read"),
    "2D data": (_two_d, "2D"),
    "4D data": (_four_d, "4D"),
    "NaN values": (_nan_values, "NaN"),
    "zero spacing (sform)": (_zero_spacing_sform, "spacing must be positive"),
    "zero spacing (pixdim)": (_bad_pixdim(0.0), "spacing must be positive"),
    "negative spacing (pixdim)": (_bad_pixdim(-2.0), "spacing must be positive"),
    "empty DICOM folder": (_empty_dicom_folder, "no DICOM series"),
    "folder without DICOM": (_folder_without_dicom, "no DICOM series"),
    "DICOM slice missing": (_dicom_missing_slice, "not evenly spaced"),
    "unknown extension": (_unknown_extension, "unknown image extension '.png'"),
}


@pytest.mark.parametrize("reader", [read_volume, read_labels], ids=["read_volume", "read_labels"])
@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_raises_input_error(case, reader, tmp_path):
    make, words = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(InputError) as info:
        reader(path)
    message = str(info.value)
    assert words in message
    assert str(path) in message
    assert "\n" not in message


def test_folder_with_two_series_needs_a_series_uid(dicom_dir, tmp_path):
    import pydicom

    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(dicom_dir))
    folder = tmp_path / "two_series"
    folder.mkdir()
    # The example is anonymised (empty series UID): give it one, and add a 3-slice second series
    # as a scout or a second reconstruction would be.
    uid, other = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    for i, name in enumerate(files):
        ds = pydicom.dcmread(name)
        ds.SeriesInstanceUID = uid
        ds.save_as(folder / f"first_{i:02d}.dcm")
        if i < 3:
            ds.SeriesInstanceUID = other
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.3.{i}"
            ds.save_as(folder / f"second_{i}.dcm")

    with pytest.raises(InputError, match="2 DICOM series"):
        read_volume(folder)
    assert read_volume(folder, series_uid=uid).shape == (512, 512, 20)
    assert read_volume(str(folder), series_uid=other).shape == (512, 512, 3)
    with pytest.raises(InputError, match="no DICOM series '1.2.3'"):
        read_volume(folder, series_uid="1.2.3")

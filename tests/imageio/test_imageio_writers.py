"""Tests for voxelprompt.imageio.writers: exact round trips, label output on DICOM grids, atomicity."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from voxelprompt.errors import InputError
from voxelprompt.imageio import atomic_output, read_labels, read_volume, write_volume
from voxelprompt.imageio import writers
from voxelprompt.types import Volume


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd"])
@pytest.mark.parametrize("orientation", ["ras", "lps"])
def test_round_trip_keeps_grid_and_values(orientation, suffix, ct_path, lps_ct_path, tmp_path):
    volume = read_volume(ct_path if orientation == "ras" else lps_ct_path)
    out = write_volume(volume, tmp_path / f"out{suffix}")
    back = read_volume(out)

    assert out == tmp_path / f"out{suffix}"
    assert back.shape == volume.shape
    np.testing.assert_allclose(back.affine, volume.affine, rtol=0, atol=1e-5)
    assert back.orientation == volume.orientation == orientation.upper()
    np.testing.assert_array_equal(back.array, volume.array)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == [f"out{suffix}"]


def test_round_trip_keeps_stored_dtype(ct_path, tmp_path):
    volume = read_volume(ct_path, dtype=None)
    for suffix in (".nii.gz", ".nrrd"):
        back = read_volume(write_volume(volume, tmp_path / f"ct{suffix}"), dtype=None)
        assert back.array.dtype == np.int16
        np.testing.assert_array_equal(back.array, volume.array)


def test_nifti_header_holds_affine_as_sform_and_qform(ct_path, tmp_path):
    volume = read_volume(ct_path)
    header = nib.load(write_volume(volume, tmp_path / "ct.nii.gz")).header
    assert int(header["sform_code"]) == int(header["qform_code"]) == writers.NIFTI_XFORM_CODE
    np.testing.assert_allclose(header.get_sform(), volume.affine, atol=1e-5)
    np.testing.assert_allclose(header.get_qform(), volume.affine, atol=1e-5)
    assert header.get_xyzt_units()[0] == "mm"


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_labels_for_dicom_input_lie_on_the_input_grid(suffix, dicom_dir, dicom_seg_path, tmp_path):
    image = read_volume(dicom_dir)
    # Put the reference labels on the DICOM grid (the label file stores rows flipped, see readers test).
    labels = image.with_array(np.ascontiguousarray(read_labels(dicom_seg_path).array[:, ::-1, :]))
    out = write_volume(labels, tmp_path / f"labels{suffix}")

    back = read_labels(out)
    assert back.array.dtype == np.uint8
    assert back.shape == image.shape
    np.testing.assert_allclose(back.affine, image.affine, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(back.array, labels.array)
    if suffix == ".nii.gz":
        on_disk = nib.load(out)
        assert on_disk.shape == image.shape
        np.testing.assert_allclose(on_disk.affine, image.affine, rtol=0, atol=1e-5)
    else:
        on_disk = sitk.ReadImage(str(out))
        reference = sitk.ImageSeriesReader()
        reference.SetFileNames(reference.GetGDCMSeriesFileNames(str(dicom_dir)))
        series = reference.Execute()
        np.testing.assert_allclose(on_disk.GetOrigin(), series.GetOrigin(), atol=1e-5)
        np.testing.assert_allclose(on_disk.GetSpacing(), series.GetSpacing(), atol=1e-5)
        np.testing.assert_allclose(on_disk.GetDirection(), series.GetDirection(), atol=1e-6)


def _tiny(array: np.ndarray) -> Volume:
    return Volume(array=array, affine=np.diag([0.5, 0.7, 2.0, 1.0]))


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([0, 1, 2, 3], np.int64), np.uint8),
        (np.array([0, -1, 200, 3], np.int64), np.int16),
        (np.array([0, 1, 0, 1], bool), np.uint8),
        (np.array([0.5, 1, 2, 3], np.float64), np.float64),
    ],
)
def test_default_dtype(array, expected, tmp_path):
    out = write_volume(_tiny(array.reshape(1, 2, 2)), tmp_path / "small.nii.gz")
    assert nib.load(out).get_data_dtype() == expected
    np.testing.assert_array_equal(read_volume(out, dtype=None).array.ravel(), array.astype(expected))


def test_explicit_dtype_rounds_and_checks_range(tmp_path):
    volume = _tiny(np.array([0.2, 1.7, 2.0, 254.6], np.float32).reshape(1, 2, 2))
    out = write_volume(volume, tmp_path / "rounded.nrrd", dtype=np.uint8)
    np.testing.assert_array_equal(read_labels(out).array.ravel(), [0, 2, 2, 255])
    with pytest.raises(InputError, match="do not fit in int8"):
        write_volume(volume, tmp_path / "small.nii.gz", dtype=np.int8)
    assert not list(tmp_path.glob("small*"))


@pytest.mark.parametrize("name", ["out.png", "out.nhdr", "out", "out.nii.zip"])
def test_unknown_extension_raises(name, tmp_path):
    with pytest.raises(InputError, match="unknown output extension") as info:
        write_volume(_tiny(np.zeros((2, 2, 2), np.float32)), tmp_path / name)
    assert name in str(info.value)
    assert not list(tmp_path.iterdir())


def test_missing_output_folder_is_created(tmp_path):
    # As TotalSegmentator, nnU-Net and MONAI's writers do (mkdir -p).
    target = tmp_path / "new" / "deeper" / "out.nii.gz"
    write_volume(_tiny(np.ones((2, 2, 2), np.float32)), target)
    np.testing.assert_array_equal(read_volume(target).array, np.ones((2, 2, 2)))
    assert [p.name for p in target.parent.iterdir()] == ["out.nii.gz"]


def _crash_nifti(monkeypatch, error):
    def save(image, filename):
        Path(filename).write_bytes(b"partial header")  # something on disk, then the failure
        raise error

    monkeypatch.setattr(writers.nib, "save", save)


def _crash_nrrd(monkeypatch, error):
    def write(image, filename, useCompression=False):
        Path(filename).write_bytes(b"NRRD0004\npartial")
        raise error

    import SimpleITK

    monkeypatch.setattr(SimpleITK, "WriteImage", write)


@pytest.mark.parametrize(
    ("suffix", "crash"), [(".nii.gz", _crash_nifti), (".nii", _crash_nifti), (".nrrd", _crash_nrrd)]
)
@pytest.mark.parametrize(
    ("error", "raised"),
    [(OSError(28, "No space left on device"), InputError), (RuntimeError("ITK failed"), InputError),
     (KeyboardInterrupt(), KeyboardInterrupt)],
    ids=["oserror", "runtimeerror", "interrupt"],
)
def test_failed_write_leaves_no_file(suffix, crash, error, raised, tmp_path, monkeypatch):
    crash(monkeypatch, error)
    with pytest.raises(raised):
        write_volume(_tiny(np.ones((2, 3, 4), np.float32)), tmp_path / f"out{suffix}")
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "out.nii.gz"
    write_volume(_tiny(np.ones((2, 3, 4), np.float32)), target)
    before = target.read_bytes()
    _crash_nifti(monkeypatch, OSError(28, "No space left on device"))
    with pytest.raises(InputError, match="no space left on device") as info:
        write_volume(_tiny(np.zeros((2, 3, 4), np.float32)), target)
    assert str(target) in str(info.value)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.nii.gz"]


def test_atomic_output_replaces_only_on_success(tmp_path):
    target = tmp_path / "out" / "table.csv"
    with atomic_output(target, suffix=".csv") as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and tmp.name.endswith(".csv")
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError, match="writer failed"):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]

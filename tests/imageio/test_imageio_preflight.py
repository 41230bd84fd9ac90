"""Tests for voxelprompt.imageio.preflight: headers that claim more than the file holds, or than
memory allows, or an empty axis, are refused before anything is allocated."""

from __future__ import annotations

import gzip
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from voxelprompt.errors import InputError
from voxelprompt.imageio import preflight, read_labels, read_volume

# A refused header costs no allocation and no decompression of the claimed size.
FAST_S = 2.0


def _nifti_bytes(shape: tuple[int, ...], array_shape: tuple[int, ...] = (16, 16, 8)) -> bytes:
    """A valid small int16 .nii file (4 KB of data) whose header then states ``shape``."""
    array = np.arange(np.prod(array_shape), dtype=np.int16).reshape(array_shape, order="F")
    image = nib.Nifti1Image(array, np.diag([2.0, 2.0, 3.0, 1.0]))
    image.update_header()
    header = image.header.copy()
    data = array.tobytes(order="F")
    header.set_data_offset(352)
    header["dim"][0] = len(shape)
    header["dim"][1 : 1 + len(shape)] = shape
    return header.binaryblock + b"\0" * 4 + data


def _nifti_file(tmp_path: Path, name: str, shape: tuple[int, ...]) -> Path:
    path = tmp_path / name
    raw = _nifti_bytes(shape)
    path.write_bytes(gzip.compress(raw) if name.endswith(".gz") else raw)
    return path


def _refused(path: Path, reader=read_volume, **kwargs) -> str:
    start = time.perf_counter()
    with pytest.raises(InputError) as info:  # a MemoryError is not an InputError: it fails here
        reader(path, **kwargs)
    assert time.perf_counter() - start < FAST_S
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


@pytest.mark.parametrize("reader", [read_volume, read_labels], ids=["read_volume", "read_labels"])
def test_nii_header_larger_than_file(reader, tmp_path):
    path = _nifti_file(tmp_path, "x.nii", (20000, 20000, 20000))
    assert path.stat().st_size == 352 + 4096  # header, extension flag, data
    message = _refused(path, reader)
    assert message == (
        f"{path}: the file holds 4.4 KB but its header describes 20000x20000x20000 int16 voxels "
        "(16.0 TB): truncated or corrupt header"
    )


def test_nii_gz_header_larger_than_its_decompressed_data(tmp_path):
    path = _nifti_file(tmp_path, "x.nii.gz", (20000, 20000, 20000))
    message = _refused(path)
    assert "the file holds 4.4 KB decompressed but its header describes 20000x20000x20000 int16 voxels" in message


def test_nii_slightly_larger_header_is_refused_by_size_not_memory(tmp_path):
    # One slice more than the file holds: well within memory, still refused before reading.
    path = _nifti_file(tmp_path, "x.nii", (16, 16, 9))
    assert "truncated or corrupt header" in _refused(path)


def _multi_member(raw: bytes, parts: int = 3) -> bytes:
    """gzip members concatenated (as bgzip and parallel compressors write): ISIZE is the last's."""
    cuts = np.linspace(0, len(raw), parts + 1).astype(int)
    return b"".join(gzip.compress(raw[a:b]) for a, b in zip(cuts[:-1], cuts[1:]))


def test_multi_member_gzip_is_counted_by_streaming(tmp_path):
    good = tmp_path / "good.nii.gz"
    good.write_bytes(_multi_member(_nifti_bytes((16, 16, 8))))
    assert preflight._gzip_trailer_size(good) != len(_nifti_bytes((16, 16, 8)))  # the cheap check disagrees
    volume = read_volume(good, dtype=None)  # and the streaming count accepts it
    assert volume.shape == (16, 16, 8)
    np.testing.assert_array_equal(volume.array.ravel(order="F"), np.arange(16 * 16 * 8))

    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(_multi_member(_nifti_bytes((20000, 20000, 20000))))
    assert "4.4 KB decompressed but its header describes 20000x20000x20000" in _refused(bad)


def test_gzip_cut_short_is_a_truncated_file(tmp_path):
    path = tmp_path / "cut.nii.gz"
    path.write_bytes(gzip.compress(_nifti_bytes((16, 16, 8)))[:-200])
    assert "cannot read NIfTI file (the compressed data ends after" in _refused(path)


@pytest.mark.parametrize("name", ["x.nii", "x.nii.gz"])
def test_nifti_empty_axis_names_the_header_shape(name, tmp_path):
    path = _nifti_file(tmp_path, name, (64, 64, 0))
    assert _refused(path) == f"{path}: header shape (64, 64, 0) has an empty axis (k has 0 voxels)"


def test_nifti_empty_first_axis(tmp_path):
    path = _nifti_file(tmp_path, "x.nii", (0, 64, 3))
    assert _refused(path).endswith("header shape (0, 64, 3) has an empty axis (i has 0 voxels)")


def _nrrd(tmp_path: Path, name: str, sizes: str | None = None, compress: bool = False) -> Path:
    """A 6x5x4 int16 NRRD (attached or detached), its sizes line optionally replaced."""
    path = tmp_path / name
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16)), str(path), useCompression=compress)
    if sizes is not None:
        raw = path.read_bytes()
        assert b"sizes: 6 5 4\n" in raw
        path.write_bytes(raw.replace(b"sizes: 6 5 4\n", f"sizes: {sizes}\n".encode(), 1))
    return path


def test_raw_nrrd_header_larger_than_file(tmp_path):
    path = _nrrd(tmp_path, "x.nrrd", sizes="20000 20000 20000")
    message = _refused(path)
    assert message == (
        f"{path}: the file holds 240 B but its header describes 20000x20000x20000 int16 voxels (16.0 TB): "
        "truncated or corrupt header"
    )


def test_detached_raw_nrrd_data_file_too_small(tmp_path):
    path = _nrrd(tmp_path, "x.nhdr", sizes="6 5 40")
    data_files = [p for p in tmp_path.iterdir() if p != path]
    assert len(data_files) == 1
    message = _refused(path)
    expected = f"its data file {data_files[0].name} holds 240 B but its header describes 6x5x40 int16 voxels (2.4 KB)"
    assert expected in message


def test_compressed_nrrd_claiming_more_than_memory(tmp_path):
    path = _nrrd(tmp_path, "x.nrrd", sizes="20000 20000 20000", compress=True)
    message = _refused(path)
    assert "header shape 20000x20000x20000 needs 32.0 TB of memory as float32, more than the" in message


def test_nrrd_empty_axis_names_the_header_shape(tmp_path):
    path = _nrrd(tmp_path, "x.nrrd", sizes="64 64 0")
    assert _refused(path) == f"{path}: header shape (64, 64, 0) has an empty axis (k has 0 voxels)"


def test_valid_files_pass_the_checks(ct_path, tmp_path):
    raw_nrrd = _nrrd(tmp_path, "ok.nrrd")
    assert read_volume(raw_nrrd).shape == (6, 5, 4)
    assert read_volume(_nrrd(tmp_path, "ok.nhdr")).shape == (6, 5, 4)
    assert read_volume(ct_path).shape == (122, 101, 30)


@pytest.mark.parametrize("kind", ["nifti", "nrrd", "dicom"])
def test_volume_larger_than_available_memory(kind, ct_path, dicom_dir, tmp_path, monkeypatch):
    path = {"nifti": lambda: ct_path, "nrrd": lambda: _nrrd(tmp_path, "x.nrrd"), "dicom": lambda: dicom_dir}[kind]()
    monkeypatch.setattr(preflight, "available_memory", lambda: 100)
    message = _refused(path)
    assert "of memory as float32, more than the 100 B available" in message
    shape = {"nifti": "122x101x30", "nrrd": "6x5x4", "dicom": "512x512x20"}[kind]
    assert f"header shape {shape} needs" in message


def test_available_memory_is_known_here():
    available = preflight.available_memory()
    assert available is None or available > 0


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (999, "999 B"), (4096, "4.1 KB"), (16 * 10**12, "16.0 TB"), (2.5e9, "2.5 GB")]
)
def test_format_bytes(n, text):
    assert preflight.format_bytes(n) == text

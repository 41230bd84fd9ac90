"""Tests for voxelprompt.imageio.dicom: gantry-tilted series land where the scanner put them,
ordinary series are untouched, and folders with several series say how to choose one."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from shared_paths import shared_file
from voxelprompt.errors import InputError
from voxelprompt.imageio import list_dicom_series, read_labels, read_volume, series_tilt_degrees
from voxelprompt.imageio.itk import LPS_TO_RAS, sitk_to_array_affine

LPS_TO_RAS_3 = np.diag(LPS_TO_RAS)[:3]

# Slice planes and slice content must lie within this of where the scanner put them (mm).
TOLERANCE_MM = 0.5


@pytest.fixture
def gantry_dir() -> Path:
    """128x128x20 CT slices at 3.9 x 3.9 x 2 mm acquired with a 20 degree gantry tilt."""
    return shared_file("cases", "gantry_tilt", "series")


@pytest.fixture
def gantry_positions_ras() -> np.ndarray:
    """(20, 3) ImagePositionPatient of the tilted slices, converted to RAS+ mm."""
    path = shared_file("cases", "gantry_tilt", "expected_slice_positions.json")
    lps = np.array(json.loads(path.read_text())["image_position_patient_lps_mm"], dtype=np.float64)
    return lps * LPS_TO_RAS_3


def _slice_files(folder: Path) -> list[Path]:
    """Files sorted along the slice normal (by ImagePositionPatient z: the series is axial)."""
    files = sorted(folder.glob("*.dcm"))
    return sorted(files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))


def _source_slice(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """HU values (N,) of one DICOM file and the RAS+ mm centres (N, 3) of its pixels, from its
    own ImagePositionPatient, ImageOrientationPatient and PixelSpacing."""
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    rows, columns = np.indices(hu.shape)
    lps = (
        np.asarray(ds.ImagePositionPatient, dtype=np.float64)
        + columns.reshape(-1, 1) * column_spacing * iop[:3]
        + rows.reshape(-1, 1) * row_spacing * iop[3:]
    )
    return hu.ravel(), lps * LPS_TO_RAS_3


def _volume_slice(array: np.ndarray, affine: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Values (N,) of slice k of an (I, J, K) array and the RAS+ mm centres (N, 3) of its voxels."""
    ii, jj = np.indices(array.shape[:2])
    ijk = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k)], axis=1)
    return array[:, :, k].ravel().astype(np.float64), ijk @ affine[:3, :3].T + affine[:3, 3]


def _centroid(values: np.ndarray, world: np.ndarray, floor: float) -> np.ndarray:
    """Centroid (mm) of the slice's attenuation above ``floor`` (the series minimum, air).

    Linear in the values, so a linear-interpolation shift of a slice moves it exactly with the
    content; a threshold (bright voxels > 200 HU) is not: interpolation pulls thin bright
    structures of this 3.9 mm series below the threshold and moves such a centroid by centimetres.
    """
    weights = values - floor
    return (world * weights[:, None]).sum(axis=0) / weights.sum()


def _untreated(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The series as plain SimpleITK reads it: identity direction, slice step |IPP step|."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return sitk_to_array_affine(reader.Execute(), "untreated")


def _plane_misses(affine: np.ndarray, positions_ras: np.ndarray) -> np.ndarray:
    """Distance (mm) from each position to the nearest slice plane k = integer of ``affine``.

    Assumes the slice axis is orthogonal to the in-plane axes (checked by the callers).
    """
    inverse = np.linalg.inv(affine)
    k = positions_ras @ inverse[2, :3] + inverse[2, 3]
    return np.abs(k - np.round(k)) * np.linalg.norm(affine[:3, 2])


def test_tilted_slices_lie_on_slice_planes_of_the_result(gantry_dir, gantry_positions_ras, caplog):
    with caplog.at_level(logging.WARNING, logger="voxelprompt"):
        volume = read_volume(gantry_dir)

    # An orthogonal grid: in-plane axes and 3.90625 mm spacing kept, slices 2 mm apart along the normal.
    columns = volume.affine[:3, :3]
    np.testing.assert_allclose(columns.T @ columns, np.diag([3.90625**2, 3.90625**2, 2.0**2]), atol=1e-9)
    assert volume.shape[0] == 128 and volume.shape[1] > 128 and volume.shape[2] == 20
    k = gantry_positions_ras @ np.linalg.inv(volume.affine)[2, :3] + np.linalg.inv(volume.affine)[2, 3]
    np.testing.assert_allclose(k, np.arange(20), atol=TOLERANCE_MM / 2.0)
    assert (_plane_misses(volume.affine, gantry_positions_ras) < TOLERANCE_MM).all()
    # Voxels outside the acquired data hold the series minimum (air, -1024 HU).
    assert volume.array.min() == -1024.0

    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert messages == [
        f"{gantry_dir}: DICOM series is gantry-tilted by 20.0 degrees; "
        "resampled onto an orthogonal grid (as dcm2niix does)"
    ]


def test_tilted_slice_content_lands_where_the_scanner_put_it(gantry_dir, gantry_positions_ras):
    volume = read_volume(gantry_dir)
    raw_array, raw_affine = _untreated(gantry_dir)
    inverse = np.linalg.inv(volume.affine)
    fill = float(volume.array.min())
    ours, untreated = [], []
    for k, path in enumerate(_slice_files(gantry_dir)):
        values, world = _source_slice(path)
        np.testing.assert_allclose(world[0], gantry_positions_ras[k], atol=1e-6)  # pixel (0, 0) is at the IPP
        expected = _centroid(values, world, fill)
        # The slice of our volume whose plane holds this file's ImagePositionPatient.
        plane = int(round(float(gantry_positions_ras[k] @ inverse[2, :3] + inverse[2, 3])))
        ours.append(np.linalg.norm(_centroid(*_volume_slice(volume.array, volume.affine, plane), fill) - expected))
        untreated.append(np.linalg.norm(_centroid(*_volume_slice(raw_array, raw_affine, k), fill) - expected))

    assert max(ours) < TOLERANCE_MM, np.round(ours, 3)
    # Without the resampling slice k sits ~0.74 * k mm away: 14 mm at the last slice.
    assert max(untreated) > TOLERANCE_MM
    # ITK stacks slices 2.128 mm apart along the normal; the scanner 2 mm along it and 0.728 mm across.
    tilt = math.radians(20.0)
    assert untreated[-1] == pytest.approx(19 * math.hypot(2.0 * math.tan(tilt), 2.0 / math.cos(tilt) - 2.0), rel=0.02)


def test_untreated_geometry_misses_the_slice_positions(gantry_dir, gantry_positions_ras):
    # What read_volume returned before: ITK's plain slice step of 2.128 mm along the normal.
    _, affine = _untreated(gantry_dir)
    assert np.linalg.norm(affine[:3, 2]) == pytest.approx(2.128, abs=1e-3)
    origins = np.stack([affine @ [0.0, 0.0, k, 1.0] for k in range(20)])[:, :3]
    misplaced = np.linalg.norm(origins - gantry_positions_ras, axis=1)
    assert misplaced[-1] > 10.0
    assert (misplaced[1:] > TOLERANCE_MM).all()


def test_tilted_labels_are_resampled_without_new_values(gantry_dir, tmp_path):
    # A DICOM label series (rare) keeps its integer values: nearest-neighbour, not linear.
    labels = read_labels(gantry_dir)
    assert labels.array.dtype.kind in "iu"
    source = set(np.unique(_untreated(gantry_dir)[0]).tolist())
    assert set(np.unique(labels.array).tolist()) <= source
    np.testing.assert_allclose(labels.affine, read_volume(gantry_dir).affine)


def _retilted_copy(gantry_dir: Path, tmp_path: Path, shift_mm: float) -> Path:
    """The tilted case with its slices shifted along the row direction instead: x step ``shift_mm``."""
    folder = tmp_path / "sheared_x"
    folder.mkdir()
    for k, path in enumerate(_slice_files(gantry_dir)):
        ds = pydicom.dcmread(path)
        x, _, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x + k * shift_mm, -437.51171875, z]
        ds.save_as(folder / path.name)
    return folder


def test_shear_along_rows_towards_lower_indices_is_covered(gantry_dir, tmp_path):
    # A shear of -1.3 mm per 2 mm slice (33 degrees) towards lower column indices: the grid grows
    # below index 0, so its origin moves, and every slice still lands on its plane and place.
    folder = _retilted_copy(gantry_dir, tmp_path, shift_mm=-1.3)
    volume = read_volume(folder)
    assert volume.shape[1] == 128 and volume.shape[0] == 128 + math.ceil(19 * 1.3 / 3.90625)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in _slice_files(folder)]
    positions = np.array([np.asarray(h.ImagePositionPatient, float) for h in headers]) * LPS_TO_RAS_3
    assert (_plane_misses(volume.affine, positions) < TOLERANCE_MM).all()
    fill = float(volume.array.min())
    inverse = np.linalg.inv(volume.affine)
    for k, path in enumerate(_slice_files(folder)):
        values, world = _source_slice(path)
        plane = int(round(float(positions[k] @ inverse[2, :3] + inverse[2, 3])))
        got = _centroid(*_volume_slice(volume.array, volume.affine, plane), fill)
        assert np.linalg.norm(got - _centroid(values, world, fill)) < TOLERANCE_MM


def test_tilted_series_with_an_uneven_shear_is_refused(gantry_dir, tmp_path):
    # Steps along the normal stay even, but one slice sits 2 mm off the line of the others:
    # one constant shear cannot place it, so the series is refused rather than misplaced.
    folder = tmp_path / "uneven"
    folder.mkdir()
    for k, path in enumerate(_slice_files(gantry_dir)):
        ds = pydicom.dcmread(path)
        if k == 9:
            x, y, z = (float(v) for v in ds.ImagePositionPatient)
            ds.ImagePositionPatient = [x, y + 2.0, z]
        ds.save_as(folder / path.name)
    with pytest.raises(InputError, match="off a straight line by up to 2.00 mm"):
        read_volume(folder)


@pytest.mark.parametrize("tilt", [0.0, 1.0, 20.0, 45.0])
@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "oblique"])
def test_series_tilt_degrees_measures_the_shear(tilt, oblique):
    row, column = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    if oblique:  # rotate the whole geometry 30 degrees about x: the angle does not change
        c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
        rotation = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
        row, column = rotation @ row, rotation @ column
    normal = np.cross(row, column)
    step = 2.0 * normal + 2.0 * math.tan(math.radians(tilt)) * column
    positions = np.array([10.0, -20.0, 30.0]) + np.arange(12)[:, None] * step
    assert series_tilt_degrees(positions, [*row, *column]) == pytest.approx(tilt, abs=1e-9)
    # Stacked against the normal: the same tilt.
    assert series_tilt_degrees(positions[::-1], [*row, *column]) == pytest.approx(tilt, abs=1e-9)
    assert series_tilt_degrees(positions[:1], [*row, *column]) == 0.0


def test_ordinary_series_is_untouched(dicom_dir, caplog):
    # JPEG 2000 lossless, no UIDs: read exactly as SimpleITK reads it, without a tilt warning.
    with caplog.at_level(logging.WARNING, logger="voxelprompt"):
        volume = read_volume(dicom_dir, dtype=None)
    array, affine = _untreated(dicom_dir)
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_array_equal(volume.affine, affine)
    assert not [r for r in caplog.records if "tilt" in r.getMessage()]

    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(dicom_dir.iterdir())]
    positions = np.array([np.asarray(h.ImagePositionPatient, float) for h in headers])
    positions = positions[np.argsort(positions[:, 2])]
    assert series_tilt_degrees(positions, [float(v) for v in headers[0].ImageOrientationPatient]) < 0.01


# ---- two series in one folder -------------------------------------------------------------------

SECOND_UID = "1.2.826.0.1.3680043.8.498.777"


def _two_series(gantry_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    """The tilted case split in two: the upper 10 slices get their own UID and description."""
    folder = tmp_path / "two_series"
    folder.mkdir()
    first_uid = ""
    for k, path in enumerate(_slice_files(gantry_dir)):
        ds = pydicom.dcmread(path)
        first_uid = str(ds.SeriesInstanceUID)
        if k >= 10:
            ds.SeriesInstanceUID = SECOND_UID
            ds.SeriesDescription = "upper half"
        ds.save_as(folder / path.name)
    return folder, first_uid


def test_list_dicom_series(gantry_dir, dicom_dir, tmp_path):
    folder, first_uid = _two_series(gantry_dir, tmp_path)
    series = sorted(list_dicom_series(folder), key=lambda s: s.description)
    assert [(s.uid, s.description, s.n_files, s.n_slices, s.modality) for s in series] == [
        (first_uid, "small CT", 10, 10, "CT"),
        (SECOND_UID, "upper half", 10, 10, "CT"),
    ]
    # Anonymised series without a UID are listed under "" (and read with series_uid="").
    (only,) = list_dicom_series(dicom_dir)
    assert (only.uid, only.description, only.n_slices) == ("", "CT Body 3.0", 20)
    assert read_volume(dicom_dir, series_uid="").shape == (512, 512, 20)
    assert list_dicom_series(tmp_path) == []
    with pytest.raises(InputError, match="folder not found"):
        list_dicom_series(tmp_path / "nope")


def test_two_series_error_lists_them_and_names_the_option(gantry_dir, tmp_path):
    folder, first_uid = _two_series(gantry_dir, tmp_path)
    with pytest.raises(InputError) as info:
        read_volume(folder)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{folder}: folder holds 2 DICOM series: ")
    assert f"{first_uid!r} ('small CT', 10 slices)" in message
    assert f"{SECOND_UID!r} ('upper half', 10 slices)" in message
    assert message.endswith("choose one with --series-uid UID")

    upper = read_volume(folder, series_uid=SECOND_UID)
    assert upper.shape[2] == 10
    assert upper.affine[2, 3] == pytest.approx(-804.5 + 20.0)  # the upper half's first slice
    assert read_volume(str(folder), series_uid=first_uid).shape[2] == 10

    with pytest.raises(InputError) as info:
        read_volume(folder, series_uid="1.2.3")
    message = str(info.value)
    assert "no DICOM series '1.2.3' in folder" in message
    assert f"{SECOND_UID!r} ('upper half', 10 slices)" in message and first_uid in message
    assert message.endswith("choose one with --series-uid UID")


# ---- headers that claim more than the files hold ----------------------------------------------


def test_truncated_dicom_file_is_an_input_error(gantry_dir, tmp_path):
    # GDCM leaves a file cut short out of the series; the gap it leaves is reported.
    folder = tmp_path / "truncated"
    folder.mkdir()
    for path in gantry_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    victim = folder / "slice_007.dcm"
    victim.write_bytes(victim.read_bytes()[:-2000])
    with pytest.raises(InputError, match="not evenly spaced"):
        read_volume(folder)


def test_dicom_header_with_huge_rows_is_refused_before_reading(gantry_dir, tmp_path):
    folder = tmp_path / "huge"
    folder.mkdir()
    for path in _slice_files(gantry_dir):
        ds = pydicom.dcmread(path)
        ds.Rows, ds.Columns = 60000, 60000
        ds.save_as(folder / path.name)
    with pytest.raises(InputError, match="holds .* but its header describes 7.2 GB of pixel data"):
        read_volume(folder)

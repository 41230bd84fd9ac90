"""Tests for voxelprompt.imageio.rtstruct: structure sets checked by independent tools (Debian's
``dciodvfy`` validates the IOD, ``plastimatch`` rasterises the contours back to masks compared by
Dice with the label map) on the shared DICOM series and on a synthetic non-square-pixel, flipped
series with a hole; reproducible bytes, catalog names/colours/types, one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_checkers import dciodvfy_errors, plastimatch_masks
from shared_paths import shared_file
from voxelprompt.catalog import class_color
from voxelprompt.errors import InputError
from voxelprompt.imageio import align_to_grid, derive_uid, read_labels, read_volume
from voxelprompt.imageio.contours import mask_contours
from voxelprompt.imageio.rtstruct import write_rtstruct
from voxelprompt.types import Volume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def _check_dice(masks: dict[str, np.ndarray], labels: Volume, names: dict[int, str]) -> dict[str, float]:
    """Dice per structure: >= 0.95, or >= 0.90 under 5 ml."""
    voxel_ml = float(np.prod(labels.spacing)) / 1000.0
    scores = {}
    for value, name in names.items():
        expected = np.asarray(labels.array) == value
        assert name in masks, f"plastimatch gave no {name!r}; it gave {sorted(masks)}"
        scores[name] = dice(masks[name], expected)
        floor = 0.90 if expected.sum() * voxel_ml < 5 else 0.95
        assert scores[name] >= floor, (name, scores[name], expected.sum() * voxel_ml)
    return scores


@pytest.fixture(scope="module")
def shared_series(tmp_path_factory) -> Path:
    """The shared 20-slice series as plastimatch can read it: UIDs added (the originals have none)
    and pixels decompressed (Debian's plastimatch reads no JPEG 2000)."""
    folder = tmp_path_factory.mktemp("ct")
    study, series, frame = (derive_uid("rtstruct test", part) for part in ("study", "series", "frame"))
    for path in sorted(shared_file("data", "totalseg", "example_ct_dicom").iterdir()):
        ds = pydicom.dcmread(path)
        ds.decompress()
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, derive_uid("rtstruct test", path.name)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        ds.save_as(folder / f"{path.name}.dcm", enforce_file_format=True)
    return folder


def test_shared_series_with_totalsegmentator_labels_reads_back_with_plastimatch(shared_series, tmp_path):
    ct = read_volume(shared_series)
    labels = align_to_grid(read_labels(shared_file("data", "totalseg", "example_ct_dicom_seg.nii.gz")), ct)
    classes = json.loads(shared_file("data", "totalseg", "classes.json").read_text())
    names = {int(v): classes[str(int(v))] for v in np.unique(labels.array) if v}
    rs = write_rtstruct(labels, shared_series, tmp_path / "rs.dcm", names).path
    assert dciodvfy_errors(rs) == []
    scores = _check_dice(plastimatch_masks(rs, shared_series, tmp_path / "back", labels), labels, names)
    assert len(scores) == len(names) == 31


def _flipped_series(folder: Path) -> Path:
    """12 slices of 48 rows x 64 columns, row spacing 0.7 mm, column spacing 1.3 mm, rows running
    to the patient's right and columns to anterior (ImageOrientationPatient -1,0,0,0,-1,0), files
    named in descending position."""
    folder.mkdir()
    study, series, frame = (derive_uid("flipped", part) for part in ("study", "series", "frame"))
    rng = np.random.default_rng(0)
    for k in range(12):
        ds = pydicom.Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, derive_uid("flipped", str(k))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.Modality, ds.InstanceNumber = "Flipped^Phantom", "FLIP1", "CT", 12 - k
        ds.ImagePositionPatient = [40.5, 12.25, -30.0 + 2.5 * k]
        ds.ImageOrientationPatient = [-1, 0, 0, 0, -1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 1.3], 2.5
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 48, 64, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = rng.integers(900, 1100, (48, 64), dtype=np.int16).tobytes()
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        ds.save_as(folder / f"im{99 - k:03d}.dcm", enforce_file_format=True)
    return folder


def _flipped_labels(ct: Volume) -> tuple[Volume, dict[int, str], np.ndarray, np.ndarray]:
    """An ellipsoid "liver" (> 5 ml), a ring with a hole and an island in the hole, a small box
    (< 5 ml), all off-centre; also the hole's and the island's voxels."""
    i, j, k = np.meshgrid(*(np.arange(n) for n in ct.shape), indexing="ij")
    array = np.zeros(ct.shape, dtype=np.uint8)
    array[((i - 20) / 14) ** 2 + ((j - 30) / 13) ** 2 + ((k - 6) / 4.5) ** 2 <= 1] = 1
    radius = np.hypot((i - 48) * 1.3, (j - 14) * 0.7)  # mm: round in the patient, not in voxels
    ring = (radius <= 9) & (k >= 3) & (k <= 8)
    hole = ring & (radius > 2.5) & (radius <= 6)
    island = ring & (radius <= 2.5) & (k >= 5)
    array[ring & ~hole & ~((radius <= 2.5) & (k < 5))] = 2
    array[55:58, 38:42, 9:11] = 3
    hole_voxels = ring & ~(array == 2)
    return ct.with_array(array), {1: "liver", 2: "ring", 3: "marker"}, hole_voxels, island


def test_non_square_flipped_series_with_a_hole_reads_back_with_plastimatch(tmp_path):
    series = _flipped_series(tmp_path / "ct")
    ct = read_volume(series)
    assert ct.shape == (64, 48, 12) and np.allclose(ct.spacing, (1.3, 0.7, 2.5))
    labels, names, hole, island = _flipped_labels(ct)
    assert hole.any() and island.any()
    written = write_rtstruct(labels, series, tmp_path / "rs.dcm", names)
    assert dciodvfy_errors(written.path) == []
    masks = plastimatch_masks(written.path, series, tmp_path / "back", labels, xor=True)
    _check_dice(masks, labels, names)
    assert not masks["ring"][hole].any()  # the hole stays empty: its contour is nested, filled even-odd
    assert masks["ring"][island].all()  # and the island inside it is structure again
    assert {r.name: r.interpreted_type for r in written.rois} == {"liver": "ORGAN", "ring": "", "marker": ""}


def test_contours_reference_the_image_they_lie_on_and_fit_ds(tmp_path):
    series = _flipped_series(tmp_path / "ct")
    labels, names, _, _ = _flipped_labels(read_volume(series))
    rs = pydicom.dcmread(write_rtstruct(labels, series, tmp_path / "rs.dcm", names).path)
    images = {ds.SOPInstanceUID: ds for ds in (pydicom.dcmread(p) for p in series.iterdir())}
    contours = [c for roi in rs.ROIContourSequence for c in roi.ContourSequence]
    for contour in contours:
        assert contour.ContourGeometricType == "CLOSED_PLANAR"
        assert all(len(v.original_string) <= 16 for v in contour.ContourData)
        points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
        assert len(points) == contour.NumberOfContourPoints >= 3
        image = images[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
        normal = np.cross(*np.asarray(image.ImageOrientationPatient, float).reshape(2, 3))
        assert np.allclose((points - np.asarray(image.ImagePositionPatient, float)) @ normal, 0, atol=1e-3)
    references = rs.ReferencedFrameOfReferenceSequence[0]
    study = references.RTReferencedStudySequence[0]
    first = next(iter(images.values()))
    assert (rs.StudyInstanceUID, rs.FrameOfReferenceUID, study.ReferencedSOPInstanceUID) == (first.StudyInstanceUID, first.FrameOfReferenceUID, first.StudyInstanceUID)
    assert study.RTReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in study.RTReferencedSeriesSequence[0].ContourImageSequence} == set(images)
    assert (rs.PatientName, rs.PatientID) == ("Flipped^Phantom", "FLIP1")


def test_names_colours_and_types_come_from_the_catalog_and_reruns_give_the_same_bytes(tmp_path):
    series = _flipped_series(tmp_path / "ct")
    labels, names, _, _ = _flipped_labels(read_volume(series))
    first = write_rtstruct(labels, series, tmp_path / "a.dcm", names, algorithm_name="vista3d", demo_mark="DEMO model: x")
    again = write_rtstruct(labels, series, tmp_path / "b.dcm", names, algorithm_name="vista3d", demo_mark="DEMO model: x")
    assert first.path.read_bytes() == again.path.read_bytes()
    other = write_rtstruct(labels.with_array(np.where(labels.array == 3, 0, labels.array)), series, tmp_path / "c.dcm", names)
    assert other.series_uid != first.series_uid and other.instance_uid != first.instance_uid
    rs = pydicom.dcmread(first.path)
    assert [(r.ROINumber, r.ROIName) for r in rs.StructureSetROISequence] == [(1, "liver"), (2, "ring"), (3, "marker")]
    assert [tuple(c.ROIDisplayColor) for c in rs.ROIContourSequence] == [class_color(v) for v in (1, 2, 3)]
    assert [o.RTROIInterpretedType for o in rs.RTROIObservationsSequence] == ["ORGAN", "", ""]
    assert rs.Manufacturer == "voxelprompt" and rs.ManufacturerModelName == "vista3d"
    assert "DEMO model" in rs.SeriesDescription and rs.StructureSetLabel == "voxelprompt DEMO"
    assert len(rs.StructureSetLabel) <= 16 and rs.Modality == "RTSTRUCT"


def test_inputs_that_are_not_an_acquired_dicom_series_are_refused_in_one_line(tmp_path):
    nifti = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    grid = read_labels(nifti)
    with pytest.raises(InputError, match="not a DICOM series folder") as err:
        write_rtstruct(grid.with_array((np.asarray(grid.array) > 0).astype(np.uint8)), nifti, tmp_path / "rs.dcm", {1: "x"})
    assert "\n" not in str(err.value)
    tilted = shared_file("cases", "gantry_tilt", "series")
    grid = read_labels(tilted)  # resampled onto an orthogonal grid on reading
    array = np.zeros(grid.shape, dtype=np.uint8)
    array[40:60, 40:60, 5:10] = 1
    with pytest.raises(InputError, match=r"gantry-tilted by 20\.0 degrees.*no RT-STRUCT") as err:
        write_rtstruct(grid.with_array(array), tilted, tmp_path / "rs.dcm", {1: "liver"})
    assert "\n" not in str(err.value)
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("seed", range(4))
def test_mask_contours_filled_even_odd_at_pixel_centres_give_back_the_mask(seed):
    from matplotlib.path import Path as Polygon

    rng = np.random.default_rng(seed)
    mask = rng.random((23, 31)) < 0.55  # speckle: holes, islands in holes, corner-touching pixels
    mask[5:15, 5:20] = True
    mask[8:12, 9:14] = False  # a hole
    mask[10, 11] = True  # an island in it
    centres = np.stack(np.meshgrid(np.arange(23), np.arange(31), indexing="ij"), -1).reshape(-1, 2).astype(float)
    filled = np.zeros(len(centres), dtype=bool)
    polygons = mask_contours(mask)
    for polygon in polygons:
        assert np.all(np.abs(polygon - np.round(polygon)).max(axis=1) == 0.5)  # vertices on pixel edges
        filled ^= Polygon(polygon).contains_points(centres)
    np.testing.assert_array_equal(filled.reshape(mask.shape), mask)
    assert mask_contours(np.zeros((4, 4), bool)) == []

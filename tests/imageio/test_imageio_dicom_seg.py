"""Tests for voxelprompt.imageio.dicom_seg: DICOM-SEG frames read back (highdicom and plain pydicom)
give the label map's voxels on the source images they name, files are reproducible byte for byte,
and sources the writer cannot serve (no UIDs, tilted, another grid) are refused in one line."""

from __future__ import annotations

import random
import shutil
from datetime import datetime
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

from shared_paths import shared_file
from voxelprompt.catalog import vista3d_catalog, vista3d_colors
from voxelprompt.errors import InputError
from voxelprompt.imageio import read_labels, read_volume, write_dicom_seg, write_volume
from voxelprompt.imageio.itk import LPS_TO_RAS
from voxelprompt.types import Volume

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000)
STUDY_UID = "1.2.826.0.1.3680043.8.498.100"
SERIES_UID = "1.2.826.0.1.3680043.8.498.101"


def _lateral_class() -> int:
    """A VISTA3D class whose code carries a laterality modifier."""
    return next(i for i, c in vista3d_colors().items() if c.modifier is not None and c.mapping != "related")


@pytest.fixture(scope="module")
def uid_series(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared 20-slice series copied with Study/Series/SOP UIDs added (the originals lack them)."""
    folder = tmp_path_factory.mktemp("series")
    for path in sorted(shared_file("data", "totalseg", "example_ct_dicom").iterdir()):
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, SERIES_UID
        ds.save_as(folder / path.name)
    return folder


@pytest.fixture(scope="module")
def labels(uid_series: Path) -> tuple[Volume, dict[int, str]]:
    """Boxes at distinct, asymmetric places (a flipped axis or slice order would move them)."""
    ct = read_volume(uid_series)
    lateral = _lateral_class()
    array = np.zeros(ct.shape, dtype=np.uint8)
    array[100:180, 150:300, 3:9] = 1
    array[300:350, 200:260, 10:18] = lateral
    array[120:130, 400:410, 0:20] = 200  # not a VISTA3D class: generic code
    array[10:20, 15:25, 19] = 1  # second component of class 1 on the last slice only
    names = {1: "liver", lateral: vista3d_catalog().name(lateral), 200: "lesion"}
    return ct.with_array(array), names


def _slice_of(ds: pydicom.Dataset, grid: Volume) -> int:
    """The label-map slice an image lies on, from its ImagePositionPatient (independent of the writer)."""
    ras = np.diag(LPS_TO_RAS)[:3] * np.array([float(v) for v in ds.ImagePositionPatient])
    ijk = grid.world_to_voxel(ras)[0]
    assert np.allclose(ijk[:2], 0, atol=1e-3)
    return int(round(ijk[2]))


def _sources(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.iterdir())]


def test_frames_read_back_with_highdicom_equal_the_label_map(uid_series, labels, tmp_path):
    volume, names = labels
    written = write_dicom_seg(volume, uid_series, tmp_path / "seg.dcm", names)
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    number_to_value = {s.number: s.value for s in written.segments}
    segment_labels = [seg.get_segment_description(n).segment_label for n in number_to_value]
    assert segment_labels == [names[v] for v in number_to_value.values()]
    sources = _sources(uid_series)
    uids = [ds.SOPInstanceUID for ds in sources]
    stack = seg.get_pixels_by_source_instance(uids, combine_segments=True)  # (images, rows, columns)
    lookup = np.zeros(max(number_to_value) + 1, dtype=np.int64)
    lookup[list(number_to_value)] = list(number_to_value.values())
    for ds, frame in zip(sources, stack):
        k = _slice_of(ds, volume)
        np.testing.assert_array_equal(lookup[frame], volume.array[:, :, k].T)


def test_frames_read_back_with_plain_pydicom_equal_the_label_map(uid_series, labels, tmp_path):
    volume, names = labels
    write_dicom_seg(volume, uid_series, tmp_path / "seg.dcm", names)
    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    assert ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == SERIES_UID
    assert ds.StudyInstanceUID == STUDY_UID
    value_of = {int(s.SegmentNumber): int(s.SegmentDescription.rsplit(" ", 1)[1]) for s in ds.SegmentSequence}
    slice_of = {src.SOPInstanceUID: _slice_of(src, volume) for src in _sources(uid_series)}
    rebuilt = np.zeros_like(volume.array)
    frames = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        source = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        plane = rebuilt[:, :, slice_of[source]]
        plane[frame.T.astype(bool)] = value_of[number]
    np.testing.assert_array_equal(rebuilt, volume.array)
    assert len(frames) < len(value_of) * volume.shape[2]  # empty frames omitted


def test_segments_carry_snomed_codes_colours_and_laterality(uid_series, labels, tmp_path):
    volume, names = labels
    lateral = _lateral_class()
    written = write_dicom_seg(volume, uid_series, tmp_path / "seg.dcm", names)
    assert [(s.value, s.coded) for s in written.segments] == [(1, True), (lateral, True), (200, False)]
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    liver, side, lesion = (seg.get_segment_description(s.number) for s in written.segments)
    colors = vista3d_colors()
    assert liver.segmented_property_type.value == colors[1].type.value
    assert liver.segmented_property_category.value == colors[1].category.value
    assert side.segmented_property_type.value == colors[lateral].type.value
    modifier = side.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0]
    assert modifier.CodeValue == colors[lateral].modifier.value
    generic = lesion.segmented_property_type
    assert (generic.value, generic.scheme_designator) == ("85756007", "SCT")
    rgb = hd.color.CIELabColor.from_dicom_value(liver.RecommendedDisplayCIELabValue).to_rgb()
    assert rgb == pytest.approx(colors[1].rgb, abs=1)


def test_same_inputs_and_uids_give_identical_bytes(uid_series, labels, tmp_path):
    volume, names = labels
    kwargs = {"series_uid": "1.2.3.4", "instance_uid": "1.2.3.4.5", "content_datetime": WHEN}
    write_dicom_seg(volume, uid_series, tmp_path / "a.dcm", names, **kwargs)
    shuffled = _sources(uid_series)
    random.Random(0).shuffle(shuffled)  # file order must not matter, only positions
    write_dicom_seg(volume, shuffled, tmp_path / "b.dcm", names, **kwargs)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    write_dicom_seg(volume, uid_series, tmp_path / "c.dcm", names, **{**kwargs, "instance_uid": "1.2.3.4.6"})
    assert (tmp_path / "a.dcm").read_bytes() != (tmp_path / "c.dcm").read_bytes()
    ds = pydicom.dcmread(tmp_path / "a.dcm", stop_before_pixels=True)
    assert (ds.SeriesInstanceUID, ds.SOPInstanceUID) == ("1.2.3.4", "1.2.3.4.5")
    assert ds.ContentDate == ds.InstanceCreationDate == "20260102"
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_labelmap_type_reads_back(uid_series, labels, tmp_path):
    volume, names = labels
    written = write_dicom_seg(volume, uid_series, tmp_path / "seg.dcm", names, segmentation_type="labelmap")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert seg.SegmentationType == "LABELMAP" and seg.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    plain = pydicom.dcmread(tmp_path / "seg.dcm").pixel_array  # pydicom decodes RLE without plugins
    assert plain.shape == (volume.shape[2], volume.shape[1], volume.shape[0])
    sources = _sources(uid_series)
    stack = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True)
    values = {s.number: s.value for s in written.segments}
    for ds, frame in zip(sources, stack):
        expected = volume.array[:, :, _slice_of(ds, volume)].T
        got = np.vectorize(lambda n: values.get(int(n), 0))(frame)
        np.testing.assert_array_equal(got, expected)


def test_series_without_uids_is_refused_in_one_line(labels, tmp_path):
    volume, names = labels
    with pytest.raises(InputError, match="has no SOPClassUID") as err:
        write_dicom_seg(volume, shared_file("data", "totalseg", "example_ct_dicom"), tmp_path / "seg.dcm", names)
    assert "\n" not in str(err.value) and "missing_uids='derive'" in str(err.value)
    assert not (tmp_path / "seg.dcm").exists()


def test_derived_uids_are_listed_referenced_and_reproducible(labels, tmp_path):
    volume, names = labels
    original = shared_file("data", "totalseg", "example_ct_dicom")
    kwargs = {"series_uid": "1.2.3", "instance_uid": "1.2.3.1", "content_datetime": WHEN, "missing_uids": "derive"}
    first = write_dicom_seg(volume, original, tmp_path / "a.dcm", names, **kwargs)
    second = write_dicom_seg(volume, original, tmp_path / "b.dcm", names, **kwargs)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    assert first.derived_source_uids == second.derived_source_uids
    derived = {(d.source, d.attribute): d.uid for d in first.derived_source_uids}
    ds = pydicom.dcmread(tmp_path / "a.dcm", stop_before_pixels=True)
    assert ds.StudyInstanceUID == derived[("series", "StudyInstanceUID")]
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == derived[("series", "SeriesInstanceUID")]
    # SOP Instance UIDs come from each file's own file meta header.
    for path in original.iterdir():
        meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
        assert derived[(path.name, "SOPInstanceUID")] == meta.MediaStorageSOPInstanceUID


def test_gantry_tilted_series_is_refused(tmp_path):
    series = shared_file("cases", "gantry_tilt", "series")
    grid = read_labels(series)  # resampled onto an orthogonal grid on reading
    array = np.zeros(grid.shape, dtype=np.uint8)
    array[40:60, 40:60, 5:10] = 1
    with pytest.raises(InputError, match=r"gantry-tilted by 20\.0 degrees") as err:
        write_dicom_seg(grid.with_array(array), series, tmp_path / "seg.dcm", {1: "liver"})
    assert "\n" not in str(err.value)


def test_label_map_off_the_series_grid_is_refused(uid_series, labels, tmp_path):
    volume, names = labels
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = volume.shape[0] - 1
    flipped = Volume(volume.array[::-1].copy(), volume.affine @ flip)  # same voxels in space, i reversed
    with pytest.raises(InputError, match="not the in-plane axes"):
        write_dicom_seg(flipped, uid_series, tmp_path / "seg.dcm", names)
    half_slice = np.eye(4)
    half_slice[2, 3] = 0.5
    shifted = Volume(volume.array, volume.affine @ half_slice)
    with pytest.raises(InputError, match="not on the series grid"):
        write_dicom_seg(shifted, uid_series, tmp_path / "seg.dcm", names)
    with pytest.raises(InputError, match="is not the grid"):
        write_dicom_seg(Volume(volume.array[:, :, :10], volume.affine), uid_series, tmp_path / "seg.dcm", names)


def test_unnamed_values_and_empty_maps_are_refused(uid_series, labels, tmp_path):
    volume, names = labels
    with pytest.raises(InputError, match=r"label values \[200\] have no name"):
        write_dicom_seg(volume, uid_series, tmp_path / "seg.dcm", {k: v for k, v in names.items() if k != 200})
    with pytest.raises(InputError, match="empty"):
        write_dicom_seg(volume.with_array(np.zeros_like(volume.array)), uid_series, tmp_path / "seg.dcm", names)


def test_source_files_are_not_modified_when_uids_are_derived(labels, tmp_path):
    volume, names = labels
    copy = tmp_path / "series"
    shutil.copytree(shared_file("data", "totalseg", "example_ct_dicom"), copy)
    before = {p.name: p.read_bytes() for p in copy.iterdir()}
    write_dicom_seg(volume, copy, tmp_path / "seg.dcm", names, missing_uids="derive")
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == before


def test_a_folder_with_two_series_needs_the_series_uid(uid_series, labels, tmp_path):
    volume, names = labels
    folder = tmp_path / "study"
    shutil.copytree(uid_series, folder)
    for path in sorted(uid_series.iterdir())[:3]:  # a second series in the same folder
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.102", ds.SOPInstanceUID + ".9"
        ds.save_as(folder / f"other_{path.name}")
    with pytest.raises(InputError, match="belong to 2 series.*choose one with series_uid"):
        write_dicom_seg(volume, folder, tmp_path / "seg.dcm", names)
    written = write_dicom_seg(volume, folder, tmp_path / "seg.dcm", names, source_series_uid=SERIES_UID)
    ds = pydicom.dcmread(written.path, stop_before_pixels=True)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == SERIES_UID
    with pytest.raises(InputError, match="no image of series '9.9'"):
        write_dicom_seg(volume, folder, tmp_path / "seg.dcm", names, source_series_uid="9.9")


def test_in_memory_datasets_without_files_derive_uids_from_their_encoding(labels, tmp_path):
    volume, names = labels
    sources = _sources(shared_file("data", "totalseg", "example_ct_dicom"))
    for ds in sources:
        ds.filename = None
        del ds.file_meta.MediaStorageSOPInstanceUID
    kwargs = {"series_uid": "1.2.3", "instance_uid": "1.2.3.1", "content_datetime": WHEN, "missing_uids": "derive"}
    first = write_dicom_seg(volume, sources, tmp_path / "a.dcm", names, **kwargs)
    second = write_dicom_seg(volume, list(reversed(sources)), tmp_path / "b.dcm", names, **kwargs)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()
    instance_uids = {d.uid for d in first.derived_source_uids if d.attribute == "SOPInstanceUID"}
    assert len(instance_uids) == len(sources) and all(uid.startswith("2.25.") for uid in instance_uids)
    assert first.derived_source_uids == second.derived_source_uids
    assert all(not str(ds.get("SOPInstanceUID", "")) for ds in sources)  # the caller's datasets unchanged


def test_label_map_read_back_from_nifti_gives_the_same_file(uid_series, labels, tmp_path):
    """The batch runner's path: labels written as NIfTI (float32 affine) and read back still match the series."""
    volume, names = labels
    write_volume(volume, tmp_path / "seg.nii.gz")
    from_nifti = read_labels(tmp_path / "seg.nii.gz")
    kwargs = {"series_uid": "1.2.3", "instance_uid": "1.2.3.1", "content_datetime": WHEN}
    write_dicom_seg(volume, uid_series, tmp_path / "a.dcm", names, **kwargs)
    write_dicom_seg(from_nifti, uid_series, tmp_path / "b.dcm", names, **kwargs)
    assert (tmp_path / "a.dcm").read_bytes() == (tmp_path / "b.dcm").read_bytes()


def test_a_boolean_mask_is_label_one(uid_series, labels, tmp_path):
    volume, _ = labels
    mask = volume.array == 1
    written = write_dicom_seg(volume.with_array(mask), uid_series, tmp_path / "seg.dcm", {1: "liver"})
    assert [(s.number, s.value) for s in written.segments] == [(1, 1)]
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    sources = _sources(uid_series)
    stack = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True)
    for ds, frame in zip(sources, stack):
        np.testing.assert_array_equal(frame.astype(bool), mask[:, :, _slice_of(ds, volume)].T)

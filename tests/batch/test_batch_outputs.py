"""Every output kind of a cohort run, read back with the tools users read them with: DICOM-SEG
(highdicom) holds the NIfTI's voxels on the DICOM grid, ``.seg.nrrd`` (slicerio) the segment names,
statistics agree with numpy, a rerun writes the same DICOM-SEG bytes, and an image-file case of a
DICOM-SEG run fails with its reason."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from batch_cohort import make_phantoms

from shared_paths import shared_file
from voxelprompt.batch import Task, run_cohort
from voxelprompt.imageio import read_labels, read_volume

KINDS = ("nifti", "dicom-seg", "rtstruct", "seg-nrrd", "stats", "preview")

pytestmark = pytest.mark.slow  # the 512x512x20 DICOM series with every kind: ~30-60 s on 2 cores


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    shutil.copytree(shared_file("data", "totalseg", "example_ct_dicom"), folder / "ct_dicom")
    make_phantoms(folder, n=1)
    listed = folder / "cases.csv"
    listed.write_text("image\nct_dicom\nphantom_0.nii.gz\n")
    out = tmp_path_factory.mktemp("run") / "out"
    result = run_cohort(listed, out, tasks=[Task(classes=("liver", "spleen"))], output_formats=KINDS, device="cpu")
    assert result.done == ["ct_dicom"], result.failed
    assert [f.case_id for f in result.failed] == ["phantom_0"]
    return listed, out


@pytest.fixture(scope="module")
def phantoms_run(tmp_path_factory):
    """Two phantoms with the kinds an image file can have (no DICOM-SEG)."""
    folder = tmp_path_factory.mktemp("phantoms")
    make_phantoms(folder, n=2)
    out = tmp_path_factory.mktemp("run") / "out"
    kinds = [k for k in KINDS if k not in ("dicom-seg", "rtstruct")]
    result = run_cohort(folder, out, tasks=[Task(classes=("liver", "spleen"))], output_formats=kinds, device="cpu")
    assert result.done == ["phantom_0", "phantom_1"], result.failed
    return folder, out


def test_dicom_seg_holds_the_nifti_voxels_on_the_dicom_grid(run):
    import highdicom as hd
    import pydicom

    listed, out = run
    case = out / "ct_dicom"
    labels = read_labels(case / "labels.nii.gz")
    names = {int(k): v for k, v in json.loads((case / "label_names.json").read_text()).items()}
    assert names, "the demo model found nothing to write"
    seg = hd.seg.segread(case / "segmentation.dcm")
    number_to_value = {}
    for number in range(1, len(names) + 1):
        label = seg.get_segment_description(number).segment_label
        number_to_value[number] = next(v for v, n in names.items() if n == label)
    # the shared series carries no UIDs: the ones derived for it are listed beside the SEG
    derived = json.loads((case / "segmentation.derived_uids.json").read_text())
    sop = {d["source"]: d["uid"] for d in derived if d["attribute"] == "SOPInstanceUID"}
    grid = read_volume(listed.parent / "ct_dicom")
    inverse = np.linalg.inv(grid.affine)
    lookup = np.zeros(max(number_to_value) + 1, dtype=np.int64)
    lookup[list(number_to_value)] = list(number_to_value.values())
    files = sorted(sop)
    stack = seg.get_pixels_by_source_instance([sop[f] for f in files], combine_segments=True)
    for name, frame in zip(files, stack, strict=True):
        lps = np.asarray(pydicom.dcmread(listed.parent / "ct_dicom" / name, stop_before_pixels=True).ImagePositionPatient, float)
        k = int(round((inverse @ np.r_[-lps[0], -lps[1], lps[2], 1.0])[2]))
        np.testing.assert_array_equal(lookup[frame], labels.array[:, :, k].T)
    assert pydicom.dcmread(case / "segmentation.dcm").ContentDate == json.loads((out / "manifest.json").read_text())["created"][:10].replace("-", "")


def test_rtstruct_has_a_structure_per_label_with_contours_on_its_slices(run):
    import pydicom

    from dicom_checkers import dciodvfy_errors

    listed, out = run
    case = out / "ct_dicom"
    labels = np.asarray(read_labels(case / "labels.nii.gz").array)
    names = {int(k): v for k, v in json.loads((case / "label_names.json").read_text()).items()}
    rs = pydicom.dcmread(case / "rtstruct.dcm")
    assert {int(r.ROINumber): r.ROIName for r in rs.StructureSetROISequence} == names
    # each contour names its image by the UID derived for it (listed beside), on the slice holding the value
    derived = json.loads((case / "rtstruct.derived_uids.json").read_text())
    file_of = {d["uid"]: d["source"] for d in derived if d["attribute"] == "SOPInstanceUID"}
    grid = read_volume(listed.parent / "ct_dicom")
    inverse = np.linalg.inv(grid.affine)
    for roi in rs.ROIContourSequence:
        slices = set()
        for contour in roi.ContourSequence:
            name = file_of[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
            lps = np.asarray(pydicom.dcmread(listed.parent / "ct_dicom" / name, stop_before_pixels=True).ImagePositionPatient, float)
            slices.add(int(round((inverse @ np.r_[-lps[0], -lps[1], lps[2], 1.0])[2])))
        assert slices == set(np.nonzero((labels == int(roi.ReferencedROINumber)).any(axis=(0, 1)))[0].tolist())
    assert rs.StructureSetDate == json.loads((out / "manifest.json").read_text())["created"][:10].replace("-", "")
    assert dciodvfy_errors(case / "rtstruct.dcm") == []


def test_a_file_case_of_a_dicom_seg_run_fails_with_its_reason_and_writes_nothing(run):
    _, out = run
    failures = list(csv.DictReader((out / "failures.csv").open()))
    assert [f["case_id"] for f in failures] == ["phantom_0"]
    assert "dicom-seg needs a DICOM source series" in failures[0]["error"]
    assert not (out / "phantom_0").exists()


@pytest.mark.parametrize("case", ["ct_dicom", "phantom_0"])
def test_seg_nrrd_carries_the_segment_names(run, phantoms_run, case):
    import slicerio

    out = (run if case == "ct_dicom" else phantoms_run)[1]
    names = json.loads((out / case / "label_names.json").read_text())
    segmentation = slicerio.read_segmentation(str(out / case / "labels.seg.nrrd"))
    got = {str(s["labelValue"]): s["name"] for s in segmentation["segments"]}
    assert got == names


def test_statistics_agree_with_numpy_and_the_cohort_table_joins_the_cases(phantoms_run):
    folder, out = phantoms_run
    labels = read_labels(out / "phantom_0" / "labels.nii.gz")
    image = read_volume(folder / "phantom_0.nii.gz")
    rows = list(csv.DictReader((out / "phantom_0" / "statistics.csv").open()))
    voxel_ml = abs(np.linalg.det(labels.affine[:3, :3])) / 1000.0
    assert rows
    for row in rows:
        mask = labels.array == int(row["label"])
        assert int(row["voxels"]) == int(mask.sum())
        assert float(row["volume_ml"]) == pytest.approx(mask.sum() * voxel_ml, abs=5e-4)  # written to 0.001 ml
        assert float(row["hu_mean"]) == pytest.approx(float(image.array[mask].mean()), abs=5e-3)  # to 0.01 HU
        assert all(len(row[k].partition(".")[2]) <= 2 for k in ("hu_mean", "hu_std", "hu_p50"))
    cohort = list(csv.DictReader((out / "statistics.csv").open()))
    assert [r["case"] for r in cohort] == sorted(r["case"] for r in cohort)
    assert {r["case"] for r in cohort} == {"phantom_0", "phantom_1"}
    assert [r["label"] for r in cohort if r["case"] == "phantom_0"] == [r["label"] for r in rows]


def test_a_rerun_of_a_removed_case_writes_the_same_dicom_seg_bytes(run):
    listed, out = run
    before = {p.name: p.read_bytes() for p in (out / "ct_dicom").iterdir()}
    shutil.rmtree(out / "ct_dicom")
    result = run_cohort(listed, out, tasks=[Task(classes=("liver", "spleen"))], output_formats=KINDS, device="cpu")
    assert result.done == ["ct_dicom"] and [f.case_id for f in result.failed] == ["phantom_0"]
    assert {p.name: p.read_bytes() for p in (out / "ct_dicom").iterdir()} == before


def test_the_manifest_records_every_output_file(run):
    _, out = run
    manifest = json.loads((out / "manifest.json").read_text())
    for record in manifest["cases"]:
        assert sorted(record["outputs"]) == sorted(p.name for p in (out / record["case_id"]).iterdir())

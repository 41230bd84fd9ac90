"""What ``segment`` writes and says: a label map holds only 0 and the requested ids, whatever the
prompt and model family; the summary names the structures with their volumes; pictures."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from cli_runner import run

from voxelprompt.catalog import everything_classes, vista3d_catalog
from voxelprompt.measure import structure_volumes
from voxelprompt.imageio import read_labels

CLICK = "20,20,10"  # a voxel of the 40x40x20 crop (conftest.ct_crop_path)

#: prompt arguments -> the ids the output may hold besides 0
CASES = {
    "classes": (["--classes", "liver,spleen"], {1, 3}),
    "group class": (["--classes", "kidney"], {14, 5}),
    "clicks": (["--point", CLICK, "--negative-point", "5,5,5"], {1}),
    "new structure": (["--point", CLICK, "--new-structure"], {1}),
    "class and clicks": (["--classes", "spleen", "--point", CLICK], {3}),
    "zero-shot class and clicks": (["--classes", "140", "--point", CLICK], {140}),
    "everything": (["--everything"], set(everything_classes(132))),
}


@pytest.mark.parametrize("case", list(CASES))
def test_vista3d_output_holds_only_0_and_requested_ids(case, ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    extra, allowed = CASES[case]
    out = tmp_path / "seg.nii.gz"
    code, stdout, err = run(["segment", str(ct_crop_path), "-o", str(out), "-c", str(tiny_checkpoint), "-q", *extra], capsys)
    assert code == 0, err
    values = set(np.unique(np.asarray(nib.load(out).dataobj)).tolist())
    assert values <= {0} | allowed, f"{case}: unexpected values {sorted(values - {0} - allowed)}"
    assert "wrote" in stdout


@pytest.fixture()
def fake_segvol(tmp_path):
    """A tiny SegVol of the released design, saved as a checkpoint (recognised as SegVol)."""
    import torch

    from voxelprompt.families.segvol.network.builder import tiny_segvol

    path = tmp_path / "segvol.pth"
    torch.save(tiny_segvol(seed=0).state_dict(), path)
    return path


@pytest.mark.parametrize(
    ("extra", "allowed"),
    [(["--text", "left kidney"], {14}), (["--box", "5,5,3,30,30,15"], {1}), (["--text", "gallstone", "--point", CLICK], {1})],
    ids=["catalog text", "box", "free text and click"],
)
def test_segvol_output_holds_only_0_and_its_value(extra, allowed, ct_crop_path, fake_segvol, tmp_path, capsys):
    out = tmp_path / "seg.nii.gz"
    code, _, err = run(["segment", str(ct_crop_path), "-o", str(out), "-c", str(fake_segvol), "--model", "segvol", "-q", *extra], capsys)
    assert code == 0, err
    values = set(np.unique(np.asarray(nib.load(out).dataobj)).tolist())
    assert values <= {0} | allowed


def test_summary_names_structures_with_their_volume(ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "seg.nii.gz"
    code, stdout, err = run(["segment", str(ct_crop_path), "-o", str(out), "-c", str(tiny_checkpoint), "-q",
                             "--classes", "liver,spleen,aorta"], capsys)  # fmt: skip
    assert code == 0, err
    found = structure_volumes(read_labels(out))
    name = vista3d_catalog().name
    for s in found:  # one line per structure with its volume in ml (from the file, not from the code under test)
        assert any(name(s.label) in line and f"{s.ml:.1f} ml" in line for line in stdout.splitlines()), stdout
    missing = {1, 3, 6} - {s.label for s in found}
    for c in missing:
        assert f"{name(c)} ({c})" in stdout and "not found" in stdout
    assert f"{len(found)} structure(s) found" in stdout


def test_click_edit_that_changes_nothing_says_so(ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    """Only a negative click far from the automatic gallbladder (the tiny model's is a few voxels):
    Algorithm 1 removes nothing the click does not touch (refine.py), so the result must equal the
    automatic one and the summary must say so."""
    from scipy.ndimage import distance_transform_edt

    argv = ["segment", str(ct_crop_path), "-o", str(tmp_path / "a.nii.gz"), "-c", str(tiny_checkpoint), "-q", "--classes", "gallbladder"]
    code, _, err = run(argv, capsys)
    assert code == 0, err
    auto = np.asarray(nib.load(tmp_path / "a.nii.gz").dataobj)
    distance = distance_transform_edt(auto != 10) if (auto == 10).any() else np.full(auto.shape, np.inf)
    # inside the bundle's foreground crop (voxels > 0 HU), where the model space has the click
    ct = np.asarray(nib.load(ct_crop_path).dataobj)
    lo, hi = np.argwhere(ct > 0).min(0), np.argwhere(ct > 0).max(0) + 1
    inside = np.zeros(ct.shape, bool)
    inside[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    far = tuple(int(v) for v in np.unravel_index(int(np.argmax(np.where(inside, distance, 0))), auto.shape))
    assert distance[far] > 4  # 12 mm from it: well beyond Algorithm 1's 2-voxel search
    argv[3] = str(tmp_path / "b.nii.gz")
    code, stdout, err = run([*argv, "--negative-point", ",".join(map(str, far))], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(np.asarray(nib.load(tmp_path / "b.nii.gz").dataobj), auto)
    assert "the clicks changed nothing" in stdout, stdout


def test_preview_and_overlay_write_pictures(ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    out, preview = tmp_path / "seg.nii.gz", tmp_path / "pics" / "preview.png"
    code, stdout, err = run(["segment", str(ct_crop_path), "-o", str(out), "-c", str(tiny_checkpoint), "-q",
                             "--classes", "liver,spleen", "--preview", str(preview)], capsys)  # fmt: skip
    assert code == 0, err
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and str(preview) in stdout
    picture = tmp_path / "overlay.png"
    code, stdout, err = run(["overlay", str(ct_crop_path), str(out), "-o", str(picture)], capsys)
    assert code == 0 and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", err
    # labels on another grid, a bad picture suffix and a point outside are one-line errors
    other = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), str(other))
    for argv, message in (
        (["overlay", str(ct_crop_path), str(other), "-o", str(tmp_path / "x.png")], "not on the grid"),
        (["overlay", str(ct_crop_path), str(out), "-o", str(tmp_path / "x.jpg")], "x.jpg"),
        (["overlay", str(ct_crop_path), str(out), "-o", str(tmp_path / "x.png"), "--point", "99,0,0"], "outside"),
    ):
        code, _, err = run(argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.png").exists()


def test_the_shipped_demo_model_says_what_it_is(ct_crop_path, tmp_path, capsys):
    """Without --checkpoint the demo model runs, with one loud line; with one, no such line."""
    out = tmp_path / "seg.nii.gz"
    code, _, err = run(["segment", str(ct_crop_path), "-o", str(out), "--classes", "liver", "-q"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "DEMO model" in line]
    assert len(warnings) == 1 and "--checkpoint" in warnings[0] and "not meaningful" in warnings[0]


def test_a_checkpoint_run_has_no_demo_warning(ct_crop_path, tiny_checkpoint, tmp_path, capsys):
    code, _, err = run(["segment", str(ct_crop_path), "-o", str(tmp_path / "s.nii.gz"), "-c", str(tiny_checkpoint),
                        "--classes", "liver", "-q"], capsys)  # fmt: skip
    assert code == 0 and "DEMO model" not in err, err


def test_overlay_names_labels_of_another_scheme(tmp_path, capsys):
    """TotalSegmentator's own ids with its classes.json: liver (its 5) is named and coloured as
    the liver, not as VISTA3D's class 5 (right kidney)."""
    from shared_paths import shared_file
    from voxelprompt.catalog import class_color
    from voxelprompt.imageio import read_volume
    from voxelprompt.visualize import overlay_panels, relabel_to_catalog

    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    seg = shared_file("data", "totalseg", "example_ct_sm_seg.nii.gz")
    names_path = shared_file("data", "totalseg", "classes.json")
    picture = tmp_path / "ts.png"
    code, _, err = run(["overlay", str(ct), str(seg), "-o", str(picture), "--label-names", str(names_path)], capsys)
    assert code == 0 and picture.is_file(), err
    import json

    names = {int(k): v for k, v in json.loads(names_path.read_text()).items()}
    relabelled, shown = relabel_to_catalog(read_labels(seg), names)
    liver = vista3d_catalog().index("liver")
    assert shown[liver] == "liver" and (np.asarray(relabelled.array) == liver).sum() == (np.asarray(read_labels(seg).array) == 5).sum()
    panels = overlay_panels(read_volume(ct), relabelled, point=(81, 58, 19))
    assert liver in panels[0].ids and class_color(liver) == class_color(1)


@pytest.mark.slow  # the demo model on the 512x512x20 series: ~40-60 s on 2 cores
def test_segment_writes_an_rtstruct_of_a_dicom_series_marked_as_the_demo_models(tmp_path):
    import pydicom
    from cli_runner import script
    from dicom_checkers import dciodvfy_errors
    from shared_paths import shared_file

    out = tmp_path / "liver.rtstruct.dcm"
    done = script("segment", str(shared_file("data", "totalseg", "example_ct_dicom")), "-o", str(out), "-c", "demo",
                  "--classes", "liver", "--device", "cpu", "-q", timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert dciodvfy_errors(out) == []
    rs = pydicom.dcmread(out)
    assert rs.Modality == "RTSTRUCT" and [r.ROIName for r in rs.StructureSetROISequence] == ["liver"]
    assert rs.ROIContourSequence[0].ContourSequence  # contours, not an empty ROI
    assert "DEMO model" in rs.SeriesDescription and rs.ManufacturerModelName == "vista3d"


def test_segment_refuses_an_rtstruct_of_an_image_file_before_any_model_work(ct_crop_path, tmp_path):
    from cli_runner import script

    done = script("segment", str(ct_crop_path), "-o", str(tmp_path / "x.rtstruct.dcm"), "-c", "demo", "--classes", "liver", "-q")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "not a DICOM series folder" in done.stderr and "loading" not in done.stderr
    assert not list(tmp_path.glob("*.dcm"))

"""``run_cohort`` in this process: per-case isolation, outputs on the input grid, resume, refusal of
changed settings, several tasks merged (earlier wins)."""

from __future__ import annotations

import csv
import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from batch_cohort import CASE_IDS, CORRUPT, make_phantoms, output_bytes

from voxelprompt.batch import SOME_FAILED_EXIT, Task, run_cohort
from voxelprompt.batch.manifest import RunManifest
from voxelprompt.errors import VoxelPromptError
from voxelprompt.imageio import read_labels, read_volume

LIVER_SPLEEN = [Task(classes=("liver", "spleen"))]


@pytest.fixture(scope="module")
def first_run(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    return out, run_cohort(cohort, out, tasks=LIVER_SPLEEN, device="cpu")


@pytest.mark.slow  # the six-case cohort with the real CT and the DICOM series: ~25-60 s
def test_every_good_case_is_done_and_the_corrupt_one_is_in_failures_csv(first_run):
    out, result = first_run
    assert sorted(result.done) == sorted(CASE_IDS)
    assert [f.case_id for f in result.failed] == [CORRUPT]
    assert result.exit_code == SOME_FAILED_EXIT
    rows = list(csv.DictReader((out / "failures.csv").open()))
    assert [r["case_id"] for r in rows] == [CORRUPT]
    assert rows[0]["input"].endswith(f"{CORRUPT}.nii.gz") and "truncated" in rows[0]["error"]
    assert "\n" not in rows[0]["error"]
    assert not (out / CORRUPT).exists() and not (out / ".partial").exists()


@pytest.mark.slow  # the six-case cohort with the real CT and the DICOM series: ~25-60 s
def test_label_maps_are_on_the_input_grid_and_hold_only_the_prompted_ids(first_run, cohort):
    out, _ = first_run
    inputs = {"phantom_0": cohort.parent / "phantom_0.nii.gz", "ct_dicom": cohort.parent / "ct_dicom"}
    for case_id, source in inputs.items():
        image, labels = read_volume(source), read_labels(out / case_id / "labels.nii.gz")
        assert labels.shape == image.shape
        np.testing.assert_allclose(labels.affine, image.affine, atol=1e-4)
        assert set(np.unique(labels.array)) <= {0, 1, 3}  # liver 1, spleen 3
        names = json.loads((out / case_id / "label_names.json").read_text())
        assert {int(k) for k in names} == set(np.unique(labels.array)) - {0}
    assert json.loads((out / "phantom_0" / "label_names.json").read_text()) == {"1": "liver", "3": "spleen"}


@pytest.mark.slow  # the six-case cohort with the real CT and the DICOM series: ~25-60 s
def test_the_manifest_records_hashes_of_inputs_outputs_and_model(first_run):
    import hashlib

    out, _ = first_run
    manifest = RunManifest.load(out / "manifest.json")
    record = manifest.cases["example_ct_sm"]
    assert record.input_sha256 == hashlib.sha256(open(record.input, "rb").read()).hexdigest()
    assert record.outputs["labels.nii.gz"] == hashlib.sha256((out / "example_ct_sm" / "labels.nii.gz").read_bytes()).hexdigest()
    assert CORRUPT not in manifest.cases
    task = manifest.settings["tasks"][0]
    assert len(task["checkpoint_sha256"]) == 64 and task["classes"] == ["liver", "spleen"] and task["options"]["engine"] == "exact"


@pytest.mark.slow  # the six-case cohort with the real CT and the DICOM series: ~25-60 s
def test_a_rerun_skips_finished_cases_and_retries_failed_ones(first_run, cohort):
    out, _ = first_run
    before = output_bytes(out)
    result = run_cohort(cohort, out, tasks=LIVER_SPLEEN, device="cpu")
    assert sorted(result.skipped) == sorted(CASE_IDS) and result.done == []
    assert [f.case_id for f in result.failed] == [CORRUPT]
    assert output_bytes(out) == before


def test_a_rerun_redoes_a_case_whose_output_went_missing_byte_identically(cohort, tmp_path):
    out = tmp_path / "out"
    listed = tmp_path / "two.csv"
    listed.write_text(f"image\n{cohort.parent / 'phantom_0.nii.gz'}\n{cohort.parent / 'phantom_1.nii.gz'}\n")
    run_cohort(listed, out, tasks=LIVER_SPLEEN, device="cpu")
    before = output_bytes(out)
    (out / "phantom_1" / "labels.nii.gz").unlink()
    (out / ".partial" / "phantom_0.dead").mkdir(parents=True)  # a killed run's leftover
    result = run_cohort(listed, out, tasks=LIVER_SPLEEN, device="cpu")
    assert result.done == ["phantom_1"] and result.skipped == ["phantom_0"]
    assert output_bytes(out) == before
    assert not (out / ".partial").exists()


@pytest.mark.slow  # the six-case cohort with the real CT and the DICOM series: ~25-60 s
def test_changed_settings_are_refused_unless_overwrite(first_run, cohort, tmp_path):
    out, _ = first_run
    listed = tmp_path / "one.csv"
    listed.write_text(f"image\n{cohort.parent / 'phantom_0.nii.gz'}\n")
    with pytest.raises(VoxelPromptError, match="other settings.*task 1 classes"):
        run_cohort(listed, out, tasks=[Task(classes=("liver",))], device="cpu")
    with pytest.raises(VoxelPromptError, match="other settings.*output_formats"):
        run_cohort(listed, out, tasks=LIVER_SPLEEN, output_formats=("nrrd",), device="cpu")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    result = run_cohort(listed, copy, tasks=[Task(classes=("liver",))], device="cpu", overwrite=True)
    assert result.done == ["phantom_0"]
    assert set(np.unique(read_labels(copy / "phantom_0" / "labels.nii.gz").array)) <= {0, 1}


def test_a_folder_with_other_files_and_no_manifest_is_refused(cohort, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(VoxelPromptError, match="no run manifest"):
        run_cohort(cohort, tmp_path, tasks=LIVER_SPLEEN, device="cpu")


def test_usage_errors_come_before_any_work(cohort, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(VoxelPromptError, match="input not found"):
        run_cohort(tmp_path / "missing", out, tasks=LIVER_SPLEEN)
    with pytest.raises(VoxelPromptError, match="livr"):
        run_cohort(cohort, out, tasks=[Task(classes=("livr",))])
    with pytest.raises(VoxelPromptError, match="'rtdose': unknown kind"):
        run_cohort(cohort, out, tasks=LIVER_SPLEEN, output_formats=("nifti", "rtdose"))
    with pytest.raises(VoxelPromptError, match="nothing to segment"):
        run_cohort(cohort, out, tasks=[])
    assert not (out / "manifest.json").exists()


def test_two_tasks_merge_with_the_earlier_task_winning(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    make_phantoms(images, n=1)
    one, two, both = tmp_path / "one", tmp_path / "two", tmp_path / "both"
    run_cohort(images, one, tasks=[Task(classes=("liver",))], device="cpu")
    run_cohort(images, two, tasks=[Task(everything=True)], device="cpu", output_formats=("nrrd",))
    run_cohort(images, both, tasks=[Task(classes=("liver",)), Task(everything=True)], device="cpu")
    first = read_labels(one / "phantom_0" / "labels.nii.gz").array
    second = read_labels(two / "phantom_0" / "labels.nrrd").array
    merged = read_labels(both / "phantom_0" / "labels.nii.gz").array
    assert (first > 0).any() and (second != first).any()
    np.testing.assert_array_equal(merged, np.where(first > 0, first, second))
    names = json.loads((both / "phantom_0" / "label_names.json").read_text())
    assert names["1"] == "liver" and {int(k) for k in names} == set(np.unique(merged)) - {0}


def test_preview_and_nrrd_kinds_are_written(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    make_phantoms(images, n=1)
    out = tmp_path / "out"
    run_cohort(images, out, tasks=LIVER_SPLEEN, output_formats=("nrrd", "preview"), device="cpu")
    files = sorted(p.name for p in (out / "phantom_0").iterdir())
    assert files == ["label_names.json", "labels.nrrd", "preview.png"]
    assert (out / "phantom_0" / "preview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert nib.load(images / "phantom_0.nii.gz").shape == read_labels(out / "phantom_0" / "labels.nrrd").shape


def test_a_vista3d_task_and_a_segvol_text_task_merge_into_one_map(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "inference" / "segvol"))
    from segvol_fixtures import build_tiny_segvol

    from voxelprompt.batch.worker import clear_model_cache
    from voxelprompt.families.segvol.inference import SegVolSegmenter
    from voxelprompt.families.segvol.inference import segmenter as segvol_module

    tiny = build_tiny_segvol()
    checkpoint = tmp_path / "segvol.pth"
    torch.save(tiny.state_dict(), checkpoint)  # recognised as SegVol by its tensor names
    # the released SegVol is 180 M parameters: its loader hands out the tiny one (as tests/inference/segvol do)
    monkeypatch.setattr(segvol_module, "load", lambda ckpt, device, options, progress=False: SegVolSegmenter(tiny, device=device, mode=options.mode))
    clear_model_cache()
    images = tmp_path / "images"
    images.mkdir()
    make_phantoms(images, n=1)
    segvol = Task(text="spleen", family="segvol", checkpoint=str(checkpoint), options={"mode": "sliding"}, name="segvol")
    liver = Task(classes=("liver",), name="vista3d")
    run_cohort(images, tmp_path / "liver", tasks=[liver], device="cpu")
    run_cohort(images, tmp_path / "segvol", tasks=[segvol], device="cpu")
    run_cohort(images, tmp_path / "both", tasks=[liver, segvol], device="cpu")
    clear_model_cache()
    first = read_labels(tmp_path / "liver" / "phantom_0" / "labels.nii.gz").array
    second = read_labels(tmp_path / "segvol" / "phantom_0" / "labels.nii.gz").array
    merged = read_labels(tmp_path / "both" / "phantom_0" / "labels.nii.gz").array
    assert set(np.unique(second)) == {0, 3}  # SegVol's object takes the class its text names
    np.testing.assert_array_equal(merged, np.where(first > 0, first, second))
    names = json.loads((tmp_path / "both" / "phantom_0" / "label_names.json").read_text())
    assert names == {str(v): n for v, n in {1: "liver", 3: "spleen"}.items() if v in set(np.unique(merged))}

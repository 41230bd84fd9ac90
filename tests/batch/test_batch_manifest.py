"""The run manifest and failures.csv: atomic rewrites, what counts as finished, what differs."""

from __future__ import annotations

import csv

import pytest

from voxelprompt.batch.manifest import CaseRecord, Failure, RunManifest, file_sha256, settings_differ, write_failures
from voxelprompt.errors import InputError


def test_a_manifest_round_trips_and_knows_finished_cases(tmp_path):
    folder = tmp_path / "case"
    folder.mkdir()
    (folder / "labels.nii.gz").write_bytes(b"labels")
    manifest = RunManifest(settings={"tasks": [{"classes": ["liver"]}]})
    manifest.cases["case"] = CaseRecord("case", "in.nii.gz", "abc", {"labels.nii.gz": file_sha256(folder / "labels.nii.gz")})
    manifest.save(tmp_path / "manifest.json")
    loaded = RunManifest.load(tmp_path / "manifest.json")
    assert loaded == manifest and loaded.settings_sha256 == manifest.settings_sha256
    assert loaded.is_finished("case", "abc", folder)
    assert not loaded.is_finished("case", "changed input", folder)
    assert not loaded.is_finished("other", "abc", folder)
    (folder / "labels.nii.gz").write_bytes(b"edited")
    assert not loaded.is_finished("case", "abc", folder)
    (folder / "labels.nii.gz").unlink()
    assert not loaded.is_finished("case", "abc", folder)
    assert not list(tmp_path.glob(".*tmp"))


def test_an_unreadable_manifest_is_a_one_line_error(tmp_path):
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(InputError, match="cannot read run manifest"):
        RunManifest.load(tmp_path / "manifest.json")
    assert RunManifest.load(tmp_path / "none.json") is None


def test_settings_differ_names_task_fields():
    old = {"tasks": [{"classes": ["liver"], "checkpoint_sha256": "a"}], "output_formats": ["nifti"], "series": "only"}
    new = {"tasks": [{"classes": ["liver"], "checkpoint_sha256": "b"}], "output_formats": ["nrrd"], "series": "only"}
    assert settings_differ(old, new) == ["output_formats", "task 1 checkpoint_sha256"]
    assert settings_differ(old, {**old, "tasks": []}) == ["tasks"]


def test_failures_csv_is_sorted_and_quoted(tmp_path):
    write_failures(tmp_path / "failures.csv", [Failure("b", "b.nii", "bad, very"), Failure("a", "a.nii", 'said "no"')])
    rows = list(csv.reader((tmp_path / "failures.csv").open()))
    assert rows == [["case_id", "input", "error"], ["a", "a.nii", 'said "no"'], ["b", "b.nii", "bad, very"]]

"""What an INPUT holds: cases from image folders, DICOM study folders, datalists and CSVs, with
stable unique ids; the rule for a DICOM folder holding several series."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from batch_cohort import make_phantoms

from shared_paths import shared_file
from voxelprompt.batch.cases import discover_cases, hash_files
from voxelprompt.errors import InputError


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("images")
    paths = make_phantoms(folder, n=2)
    (folder / "notes.txt").write_text("not an image")
    return paths


def _two_series(folder: Path) -> Path:
    """A study folder with the shared series split in two: 12 and 8 slices, other SeriesInstanceUIDs."""
    import pydicom

    folder.mkdir(parents=True)
    files = sorted(shared_file("data", "totalseg", "example_ct_dicom").iterdir())
    for i, path in enumerate(files):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = "1.2.3.4.1" if i < 12 else "1.2.3.4.2"
        ds.save_as(folder / path.name)
    return folder


def test_a_folder_of_images_gives_one_case_per_file_named_by_the_file(phantoms):
    cases = discover_cases(phantoms[0].parent)
    assert [c.case_id for c in cases] == ["phantom_0", "phantom_1"]
    assert [c.files for c in cases] == [(phantoms[0].resolve(),), (phantoms[1].resolve(),)]


def test_a_relative_input_folder_gives_the_same_cases(phantoms, monkeypatch):
    folder = phantoms[0].parent
    monkeypatch.chdir(folder.parent)
    relative = discover_cases(Path(folder.name))
    assert [(c.case_id, c.files) for c in relative] == [(c.case_id, c.files) for c in discover_cases(folder)]
    monkeypatch.chdir(folder)
    assert [c.case_id for c in discover_cases(Path("."))] == ["phantom_0", "phantom_1"]


def test_sub_folders_beside_images_are_named_as_not_read(phantoms, tmp_path, caplog):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(phantoms[0], mixed / phantoms[0].name)
    (mixed / "dicom_study").mkdir()
    with caplog.at_level("WARNING"):
        cases = discover_cases(mixed)
    assert [c.case_id for c in cases] == ["phantom_0"]
    assert "sub-folders are not read (dicom_study)" in caplog.text


def test_a_folder_of_dicom_studies_gives_one_case_per_series_folder(tmp_path):
    series = shared_file("data", "totalseg", "example_ct_dicom")
    shutil.copytree(series, tmp_path / "studies" / "patient1" / "ct")
    shutil.copytree(series, tmp_path / "studies" / "patient2")
    cases = discover_cases(tmp_path / "studies")
    assert [c.case_id for c in cases] == ["patient1__ct", "patient2"]
    assert all(c.is_dicom and len(c.files) == 20 and c.error is None for c in cases)
    # the same bytes under other names hash alike only when the names match too
    assert hash_files(cases[0].files, [f.name for f in cases[0].files]) == hash_files(cases[1].files, [f.name for f in cases[1].files])


def test_several_series_in_a_case_folder_follow_the_series_rule(tmp_path):
    _two_series(tmp_path / "studies" / "p1")
    only = discover_cases(tmp_path / "studies")
    assert only[0].error is not None and "1.2.3.4.1" in only[0].error and "1.2.3.4.2" in only[0].error
    most = discover_cases(tmp_path / "studies", series="most-slices")
    assert most[0].series_uid == "1.2.3.4.1" and len(most[0].files) == 12
    chosen = discover_cases(tmp_path / "studies", series="1.2.3.4.2")
    assert chosen[0].series_uid == "1.2.3.4.2" and len(chosen[0].files) == 8
    assert "no DICOM series" in discover_cases(tmp_path / "studies", series="9.9")[0].error


def test_a_datalist_lists_images_relative_to_itself(phantoms, tmp_path):
    datalist = tmp_path / "datalist.json"
    entries = [{"image": str(phantoms[0]), "label": "ignored.nii.gz"}]
    datalist.write_text(json.dumps({"training": entries, "testing": [str(phantoms[1])]}))
    assert [c.case_id for c in discover_cases(datalist)] == ["phantom_0", "phantom_1"]


def test_a_csv_may_name_its_cases_or_be_a_bare_list_of_paths(phantoms, tmp_path):
    named = tmp_path / "named.csv"
    named.write_text(f"case_id,image\nfirst,{phantoms[0]}\nsecond,{phantoms[1]}\n")
    assert [c.case_id for c in discover_cases(named)] == ["first", "second"]
    bare = tmp_path / "bare.csv"
    bare.write_text(f"{phantoms[1]}\n{phantoms[0]}\n")
    assert [c.case_id for c in discover_cases(bare)] == ["phantom_0", "phantom_1"]


def test_case_ids_keep_folders_apart_and_duplicates_are_refused(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        make_phantoms(tmp_path / sub, n=1)
    listed = tmp_path / "list.csv"
    listed.write_text(f"image\n{tmp_path / 'a' / 'phantom_0.nii.gz'}\n{tmp_path / 'b' / 'phantom_0.nii.gz'}\n")
    assert [c.case_id for c in discover_cases(listed)] == ["a__phantom_0", "b__phantom_0"]
    twice = tmp_path / "twice.csv"
    twice.write_text(f"case_id,image\nx,{tmp_path / 'a' / 'phantom_0.nii.gz'}\nx,{tmp_path / 'b' / 'phantom_0.nii.gz'}\n")
    with pytest.raises(InputError, match="case id 'x'"):
        discover_cases(twice)


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "missing", "input not found"),
        ("{not json", "list.json", "cannot read datalist"),
        ('{"training": [{"label": "x"}]}', "list.json", "no 'image'"),
        ("label\nx.nii.gz\n", "list.csv", "column named 'image'"),
        ("", "image.txt", "must be a folder"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        discover_cases(path)


def test_an_empty_folder_has_no_cases(tmp_path):
    with pytest.raises(InputError, match="no cases found"):
        discover_cases(tmp_path)

"""The one Case record and the one datalist reader that batch, evaluation and training share."""

from __future__ import annotations

import json

import pytest

from voxelprompt.batch.cases import discover_cases
from voxelprompt.datasets import Case, entry_case, image_stem, read_datalist
from voxelprompt.errors import InputError
from voxelprompt.evaluation.datasets import load_dataset
from voxelprompt.training.datalist import load_datalist


def _write(folder, data) -> object:
    path = folder / "datalist.json"
    path.write_text(json.dumps(data))
    for name in ("a.nii.gz", "a_seg.nii.gz", "b.nrrd", "b_seg.nrrd", "sv.nii.gz"):
        (folder / name).write_bytes(b"")
    return path


def test_every_door_reads_one_datalist_into_one_case_type(tmp_path):
    path = _write(
        tmp_path,
        {
            "training": [{"image": "a.nii.gz", "label": "a_seg.nii.gz", "label_sv": "sv.nii.gz", "dataset": "x"}],
            "testing": [{"image": ["b.nrrd"], "label": "b_seg.nrrd"}],
        },
    )
    train = load_datalist(path, check=False).training[0]
    evaluated = load_dataset(path, split="testing").cases[0]
    batch = discover_cases(path)
    assert all(type(c) is Case for c in (train, evaluated, *batch))
    assert train.image == (tmp_path / "a.nii.gz").resolve() and train.label == (tmp_path / "a_seg.nii.gz").resolve()
    assert train.supervoxel == (tmp_path / "sv.nii.gz").resolve() and train.dataset == "x"
    assert train.name == "datalist.json:training[0]"
    # An image given as a list of channels: the first is read.
    assert evaluated.image == (tmp_path / "b.nrrd").resolve() and evaluated.name == "b"
    assert [(c.case_id, c.path) for c in batch] == [("a", (tmp_path / "a.nii.gz").resolve()), ("b", (tmp_path / "b.nrrd").resolve())]


def test_entry_rules_and_messages(tmp_path):
    assert entry_case("a.nii.gz", tmp_path, "n", require_label=False, allow_string=True).image == (tmp_path / "a.nii.gz").resolve()
    with pytest.raises(InputError, match=r"^n: entry must be an object with 'image' and 'label', got a string 'a.nii.gz'$"):
        entry_case("a.nii.gz", tmp_path, "n")
    with pytest.raises(InputError, match=r"^n: entry has no 'label'$"):
        entry_case({"image": "a.nii.gz"}, tmp_path, "n")
    assert entry_case({"image": "a.nii.gz"}, tmp_path, "n", require_label=False).label is None
    dropped = entry_case({"image": "a", "label": "b", "pseudo_label": "p", "pseudo_label_reliability": 0}, tmp_path, "n")
    assert dropped.pseudo_label is None
    with pytest.raises(InputError, match=r"pseudo_label_reliability must be a number, got 'x'"):
        entry_case({"image": "a", "label": "b", "pseudo_label_reliability": "x"}, tmp_path, "n")


def test_datalist_file_errors(tmp_path):
    with pytest.raises(InputError, match="datalist not found"):
        read_datalist(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read datalist"):
        read_datalist(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(InputError, match="a datalist is a JSON object .* got list"):
        read_datalist(tmp_path / "list.json")
    (tmp_path / "split.json").write_text('{"training": {}}')
    with pytest.raises(InputError, match="'training' must be a list"):
        read_datalist(tmp_path / "split.json").entries("training")


def test_image_stem():
    assert [image_stem(n) for n in ("ct.nii.gz", "CT.NII", "x.nrrd", "h.nhdr", "folder")] == ["ct", "CT", "x", "h", "folder"]

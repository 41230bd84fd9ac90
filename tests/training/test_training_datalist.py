"""Datalist reading: relative paths, dataset names, and bad entries named or skipped."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from voxelprompt.errors import InputError
from voxelprompt.training.datalist import load_datalist, load_datalists


def _copy_list(src: Path, dst_dir: Path, training: list[dict]) -> Path:
    for sub in ("images", "labels"):
        shutil.copytree(src.parent / sub, dst_dir / sub, dirs_exist_ok=True)
    path = dst_dir / "datalist.json"
    path.write_text(json.dumps({"training": training, "validation": []}))
    return path


def _entries(datalist: Path) -> list[dict]:
    return json.loads(datalist.read_text())["training"]


def test_paths_relative_to_the_datalist_and_dataset_names(phantom_datalist):
    dl = load_datalist(phantom_datalist)
    assert len(dl.training) == 2 and len(dl.validation) == 1
    case = dl.training[0]
    assert case.image.is_absolute() and case.image.is_file()
    assert case.dataset == "phantom" and case.supervoxel is None
    d = case.as_dict()
    assert d["dataset_name"] == "phantom" and d["image"] == str(case.image)
    assert load_datalists([phantom_datalist, phantom_datalist]).training == dl.training * 2


def test_supervoxel_key_and_default_dataset(phantom_datalist, tmp_path):
    entries = [dict(e) for e in _entries(phantom_datalist)]
    entries[0].pop("dataset")
    entries[0]["label_sv"] = entries[0]["label"]  # VISTA's key; any map on the image grid
    path = _copy_list(phantom_datalist, tmp_path, entries)
    case = load_datalist(path, dataset="mine").training[0]
    assert case.dataset == "mine" and case.supervoxel == case.label


@pytest.mark.parametrize("problem", ["missing", "unreadable", "grid", "no_label"])
def test_bad_entry_raises_naming_it_or_is_skipped(phantom_datalist, tmp_path, caplog, problem):
    entries = [dict(e) for e in _entries(phantom_datalist)]
    path = _copy_list(phantom_datalist, tmp_path, entries)
    bad = entries[1]
    if problem == "missing":
        bad["image"] = "images/nowhere.nii.gz"
    elif problem == "unreadable":
        (tmp_path / "images" / "junk.nii.gz").write_bytes(b"not a nifti at all")
        bad["image"] = "images/junk.nii.gz"
    elif problem == "grid":
        label = nib.load(str(tmp_path / bad["label"]))
        shifted = nib.Nifti1Image(np.asarray(label.dataobj), label.affine @ np.diag([1.0, 1.0, 2.0, 1.0]))
        nib.save(shifted, str(tmp_path / "labels" / "shifted.nii.gz"))
        bad["label"] = "labels/shifted.nii.gz"
    else:
        bad.pop("label")
    path.write_text(json.dumps({"training": entries}))
    with pytest.raises(InputError, match=r"datalist\.json:training\[1\]"):
        load_datalist(path)
    with caplog.at_level(logging.WARNING, logger="voxelprompt.training.datalist"):
        dl = load_datalist(path, skip_bad=True)
    assert len(dl.training) == 1
    assert "training[1]" in caplog.text


def test_label_shape_mismatch_is_named(phantom_datalist, tmp_path):
    entries = [dict(e) for e in _entries(phantom_datalist)]
    path = _copy_list(phantom_datalist, tmp_path, entries)
    label = nib.load(str(tmp_path / entries[0]["label"]))
    small = nib.Nifti1Image(np.asarray(label.dataobj)[:-2], label.affine)
    nib.save(small, str(tmp_path / "labels" / "small.nii.gz"))
    entries[0]["label"] = "labels/small.nii.gz"
    path.write_text(json.dumps({"training": entries}))
    with pytest.raises(InputError, match=r"training\[0\]: label shape"):
        load_datalist(path)


def test_unreadable_datalist(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="cannot read datalist"):
        load_datalist(path)
    with pytest.raises(InputError, match="not found"):
        load_datalist(tmp_path / "absent.json")


def test_unlabeled_entries_and_pseudo_labels(phantom_datalist, tmp_path):
    entries = [dict(e) for e in _entries(phantom_datalist)]
    entries[0]["pseudo_label"] = entries[0]["label"]
    entries[1].pop("label")
    entries[1]["pseudo_label"] = entries[0]["label"]
    entries[1]["pseudo_label_reliability"] = 0  # the official flag of an unusable pseudo label
    path = _copy_list(phantom_datalist, tmp_path, entries)
    with pytest.raises(InputError, match=r"training\[1\]: entry has no 'label'"):
        load_datalist(path)
    first, second = load_datalist(path, require_label=False).training
    assert first.pseudo_label == first.label and first.as_dict()["pseudo_label"] == str(first.label)
    assert second.label is None and second.pseudo_label is None
    assert "label" not in second.as_dict() and "pseudo_label" not in second.as_dict()
    entries[1].pop("image")
    path.write_text(json.dumps({"training": entries}))
    with pytest.raises(InputError, match=r"training\[1\]: entry has no 'image'$"):
        load_datalist(path, require_label=False)


def test_pseudo_label_grid_is_checked(phantom_datalist, tmp_path):
    entries = [dict(e) for e in _entries(phantom_datalist)]
    path = _copy_list(phantom_datalist, tmp_path, entries)
    label = nib.load(str(tmp_path / entries[0]["label"]))
    nib.save(nib.Nifti1Image(np.asarray(label.dataobj)[:-2], label.affine), str(tmp_path / "labels" / "small.nii.gz"))
    entries[0]["pseudo_label"] = "labels/small.nii.gz"
    path.write_text(json.dumps({"training": entries}))
    with pytest.raises(InputError, match=r"training\[0\]: pseudo label shape"):
        load_datalist(path)

"""Tests for voxelprompt.imageio.label_names: the value -> name JSON beside a label map."""

from __future__ import annotations

import json

import pytest

from voxelprompt.errors import InputError
from voxelprompt.imageio import label_names_path, read_label_names, write_label_names


def test_round_trip_in_value_order_and_reproducible(tmp_path):
    names = {117: "lesion", 3: "spleen", 1: "liver"}
    path = write_label_names(names, tmp_path / "seg.label_names.json")
    assert read_label_names(path) == names
    assert list(json.loads(path.read_text())) == ["1", "3", "117"]
    first = path.read_bytes()
    write_label_names(dict(reversed(list(names.items()))), path)
    assert path.read_bytes() == first


@pytest.mark.parametrize(
    ("label_map", "expected"),
    [("out/seg.nii.gz", "out/seg.label_names.json"), ("seg.nrrd", "seg.label_names.json"),
     ("c/case.seg.nrrd", "c/case.label_names.json"), ("seg.dcm", "seg.dcm.label_names.json")],
)  # fmt: skip
def test_label_names_path_sits_beside_the_label_map(label_map, expected, tmp_path):
    assert label_names_path(tmp_path / label_map) == tmp_path / expected


def test_bad_values_and_files_are_refused(tmp_path):
    with pytest.raises(InputError, match=">= 1"):
        write_label_names({0: "background"}, tmp_path / "x.json")
    with pytest.raises(InputError, match="empty name"):
        write_label_names({2: " "}, tmp_path / "x.json")
    (tmp_path / "bad.json").write_text('{"a": "liver"}')
    with pytest.raises(InputError, match="bad entry"):
        read_label_names(tmp_path / "bad.json")
    with pytest.raises(InputError, match="cannot read"):
        read_label_names(tmp_path / "missing.json")

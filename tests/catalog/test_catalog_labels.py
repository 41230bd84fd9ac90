from __future__ import annotations

import json

import pytest

from shared_paths import shared_file
from voxelprompt.catalog import (
    EVERYTHING_EXCLUDED,
    GROUPS,
    SPECIAL_CLASSES,
    everything_classes,
    expand_groups,
    vista3d_catalog,
)
from voxelprompt.errors import PromptError


def test_table_matches_reference_fixture():
    ref = json.loads(shared_file("fixtures", "vista3d", "label_dict.json").read_text())
    names = vista3d_catalog().names
    assert len(ref) == 124
    for name, index in ref.items():
        assert names[index] == name
    # plus the three group names, nothing else
    assert set(names) - set(ref.values()) == set(GROUPS)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("liver", 1),
        ("LIVER", 1),
        ("kidney_left", 14),
        ("left kidney", 14),
        ("Left_Kidney", 14),
        ("lung_middle_lobe_right", 31),
        ("urinary_bladder", 15),
        ("liver tumour", 26),
        ("vertebrae_L5", 33),
        ("rib_left_1", 63),
        ("kidney", 2),
        ("  spleen ", 3),
        ("12", 12),
        (57, 57),
    ],
)
def test_name_lookup_is_tolerant(query, expected):
    assert vista3d_catalog().index(query) == expected


def test_every_totalsegmentator_name_with_a_vista_counterpart_resolves():
    """TotalSegmentator v2 names (the shared example's labels) map onto VISTA3D ids by name."""
    ts = json.loads(shared_file("data", "totalseg", "classes.json").read_text())
    catalog = vista3d_catalog()
    resolved = {}
    for name in ts.values():
        try:
            resolved[name] = catalog.index(name)
        except PromptError:
            pass
    assert len(resolved) >= 110
    assert resolved["kidney_left"] == 14 and resolved["urinary_bladder"] == 15 and resolved["sacrum"] == 97
    assert len(set(resolved.values())) == len(resolved)  # no two TS classes collapse onto one id


def test_unknown_name_suggests_close_names():
    with pytest.raises(PromptError, match=r"'livr'.*'liver'"):
        vista3d_catalog().index("livr")


def test_everything_sets_of_both_profiles():
    bundle, research = everything_classes(132), everything_classes(133)
    assert len(bundle) == 117 and len(research) == 118
    assert set(research) - set(bundle) == {133}
    assert not set(bundle) & EVERYTHING_EXCLUDED
    assert not set(bundle) & SPECIAL_CLASSES - {57}


def test_groups_expand_to_subclasses_in_order():
    assert expand_groups((2,)) == (14, 5)
    assert expand_groups((20, 1)) == (28, 29, 30, 31, 32, 1)
    bones = expand_groups((21,))
    assert 33 in bones and 63 in bones and 122 in bones and len(bones) == 24 + 35 + 3


def test_special_classes_follow_the_research_code():
    assert SPECIAL_CLASSES == {23, 24, 25, 26, 27, 57, 128}

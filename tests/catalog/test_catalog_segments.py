"""Tests for voxelprompt.catalog.segments: VISTA3D codes only when the name names the class."""

from __future__ import annotations

import pytest

from voxelprompt.catalog import class_color, vista3d_catalog, vista3d_colors
from voxelprompt.catalog.segments import GENERIC_TYPE, segment_style


def test_a_named_class_gets_its_codes_and_laterality():
    kidney = vista3d_catalog().index("left kidney")
    style = segment_style(kidney, "Left_Kidney")  # names compare after normalisation
    record = vista3d_colors()[kidney]
    assert style.coded and (style.category, style.type, style.modifier) == (record.category, record.type, record.modifier)
    assert style.rgb == class_color(kidney) and style.name == "Left_Kidney"


def test_other_names_related_entries_and_unknown_ids_are_generic():
    related = next(i for i, c in vista3d_colors().items() if c.mapping == "related")
    for value, name in [(1, "tumour"), (related, vista3d_colors()[related].name), (999, "object")]:
        style = segment_style(value, name)
        assert not style.coded and style.type == GENERIC_TYPE and style.modifier is None
    with pytest.raises(ValueError, match=">= 1"):
        segment_style(0, "background")

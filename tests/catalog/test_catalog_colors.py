"""The anatomical colour table: generated from 3D Slicer's colours, complete, and shaded within families."""

from __future__ import annotations

import colorsys
import fnmatch
import json
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from voxelprompt.catalog import GROUPS, class_color, fallback_color, vista3d_catalog, vista3d_colors

ROOT = Path(__file__).resolve().parents[2]
DCMQI = Path("/work/.mirror/QIICR+dcmqi/repo")
SLICER_FILE = "doc/segContexts/SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json"


@pytest.fixture(scope="module")
def slicer_json(tmp_path_factory) -> Path:
    """dcmqi's Slicer anatomy file from the local mirror (absent in CI: the tests that need it skip)."""
    if not DCMQI.exists():
        pytest.skip(f"dcmqi mirror not on this machine ({DCMQI}); the table is checked against it where present")
    path = tmp_path_factory.mktemp("dcmqi") / "slicer.json"
    path.write_bytes(subprocess.run(["git", "-C", str(DCMQI), "show", f"HEAD:{SLICER_FILE}"],
                                    check=True, capture_output=True).stdout)  # fmt: skip
    return path


def _slicer_labels(path: Path) -> dict[str, tuple[tuple[int, ...], str, str | None]]:
    """3dSlicerLabel -> (colour, type CodeValue, modifier CodeValue) read straight from the file."""
    out: dict[str, tuple[tuple[int, ...], str, str | None]] = {}
    for category in json.loads(path.read_text())["SegmentationCodes"]["Category"]:
        for typ in category["Type"]:
            for item, mod in [(typ, None)] + [(m, m["CodeValue"]) for m in typ.get("Modifier", [])]:
                if "3dSlicerLabel" in item:
                    colour = tuple(item["recommendedDisplayRGBValue"])
                    out.setdefault(item["3dSlicerLabel"], (colour, typ["CodeValue"], mod))
    return out


def _hue(rgb) -> float:
    return colorsys.rgb_to_hls(*(c / 255 for c in rgb))[0]


def test_every_vista3d_class_has_a_colour_and_codes():
    colors = vista3d_colors()
    assert set(colors) == set(vista3d_catalog().names)  # every class and the three groups
    for index, name in vista3d_catalog().names.items():
        rec = colors[index]
        assert rec.name == name and rec.index == index
        assert class_color(index) == rec.rgb and all(0 <= c <= 255 for c in rec.rgb)
        assert rec.type.scheme == "SCT" and rec.category.scheme == "SCT" and rec.type.value.isdigit()
        assert rec.mapping in {"exact", "synonym", "broader", "part of", "related"}


@pytest.mark.parametrize("name", ["liver", "spleen", "pancreas", "right kidney"])
def test_named_organs_keep_slicers_own_colour(name):
    rec = vista3d_colors()[vista3d_catalog().index(name)]
    assert (rec.slicer_label, rec.mapping, rec.rgb) == (name, "exact", rec.slicer_rgb)


@pytest.mark.parametrize("name", ["liver", "spleen", "aorta", "bladder", "left lung upper lobe", "right kidney"])
def test_colours_and_codes_are_those_of_the_slicer_file(slicer_json, name):
    source = _slicer_labels(slicer_json)
    rec = vista3d_colors()[vista3d_catalog().index(name)]
    assert (rec.slicer_rgb, rec.type.value, rec.modifier and rec.modifier.value) == source[rec.slicer_label]


def test_every_class_points_at_a_slicer_entry(slicer_json):
    source = _slicer_labels(slicer_json)
    for index, rec in vista3d_colors().items():
        if index in GROUPS and rec.slicer_label not in source:
            continue  # kidney / lung: Slicer lists only their left and right entries
        assert (rec.slicer_rgb, rec.type.value, rec.modifier and rec.modifier.value) == source[rec.slicer_label]


def test_script_regenerates_the_packaged_table(slicer_json, tmp_path):
    out = tmp_path / "colors.json"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_color_table.py"), str(slicer_json), "-o", str(out)],
                   check=True, capture_output=True)  # fmt: skip
    packaged = resources.files("voxelprompt.catalog").joinpath("vista3d_colors.json").read_bytes()
    assert out.read_bytes() == packaged


@pytest.mark.parametrize(
    "family",
    [range(33, 57), range(63, 75), range(75, 87), range(98, 108)],
    ids=["vertebrae", "left ribs", "right ribs", "muscles"],
)
def test_neighbours_in_a_family_differ_but_keep_the_hue(family):
    colors = vista3d_colors()
    for a, b in zip(family, family[1:]):
        assert colors[a].rgb != colors[b].rgb, (colors[a].name, colors[b].name)
    for index in family:
        rec = colors[index]
        assert rec.mapping in {"broader", "part of"}
        assert abs(_hue(rec.rgb) - _hue(rec.slicer_rgb)) < 0.02, rec.name


def _delta_e(a, b) -> float:
    import numpy as np
    from skimage.color import deltaE_ciede2000, rgb2lab

    lab = rgb2lab(np.array([a, b], dtype=float).reshape(1, 2, 3) / 255.0)[0]
    return float(deltaE_ciede2000(lab[0], lab[1]))


def test_neighbouring_organs_that_slicer_colours_alike_are_told_apart():
    """Slicer's liver, aorta, stomach, heart, right kidney and bladder lie within CIEDE2000 1.3-9 of
    each other; in the table every two classes of different Slicer entries that are not shaded family
    members (vertebrae, ribs, muscles, vessels ...) differ by at least 10."""
    from collections import Counter

    colors, index = vista3d_colors(), vista3d_catalog().index
    six = ["liver", "aorta", "stomach", "heart", "right kidney", "bladder"]
    slicer = [colors[index(n)].slicer_rgb for n in six]
    assert min(_delta_e(a, b) for i, a in enumerate(slicer) for b in slicer[i + 1 :]) < 2  # the problem
    shown = [colors[index(n)].rgb for n in six]
    assert min(_delta_e(a, b) for i, a in enumerate(shown) for b in shown[i + 1 :]) >= 10
    records = [r for i, r in colors.items() if i not in GROUPS]
    entries = Counter(r.slicer_rgb for r in records)
    singles = [r for r in records if entries[r.slicer_rgb] == 1]
    for i, a in enumerate(singles):
        for b in singles[i + 1 :]:
            assert _delta_e(a.rgb, b.rgb) >= 10, (a.name, b.name)


def test_hand_mapped_classes():
    colors, index = vista3d_colors(), vista3d_catalog().index
    expected = {
        "bladder": "urinary bladder",
        "left lung upper lobe": "superior lobe of left lung",
        "vertebrae L1": "lumbar vertebral column",
        "left rib 3": "ribs",
        "left iliac artery": "artery",
        "hepatic tumor": "mass",
        "left kidney cyst": "cyst",
        "left gluteus maximus": "muscle",
    }
    assert {name: colors[index(name)].slicer_label for name in expected} == expected
    assert colors[index("left kidney")].modifier.meaning == "Left"
    assert colors[index("left iliac artery")].laterality == "left" and colors[index("heart")].laterality is None


def test_fallback_colours_for_ids_outside_the_table():
    unknown = [i for i in range(1, 512) if i not in vista3d_colors()]
    assert 133 in unknown and 511 in unknown
    for i in unknown:
        assert class_color(i) == fallback_color(i) and all(0 <= c <= 255 for c in class_color(i))
    assert all(fallback_color(a) != fallback_color(b) for a, b in zip(unknown, unknown[1:]))
    with pytest.raises(ValueError, match="background"):
        class_color(0)


def test_licence_ships_with_the_table():
    text = resources.files("voxelprompt.catalog").joinpath("SLICER_COLORS_LICENSE.txt").read_text()
    assert "dcmqi" in text and "Redistribution and use in source and binary forms" in text
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["voxelprompt.catalog"]
    for name in ("SLICER_COLORS_LICENSE.txt", "vista3d_colors.json"):
        assert any(fnmatch.fnmatch(name, p) for p in patterns), name


def test_catalog_stays_torch_free():
    code = "import sys, voxelprompt.catalog as c; c.class_color(1); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

"""Recipes: the four stages' defaults, overrides, and JSON/YAML round trips."""

from __future__ import annotations

import json

import pytest

from voxelprompt.errors import InputError
from voxelprompt.training import load_recipe
from voxelprompt.families.vista3d.training.recipe import (
    RECIPE_REGISTRY,
    recipe_from_dict,
    recipe_to_dict,
    save_recipe,
)


def test_stage_defaults_follow_the_official_configs():
    s1, s2, s3, s4 = (RECIPE_REGISTRY[f"stage{i}"]() for i in range(1, 5))
    for r in (s1, s2, s3, s4):
        assert r.optim.lr == 2e-5 and r.optim.weight_decay == 1e-5
        assert r.patch.roi == (128, 128, 128) and r.patch.spacing == (1.5, 1.5, 1.5)
        assert r.prompts.max_clicks == 3
    for r in (s1, s2):
        assert r.prompts.branch == "point" and r.prompts.max_foreground == 4 and r.prompts.iterations == 5
        assert r.freeze == "none"
    for r in (s3, s4):
        assert r.prompts.branch == "auto" and (r.prompts.max_foreground, r.prompts.max_background) == (32, 4)
        assert r.freeze == "point"
    assert s1.data.supervoxels and s1.prompts.zero_shot_source == "supervoxel"
    assert not s2.data.supervoxels and s2.prompts.zero_shot_source is None
    assert s2.data.dataset_sampling == "weighted" and s4.data.dataset_sampling == "uniform"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip_and_relative_paths(tmp_path, suffix):
    recipe = RECIPE_REGISTRY["stage3"](width=16, patch={"roi": [64, 64, 64]}, data={"datalists": ["d.json"]})
    path = save_recipe(recipe, tmp_path / f"r{suffix}")
    loaded = load_recipe(path)
    assert loaded.patch.roi == (64, 64, 64) and loaded.width == 16
    assert loaded.data.datalists == (str((tmp_path / "d.json").resolve()),)
    assert recipe_to_dict(loaded)["prompts"] == recipe_to_dict(recipe)["prompts"]


def test_file_with_base_and_overrides(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"base": "stage4", "steps": 7, "data": {"dataset_weights": {"a": 2.0}}}))
    r = load_recipe(path)
    assert r.stage == 4 and r.steps == 7 and r.data.dataset_weights == {"a": 2.0}
    assert r.prompts.max_foreground == 32


@pytest.mark.parametrize(
    "data,match",
    [
        ({"base": "stage9"}, "unknown base"),
        ({"stepz": 3}, "unknown field 'stepz'"),
        ({"patch": {"roi": [30, 30, 30]}}, "multiples of 16"),
        ({"freeze": "everything"}, "freeze must be"),
        ({"prompts": {"branch": "box"}}, "branch must be"),
    ],
)
def test_bad_recipes_name_the_problem(data, match):
    with pytest.raises(InputError, match=match):
        recipe_from_dict(data)


def test_names_resolve_through_the_registry():
    assert load_recipe("stage2").stage == 2
    with pytest.raises(InputError, match="recipe not found"):
        load_recipe("stage7")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_data_pipeline_fields_round_trip(tmp_path, suffix):
    data = {
        "datalists": ["d.json"],
        "pseudo_label_exclude": {"*": [25], "AMOS22": [3, 4]},
        "dataset_weights": {"AeroPath": 2.0},
        "synthetic_datalists": [
            {"path": "maisi/datalist.json", "dataset": "maisi", "weight": 0.5},
            {"path": "s2.json"},
        ],
    }
    recipe = RECIPE_REGISTRY["stage4"](data=data)
    path = save_recipe(recipe, tmp_path / f"r{suffix}")
    loaded = load_recipe(path).data
    assert loaded.pseudo_label_exclude == {"*": (25,), "AMOS22": (3, 4)} and loaded.pseudo_labels
    assert loaded.dataset_weights == {"AeroPath": 2.0}
    first, second = loaded.synthetic_datalists
    assert (first.dataset, first.weight) == ("maisi", 0.5) and (second.dataset, second.weight) == ("synthetic", 1.0)
    assert first.path == str((tmp_path / "maisi" / "datalist.json").resolve())  # relative to the recipe file
    again = load_recipe(save_recipe(load_recipe(path), tmp_path / f"again{suffix}"))
    assert recipe_to_dict(again)["data"] == recipe_to_dict(load_recipe(path))["data"]


@pytest.mark.parametrize(
    "data,match",
    [
        ({"synthetic_datalists": [{"path": "s.json", "wieght": 2}]}, "synthetic_datalists: entries take path"),
        ({"synthetic_datalists": [{"path": "s.json", "weight": -1}]}, "weight must be >= 0"),
        ({"dataset_weights": {"a": -2}}, r"dataset_weights\['a'\] must be >= 0"),
        ({"pseudo_label_exclude": {"a": ["liver"]}}, "invalid literal"),
    ],
)
def test_bad_data_fields_name_the_problem(data, match):
    with pytest.raises(InputError, match=match):
        recipe_from_dict({"data": data})

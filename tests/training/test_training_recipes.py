"""Recipes of any family through the registry: built-ins found by name, files carry their family."""

from __future__ import annotations

import pytest

from voxelprompt.errors import InputError
from voxelprompt.families import FAMILIES
from voxelprompt.training import family_of_recipe, load_recipe
from voxelprompt.families.vista3d.training.recipe import save_recipe


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_builtin_recipe_round_trips_through_a_file(family, tmp_path):
    for name in FAMILIES[family].recipe_registry():
        recipe = load_recipe(name)
        assert family_of_recipe(recipe) is FAMILIES[family]
        path = save_recipe(recipe, tmp_path / f"{name}.json")
        again = load_recipe(path)
        assert type(again) is type(recipe) and family_of_recipe(again) is FAMILIES[family]


def test_unknown_names_and_families_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="recipe not found: stage9"):
        load_recipe("stage9")
    bad = tmp_path / "r.json"
    bad.write_text('{"family": "sam"}')
    with pytest.raises(InputError, match="unknown recipe family 'sam'"):
        load_recipe(bad)

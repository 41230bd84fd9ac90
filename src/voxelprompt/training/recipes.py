"""Training recipes of any model family, found through the registry (:mod:`voxelprompt.families`):
load a built-in or a file, and train it with its family's trainer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from voxelprompt.errors import InputError, VoxelPromptError
from voxelprompt.families import DEFAULT_FAMILY, FAMILIES, get_family
from voxelprompt.training.recipe_files import family_of_recipe, read_recipe_file, resolve_paths

__all__ = ["load_recipe", "family_of_recipe", "train"]


def load_recipe(source: str | os.PathLike) -> Any:
    """A built-in recipe of any family (``stage1``..``stage4``, ``segvol-pretrain``, ...) or a
    JSON/YAML file; file paths inside a file are relative to that file. A file's ``"family"`` key
    names its family (default: VISTA3D).

    Raises:
        InputError: neither a known name nor a readable recipe file of a known family.
    """
    from voxelprompt.families.vista3d.training.recipe import recipe_from_dict

    path = Path(source)
    if not path.is_file():
        names: list[str] = []
        for family in FAMILIES.values():
            registry = family.recipe_registry()
            if str(source) in registry:
                return registry[str(source)]()
            names.extend(registry)
        raise InputError(f"recipe not found: {source} (a file, or one of {', '.join(names)})")
    data = read_recipe_file(path)
    name = data.pop("family", DEFAULT_FAMILY)
    try:
        family = get_family(name)
    except VoxelPromptError:
        raise InputError(f"{path}: unknown recipe family {name!r} ({' or '.join(FAMILIES)})") from None
    recipe = recipe_from_dict(data, registry=family.recipe_registry(), default=family.recipe_class())
    return resolve_paths(recipe, path.parent)


def train(recipe: Any, resume: str | os.PathLike | bool = False, progress: bool = True) -> Any:
    """Train ``recipe`` with its family's trainer (CPU, one GPU, or ``torchrun``); see the family's
    trainer for what it writes."""
    return family_of_recipe(recipe).train(recipe, resume=resume, progress=progress)

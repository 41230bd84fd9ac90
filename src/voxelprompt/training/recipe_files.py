"""Training recipes of any family as files: plain data out (JSON or YAML, the family recorded
when it is not the default), and what reading a file back needs (the mapping, its paths made
absolute, the family a recipe belongs to)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voxelprompt.errors import InputError
from voxelprompt.families import DEFAULT_FAMILY, FAMILIES, ModelFamily

__all__ = ["recipe_to_dict", "read_recipe_file", "resolve_paths", "save_recipe", "family_of_recipe"]


def family_of_recipe(recipe: Any) -> ModelFamily:
    """The family whose recipe type ``recipe`` is.

    Raises:
        InputError: a recipe of no registered family.
    """
    for family in FAMILIES.values():
        if isinstance(recipe, family.recipe_class()):
            return family
    raise InputError(f"{type(recipe).__name__} is not a recipe of a registered model family")


def recipe_to_dict(recipe: Any) -> dict[str, Any]:
    """A recipe of any family (a dataclass) as plain JSON-ready data (tuples become lists, mappings dicts)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(recipe)


def resolve_paths(recipe: Any, folder: Path) -> Any:
    """``recipe`` with its relative paths (datalists, label mappings, synthetic datalists, initial
    weights, output folder) made absolute against ``folder`` (the recipe file's)."""
    def rel(p: str | None) -> str | None:
        return None if p is None else str((folder / p).resolve()) if not Path(p).is_absolute() else p

    mappings = recipe.data.label_mappings
    data = dataclasses.replace(
        recipe.data,
        datalists=tuple(rel(p) for p in recipe.data.datalists),  # type: ignore[misc]
        label_mappings=rel(mappings) if isinstance(mappings, str) else mappings,
        synthetic_datalists=tuple(dataclasses.replace(s, path=rel(s.path)) for s in recipe.data.synthetic_datalists),
    )
    return dataclasses.replace(recipe, data=data, init=rel(recipe.init), output_dir=rel(recipe.output_dir))  # type: ignore[arg-type]


def read_recipe_file(path: Path) -> dict[str, Any]:
    """The mapping stored in a JSON or YAML recipe file.

    Raises:
        InputError: unreadable, unparsable, or not a mapping.
    """
    try:
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml  # PyYAML, only needed for YAML recipes

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:  # JSON and YAML parsers raise their own types
        raise InputError(f"{path}: cannot read recipe ({type(err).__name__}: {str(err)[:160]})") from err
    if not isinstance(data, dict):
        raise InputError(f"{path}: a recipe is a mapping of fields")
    return data


def save_recipe(recipe: Any, path: str | os.PathLike) -> Path:
    """Write a recipe of any family as JSON (``.json``) or YAML (``.yaml``/``.yml``); a recipe of
    another family than the default records its ``family``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = recipe_to_dict(recipe)
    family = family_of_recipe(recipe).name
    if family != DEFAULT_FAMILY:  # load_recipe reads the family back from the file
        data = {"family": family, **data}
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        path.write_text(yaml.safe_dump(data, sort_keys=False))
    else:
        path.write_text(json.dumps(data, indent=2) + "\n")
    return path

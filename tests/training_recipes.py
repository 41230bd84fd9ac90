"""A registry stage shrunk to seconds, for the training tests (importable by name from any test)."""

from __future__ import annotations

from pathlib import Path


def tiny_recipe(stage: str, datalist: Path, output_dir: Path, **overrides):
    """A registry stage shrunk to seconds: width 8, 32^3 patches at 10 mm, no validation."""
    from voxelprompt.families.vista3d.training.recipe import RECIPE_REGISTRY

    fields = {
        "width": 8,
        "steps": 4,
        "output_dir": str(output_dir),
        "val_every": -1,
        "checkpoint_every": 100,
        "data": {"datalists": [str(datalist)], "supervoxels": False},
        "patch": {"roi": [32, 32, 32], "spacing": [10.0, 10.0, 10.0]},
        "prompts": {"iterations": 2},
        "optim": {"lr": 1e-3},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(fields.get(key), dict):
            fields[key] = {**fields[key], **value}
        else:
            fields[key] = value
    return RECIPE_REGISTRY[stage](**fields)

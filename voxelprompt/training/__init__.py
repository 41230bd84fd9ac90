"""Training: the parts every family shares (datalists, the step loop, runtime state), recipes of
any family through the registry (``recipes``), and VISTA3D's and SegVol's own parts in
``vista3d/`` and ``segvol/`` (see ``README.md`` in this folder)."""

from __future__ import annotations

from voxelprompt.training.datalist import (
    Case,
    Datalist,
    check_case,
    load_datalist,
    load_datalists,
)
from voxelprompt.training.recipes import family_of_recipe, load_recipe, train
from voxelprompt.training.vista3d.finetune import add_classes, finetune, finetune_recipe
from voxelprompt.training.vista3d.prompts import (
    PromptBatch,
    PromptConfig,
    next_clicks,
    sample_prompts,
)
from voxelprompt.training.vista3d.recipe import (
    RECIPE_REGISTRY,
    DataConfig,
    OptimConfig,
    Recipe,
    recipe_from_dict,
    recipe_to_dict,
    save_recipe,
)
from voxelprompt.training.vista3d.trainer import Trainer, TrainResult
from voxelprompt.training.vista3d.transforms import (
    PatchConfig,
    train_transforms,
    val_transforms,
)

__all__ = [
    "Case",
    "Datalist",
    "check_case",
    "load_datalist",
    "load_datalists",
    "PatchConfig",
    "train_transforms",
    "val_transforms",
    "PromptBatch",
    "PromptConfig",
    "sample_prompts",
    "next_clicks",
    "DataConfig",
    "OptimConfig",
    "Recipe",
    "RECIPE_REGISTRY",
    "load_recipe",
    "save_recipe",
    "recipe_from_dict",
    "recipe_to_dict",
    "Trainer",
    "TrainResult",
    "train",
    "family_of_recipe",
    "add_classes",
    "finetune",
    "finetune_recipe",
]

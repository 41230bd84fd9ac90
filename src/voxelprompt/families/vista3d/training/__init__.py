"""Training VISTA3D: MONAI transforms, prompt sampling, the four-stage recipes, the trainer on the
shared loop, validation and few-shot finetuning (see ``README.md``)."""

from __future__ import annotations

from voxelprompt.families.vista3d.training.finetune import add_classes, finetune, finetune_recipe
from voxelprompt.families.vista3d.training.prompts import PromptBatch, PromptConfig, next_clicks, sample_prompts
from voxelprompt.families.vista3d.training.recipe import (
    RECIPE_REGISTRY,
    DataConfig,
    OptimConfig,
    Recipe,
    recipe_from_dict,
    recipe_to_dict,
    save_recipe,
)
from voxelprompt.families.vista3d.training.trainer import Trainer, TrainResult
from voxelprompt.families.vista3d.training.transforms import PatchConfig, train_transforms, val_transforms

__all__ = [
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
    "save_recipe",
    "recipe_from_dict",
    "recipe_to_dict",
    "Trainer",
    "TrainResult",
    "add_classes",
    "finetune",
    "finetune_recipe",
]

"""Training SegVol: SimMIM pre-training of the ViT encoder and the supervised loop of the paper's
Algorithm 1, on the training loop shared with VISTA3D (see ``README.md`` in this folder)."""

from __future__ import annotations

from voxelprompt.families.segvol.training.recipe import SEGVOL_RECIPES, SegVolRecipe, build_pretrain, build_supervised
from voxelprompt.families.segvol.training.simmim import SimMIM, random_patch_mask
from voxelprompt.families.segvol.training.trainer import SegVolTrainer, train_segvol

__all__ = [
    "SEGVOL_RECIPES",
    "SegVolRecipe",
    "SegVolTrainer",
    "SimMIM",
    "build_pretrain",
    "build_supervised",
    "random_patch_mask",
    "train_segvol",
]

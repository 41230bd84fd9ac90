"""Training: the parts every family shares (datalists, the step loop, runtime state, the layout of
a network for training) and recipes of any family through the registry (``recipes``). Each family's
own training lives in its package (``voxelprompt/families/<name>/training/``; see ``README.md``)."""

from __future__ import annotations

from voxelprompt.training.datalist import (
    Case,
    Datalist,
    check_case,
    load_datalist,
    load_datalists,
)
from voxelprompt.training.recipes import family_of_recipe, load_recipe, train

__all__ = [
    "Case",
    "Datalist",
    "check_case",
    "load_datalist",
    "load_datalists",
    "load_recipe",
    "train",
    "family_of_recipe",
]

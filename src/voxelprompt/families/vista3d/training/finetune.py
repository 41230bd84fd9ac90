"""Few-shot finetuning (paper Sec. 6): teach a trained VISTA3D new classes from N labelled cases.

New classes take free rows of the class embedding (ids below ``n_classes``, 512 in the release);
only the automatic branch trains (encoder and point branch frozen, as in stage 3), so clicks keep
working. Ids above 132 still select the zero-shot embedding when used as click prompts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from monai.utils import set_determinism

from voxelprompt.errors import InputError
from voxelprompt.families.vista3d.network import load_vista3d
from voxelprompt.training.datalist import load_datalist
from voxelprompt.families.vista3d.training.recipe import DataConfig, Recipe, build_stage4, recipe_from_dict
from voxelprompt.families.vista3d.training.trainer import Trainer, TrainResult

__all__ = ["add_classes", "finetune_recipe", "finetune"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def add_classes(net: torch.nn.Module, init_from: Mapping[int, int]) -> None:
    """Initialise new class-embedding rows from known classes (``new id -> existing id``), e.g. a
    mouse liver from the human liver. Rows not listed keep their current values.

    Raises:
        InputError: an id outside the embedding table.
    """
    table = net.class_head.class_embeddings.weight
    for new, old in init_from.items():
        for c in (new, old):
            if not 0 < int(c) < table.shape[0]:
                raise InputError(f"class id {c} is outside the model's class embedding (1..{table.shape[0] - 1})")
        table[int(new)] = table[int(old)]


def finetune_recipe(
    checkpoint: str | os.PathLike,
    datalist: str | os.PathLike,
    classes: Mapping[int, int],
    *,
    n_cases: int | None = None,
    steps: int = 200,
    output_dir: str | os.PathLike = "runs/finetune",
    train_encoder: bool = False,
    **overrides: Any,
) -> Recipe:
    """The recipe of a few-shot run.

    Args:
        checkpoint: trained model to start from.
        datalist: datalist of the new dataset (its entries' local label ids).
        classes: local label id -> global class id (new ids or existing ones).
        n_cases: use only the first N training cases (1, 5, ...); None for all.
        steps: optimisation steps.
        output_dir: run folder.
        train_encoder: also train the encoder (default: frozen, like stage 3).
        overrides: further recipe fields (``recipe_from_dict`` style, e.g. ``optim={"lr": 1e-4}``).
    """
    if not classes:
        raise InputError("finetuning needs at least one class (local id -> global id)")
    pairs = [(int(local), int(glob)) for local, glob in classes.items()]
    bad = [g for _, g in pairs if g < 1]
    if bad:
        raise InputError(f"global class ids must be >= 1, got {bad[0]}")
    names = load_datalist(datalist, check=False).datasets
    mappings = {name: pairs for name in (*names, "default")}
    base = build_stage4(
        name="finetune",
        stage=0,
        init=str(checkpoint),
        steps=int(steps),
        output_dir=str(output_dir),
        freeze="none" if train_encoder else "point",
        checkpoint_every=max(1, int(steps)),
    )
    data = DataConfig(
        datalists=(str(datalist),),
        label_mappings=mappings,
        label_set=tuple(sorted({g for _, g in pairs})),
        dataset_sampling="case",
        max_cases=n_cases,
    )
    recipe = replace(base, data=data)
    return recipe_from_dict(overrides, base=recipe) if overrides else recipe


def finetune(
    checkpoint: str | os.PathLike,
    datalist: str | os.PathLike,
    classes: Mapping[int, int],
    *,
    init_from: Mapping[int, int] | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> TrainResult:
    """Few-shot finetune ``checkpoint`` on ``datalist``; see :func:`finetune_recipe` for ``kwargs``.

    Returns:
        The run's result; ``result.model`` is the finetuned ``state_dict`` (same architecture).
    """
    recipe = finetune_recipe(checkpoint, datalist, classes, **kwargs)
    net, _ = load_vista3d(checkpoint)
    add_classes(net, init_from or {})
    set_determinism(seed=recipe.seed)
    logger.info("finetuning %s on %s: classes %s", checkpoint, datalist, dict(classes))
    return Trainer(recipe, net=net.train(), progress=progress).fit()

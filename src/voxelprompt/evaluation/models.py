"""The models an evaluation runs: checkpoints of any family through the registry, the shipped demo
model, and classical baselines, each wrapped in its evaluation adapter."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from voxelprompt.errors import VoxelPromptError

__all__ = ["BASELINES", "load_eval_models", "model_families", "shared_catalog"]

#: Classical baselines by name (no checkpoint).
BASELINES = {"region-grow": "voxelprompt.evaluation.adapters:RegionGrowModel"}


def load_eval_models(
    checkpoints: Sequence[str | os.PathLike] = (),
    demo_model: bool = False,
    baselines: Sequence[str] = (),
    device: str = "auto",
    options: Mapping[str, Any] | None = None,
) -> list[Any]:
    """Evaluation adapters for the models to compare, in the order given (demo model first).

    Args:
        checkpoints: weights files of any registered family (recognised from their tensors).
        demo_model: also evaluate the shipped demo VISTA3D (at its own spacing and class set).
        baselines: names from :data:`BASELINES`.
        device: auto, cpu, cuda or cuda:N.
        options: option values (e.g. ``{"profile": "research", "mode": "zoom"}``); each model
            takes those its family has (:class:`~voxelprompt.families.Vista3DOptions`,
            :class:`~voxelprompt.families.SegVolOptions`); None values are left at the defaults.

    Returns:
        Models named after what they are, so that a resumed run never mixes them up: the demo
        model ``<family>-demo``, a checkpoint ``<family>-<file stem>`` (numbered if stems repeat).

    Raises:
        VoxelPromptError: an unknown baseline, or nothing to evaluate.
        CheckpointError: an unreadable checkpoint or one of no known family.
    """
    from voxelprompt.api import load_named_models
    from voxelprompt.families import import_target

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise VoxelPromptError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    if not checkpoints and not demo_model and not baselines:
        raise VoxelPromptError("nothing to evaluate: give --checkpoint PATH, --demo-model and/or --baseline region-grow")
    loaded = load_named_models(checkpoints, default_model=demo_model, device=device, options=options)
    models: list[Any] = [m.family.eval_model(m.segmenter, name=m.name) for m in loaded]
    models.extend(import_target(BASELINES[b])() for b in baselines)
    return models


def model_families(checkpoints: Sequence[str | os.PathLike] = (), demo_model: bool = False) -> list[Any]:
    """The families of the models to evaluate, torch-free (each checkpoint's from its tensor names)."""
    from voxelprompt.api import resolve_family
    from voxelprompt.families import DEFAULT_FAMILY, get_family

    return [resolve_family(c) for c in checkpoints] + ([get_family(DEFAULT_FAMILY)] if demo_model else [])


def shared_catalog(families: Sequence[Any]) -> Any:
    """The class table of the evaluated families when they share one of their own (a plugin
    family's), else None: VISTA3D's names, by which datasets name their labels
    (:func:`voxelprompt.evaluation.datasets.load_dataset`)."""
    from voxelprompt.families import DEFAULT_FAMILY, get_family

    targets = {f.catalog for f in families}
    if len(targets) != 1 or targets == {get_family(DEFAULT_FAMILY).catalog}:
        return None
    return families[0].class_catalog()

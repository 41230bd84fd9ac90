"""The models an evaluation runs: checkpoints of any family through the registry, the shipped demo
model, and classical baselines, each wrapped in its evaluation adapter."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from voxelprompt.errors import VoxelPromptError

__all__ = ["BASELINES", "load_eval_models"]

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
    from voxelprompt.api import load_model, resolve_family
    from voxelprompt.families import import_target

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise VoxelPromptError(f"unknown baseline {unknown[0]!r}; choose from {', '.join(BASELINES)}")
    if not checkpoints and not demo_model and not baselines:
        raise VoxelPromptError("nothing to evaluate: give --checkpoint PATH, --demo-model and/or --baseline region-grow")
    options = options or {}
    models: list[Any] = []
    seen: dict[str, int] = {}
    for checkpoint in ([None] if demo_model else []) + list(checkpoints):
        family = resolve_family(checkpoint)
        fields = {f.name for f in dataclasses.fields(family.options)}
        own = {k: v for k, v in options.items() if k in fields and v is not None}
        base = f"{family.name}-{'demo' if checkpoint is None else Path(checkpoint).stem}"
        seen[base] = seen.get(base, 0) + 1
        name = base if seen[base] == 1 else f"{base}-{seen[base]}"
        segmenter = load_model(checkpoint, family.name, device=device, options=own)
        models.append(family.eval_model(segmenter, name=name))
    models.extend(import_target(BASELINES[b])() for b in baselines)
    return models

"""The request layer: prompts checked once, against a family and an image grid, then trusted.

:class:`~voxelprompt.types.Prompts` is the currency of every front door (CLI, MONAI Label,
nnInteractive, ITK-SNAP, batch, evaluation, viewer): each builds one (class names resolved through
the family's own catalog, :func:`voxelprompt.prompts.build_prompts`) and hands it here.
:func:`check_request` runs every check that needs no model — the family's capabilities
(:func:`~voxelprompt.families.check_capabilities`), the family's own prompt rules and the grid
(clicks and boxes inside the image, a previous mask's shape), and the classes the weights learnt —
and returns the prompts marked as checked for that family and grid. A segmenter given marked
prompts on the same grid trusts them (:func:`ensure_checked`), so one call checks once.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import numpy as np

from voxelprompt.families import ModelFamily, get_family
from voxelprompt.types import Prompts, Volume

__all__ = ["check_request", "ensure_checked", "is_checked", "grid_key"]


def grid_key(family: str, volume: Volume) -> str:
    """What a check depends on besides the prompts: the family and the image grid (shape, affine)."""
    affine = hashlib.blake2b(np.ascontiguousarray(volume.affine, dtype=np.float64).tobytes(), digest_size=8).hexdigest()
    return f"{family}|{'x'.join(map(str, volume.shape))}|{affine}"


def check_request(family: ModelFamily | str, prompts: Prompts, volume: Volume, learnt: Any = None) -> Prompts:
    """Check ``prompts`` once for ``family`` on ``volume``'s grid; the checked copy is returned.

    Args:
        family: the registry entry (or its name).
        prompts: as built by a front door; class ids in the family's catalog.
        volume: the image (only its shape and affine are read).
        learnt: the weights' :class:`~voxelprompt.catalog.LearntClasses`; None: not checked here.
            The mark names the family and the grid, not the weights: a segmenter checks the
            classes against its own weights' record whether or not the prompts are marked.

    Returns:
        ``prompts`` with :attr:`~voxelprompt.types.Prompts.checked` set for this family and grid.

    Raises:
        PromptError: prompts the family cannot answer, that do not fit the grid, or class
            prompts the weights never learnt (unless ``prompts.allow_unlearnt``).
    """
    family = get_family(family) if isinstance(family, str) else family
    family.check_prompts(prompts, volume)
    if learnt is not None:
        learnt.check(prompts.classes, allow=prompts.allow_unlearnt)
    checked = replace(prompts)
    object.__setattr__(checked, "checked", grid_key(family.name, volume))
    return checked


def is_checked(prompts: Prompts, family: str, volume: Volume) -> bool:
    """Whether :func:`check_request` checked ``prompts`` for ``family`` on ``volume``'s grid."""
    return prompts.checked is not None and prompts.checked == grid_key(family, volume)


def ensure_checked(prompts: Prompts, family: str, volume: Volume, learnt: Any = None) -> Prompts:
    """``prompts`` when already checked for this family and grid, else :func:`check_request`'s
    copy: what a segmenter calls on entry, so direct library use is checked too."""
    if is_checked(prompts, family, volume):
        return prompts
    return check_request(family, prompts, volume, learnt)

"""The VISTA3D demo model shipped inside the package: where it is, its card, how it runs.

The files live in ``voxelprompt/families/vista3d/network/demo/``: ``vista3d_demo.pt`` (float16 weights of a
width-8 VISTA3D of the official architecture), ``model.json`` (what inference needs: spacing,
window, the classes it was trained on) and ``MODEL_CARD.md`` (data, recipe, metrics). The
scripts that made it are ``scripts/train_demo_model.py`` and ``scripts/evaluate_demo_model.py``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import os

from voxelprompt.catalog.learnt import LearntClasses, released_vista3d
from voxelprompt.errors import CheckpointError
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile, get_profile
from voxelprompt.inference.protocol import DEMO_MARK  # the mark of every family's demo model, re-exported

__all__ = [
    "DEMO_DIR",
    "DEMO_MARK",
    "DEMO_NAME",
    "card_from_recipe",
    "default_checkpoint",
    "default_card",
    "default_profile",
    "is_demo_checkpoint",
    "learnt_classes",
    "profile_from_card",
]

DEMO_DIR = Path(__file__).resolve().parents[1] / "network" / "demo"
_WEIGHTS = "vista3d_demo.pt"
_CARD = "model.json"
#: What ``-c`` takes to name the shipped demo model explicitly.
DEMO_NAME = "demo"


@lru_cache(maxsize=1)
def default_card() -> dict:
    """The shipped model's ``model.json``.

    Raises:
        CheckpointError: the package was installed without the demo model.
    """
    path = DEMO_DIR / _CARD
    if not path.is_file() or not (DEMO_DIR / _WEIGHTS).is_file():
        raise CheckpointError(f"the demo model is not installed ({DEMO_DIR}); pass --checkpoint")
    return json.loads(path.read_text())


def default_checkpoint() -> Path:
    """Path of the shipped weights (see :func:`default_card`)."""
    default_card()
    return DEMO_DIR / _WEIGHTS


def is_demo_checkpoint(checkpoint: str | os.PathLike | None) -> bool:
    """True when ``checkpoint`` is the shipped demo weights file (the same file, by path)."""
    if checkpoint is None:
        return False
    path = Path(checkpoint)
    return path.name == _WEIGHTS and path.resolve() == (DEMO_DIR / _WEIGHTS).resolve()


def learnt_classes(checkpoint: str | os.PathLike | None) -> LearntClasses:
    """The classes a VISTA3D checkpoint learnt: the demo model's ``model.json`` list for the
    shipped weights (or ``None``), else the released VISTA3D's 127 (the bundle and research
    checkpoints, and any other file of the official architecture, which states nothing else)."""
    if checkpoint is None or is_demo_checkpoint(checkpoint):
        card = default_card()
        classes = frozenset(int(c) for c in card["classes"])
        return LearntClasses("the shipped demo VISTA3D", classes, f"{DEMO_DIR / _CARD}", handle=DEMO_NAME)
    return released_vista3d()


def card_from_recipe(recipe: dict) -> dict:
    """The inference fields of ``model.json`` (``spacing``, ``roi``, ``classes``) from the plain
    data of a model's last automatic training recipe."""
    return {
        "spacing": list(recipe["patch"]["spacing"]),
        "roi": list(recipe["patch"]["roi"]),
        "classes": list(recipe["data"]["label_set"]),
    }


def profile_from_card(card: dict, base: str | InferenceProfile = "bundle") -> InferenceProfile:
    """``base`` with a model card's spacing, window and "everything" class set."""
    profile = get_profile(base)
    return replace(
        profile,
        name=f"{profile.name}+demo",
        spacing=tuple(float(s) for s in card["spacing"]),
        roi_size=tuple(int(r) for r in card["roi"]),
        everything=tuple(int(c) for c in card["classes"]),
    )


def default_profile(base: str | InferenceProfile = "bundle") -> InferenceProfile:
    """``base`` with the shipped model's spacing, window and "everything" class set."""
    return profile_from_card(default_card(), base)

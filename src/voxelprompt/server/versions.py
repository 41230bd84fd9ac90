"""Finetuned versions of a served model, kept beside the original: ``<datastore>/models/<model>/
v<N>/`` holds a run (``run/model.pt``, its checkpoint) and ``card.json`` (learnt classes, everything
set, parent version, images, checkpoint); ``active.json`` names the version served (0: the model as
the server loaded it, never copied).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxelprompt.api import NamedModel

__all__ = ["ModelVersions", "load_version", "taught_names"]


class ModelVersions:
    """The finetuned versions of one served model under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def finished(self) -> dict[int, dict[str, Any]]:
        """Version -> card, of every finished version."""
        out = {}
        for card in sorted(self.root.glob("v*/card.json")):
            data = json.loads(card.read_text())
            out[int(data["version"])] = data
        return out

    def active(self) -> int:
        path = self.root / "active.json"
        return int(json.loads(path.read_text())["version"]) if path.is_file() else 0

    def activate(self, version: int) -> None:
        """Make ``version`` the served one (written atomically)."""
        _write(self.root / "active.json", {"version": int(version)})

    def finish(self, card: dict[str, Any]) -> None:
        """Write the card of version ``card["version"]`` (atomically: a killed server leaves the
        version unfinished, never half-described)."""
        _write(self.root / f"v{int(card['version'])}" / "card.json", card)

    def next_folder(self) -> tuple[int, Path]:
        """The folder of the next version: an unfinished one (a killed run, resumed) or a new one."""
        numbers = [int(p.name[1:]) for p in self.root.glob("v*") if p.name[1:].isdigit()]
        for n in sorted(numbers):
            if not (self.root / f"v{n}" / "card.json").is_file():
                return n, self.root / f"v{n}"
        n = max(numbers, default=0) + 1
        return n, self.root / f"v{n}"


def load_version(original: NamedModel, root: Path, card: dict[str, Any] | None) -> NamedModel:
    """The served model of a version's card (None: ``original``, the model as loaded), with the
    original's inference settings, its everything set and learnt class names.

    Args:
        original: the model as the server loaded it; root: its versions folder; card: the version's.
    """
    from voxelprompt.api import NamedModel
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

    if card is None:
        return original
    base = original.segmenter
    folder = Path(root) / f"v{card['version']}"
    taught = taught_names(card)
    profile = replace(base.profile, everything=tuple(card["everything"]))
    # The version knows what the original learnt plus what it was taught (and stays a demo model
    # when the original was one).
    known = base.learnt
    if known.classes is not None:
        known = replace(known, classes=known.classes | frozenset(taught), source=f"{known.source}, finetuned (version {card['version']})")
    segmenter = Vista3DSegmenter.from_checkpoint(
        folder / card["checkpoint"], profile=profile, device=base.device, engine=base.engine, amp=base.amp,
        taught_classes=taught, learnt=known, demo=base.demo,
    )  # fmt: skip
    return NamedModel(original.name, original.family, folder / card["checkpoint"], segmenter)


def taught_names(card: dict[str, Any] | None) -> dict[int, str]:
    """Class id -> name of the classes a version was taught (its card's ``learnt``); {} for the
    model as loaded (None)."""
    return {} if card is None else {int(k): str(v) for k, v in card["learnt"].items()}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)

"""The models ITK-SNAP sees in ``/v2/models``: each served model, and one entry per class or text
prompt, because ITK-SNAP sends nothing but clicks, strokes and the model id it picked.

==============================  ==================================================================
entry id                        what a click segments
==============================  ==================================================================
``<model>``                     an object from clicks alone (both families)
``<model>:<class>``             a family with class prompts (VISTA3D): that class, which the
                                clicks edit (paper Algorithm 1); one entry per class the loaded
                                model learnt, named by the family's class catalog
``<model>:<name>``              a family with text prompts only (SegVol): the name as its text
                                prompt, with the clicks; one entry per name of its catalog
==============================  ==================================================================

``<class>`` is the catalog name in lower case with ``_`` for spaces (``left_kidney``): ids go
into ITK-SNAP's URLs unescaped. Interactions are the family's own: ``point`` (both), ``scribble``
(up to five clicks sampled along the stroke, as the nnInteractive adapter does), ``lasso`` for a
family with boxes (its bounding box as the box prompt). ITK-SNAP's ``box`` has no route and is
never listed; "everything" is not offered (ITK-SNAP paints one label per reply).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voxelprompt.api import NamedModel
from voxelprompt.server.classes import ModelClasses

__all__ = ["ModelEntry", "model_entries"]


@dataclass(frozen=True)
class ModelEntry:
    """One ``/v2/models`` entry.

    Args:
        id: what ITK-SNAP shows and sends back.
        model: the loaded model.
        classes: class ids (of the family's catalog) every request of this entry prompts (empty: none).
        text: the text prompt every request carries (None: none).
        interactions: ITK-SNAP interaction names this entry answers.
    """

    id: str
    model: NamedModel
    classes: tuple[int, ...] = ()
    text: str | None = None
    interactions: tuple[str, ...] = ("point",)

    def listing(self) -> dict:
        return {"id": self.id, "channels": [1], "dimensions": 3, "interactions": list(self.interactions)}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def model_entries(models: Sequence[NamedModel], classes_of: Callable[[NamedModel], ModelClasses] = ModelClasses) -> dict[str, ModelEntry]:
    """Every entry of ``models``, in listing order (the first model's plain entry first: 4.4.0's
    ``/start_session`` uses it); ``classes_of`` gives a model's class names (the service's)."""
    entries: dict[str, ModelEntry] = {}

    def add(entry: ModelEntry) -> None:
        key, n = entry.id, 2
        while key in entries:
            key, n = f"{entry.id}-{n}", n + 1
        entries[key] = ModelEntry(key, entry.model, entry.classes, entry.text, entry.interactions)

    for model in models:
        caps = model.family.capabilities
        if not caps.points:
            continue  # ITK-SNAP prompts by clicks only
        kinds = ("point", "scribble") + (("lasso",) if caps.box else ())
        base = _safe(model.name)
        add(ModelEntry(base, model, interactions=kinds))
        classes = classes_of(model)
        catalog = classes.catalog
        if caps.classes:
            learnt = classes.learnt_ids()
            ids = learnt if learnt is not None else sorted(catalog.names)
            for c in ids:
                add(ModelEntry(f"{base}:{_safe(catalog.name(c).lower())}", model, classes=(c,), interactions=kinds))
        elif caps.text:
            for name in dict.fromkeys(catalog.names.values()):
                add(ModelEntry(f"{base}:{_safe(name.lower())}", model, text=name, interactions=kinds))
    return entries

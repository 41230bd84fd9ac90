"""The class names of one served model, from its family's entry: the family's class catalog
(:meth:`~voxelprompt.families.ModelFamily.class_catalog`), the classes its weights learnt
(``segmenter.learnt``) and the names finetuning from a viewer taught it (:mod:`.versions`).

Protocol adapters name classes through this record only, so a family's own table (a plugin's
"bone", "air", ...) reaches every client with no edit here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voxelprompt.api import NamedModel
from voxelprompt.errors import PromptError
from voxelprompt.types import Prompts

__all__ = ["ModelClasses"]


@dataclass(frozen=True)
class ModelClasses:
    """Names <-> ids of a served model's classes.

    Args:
        model: the served model.
        taught: class id -> name of the classes finetuning added (ids the catalog may not name).
    """

    model: NamedModel
    taught: Mapping[int, str] = field(default_factory=dict)

    @property
    def catalog(self) -> Any:
        """The family's :class:`~voxelprompt.catalog.LabelCatalog`."""
        return self.model.family.class_catalog()

    def name(self, class_id: int) -> str:
        """The name of ``class_id``: a class finetuning taught, else the catalog's."""
        return self.taught.get(int(class_id)) or self.catalog.name(class_id)

    def index(self, name: str | int) -> int:
        """The id of a class name (taught classes first, then the catalog's tolerant lookup) or id.

        Raises:
            PromptError: a name neither knows.
        """
        if isinstance(name, str):
            for c, taught in self.taught.items():
                if taught.lower() == name.strip().lower():
                    return c
        return self.catalog.index(name)

    def find(self, name: Any) -> int | None:
        """:meth:`index` of a non-empty string, or None (not a string, or a name no table knows)."""
        if not isinstance(name, str) or not name.strip():
            return None
        try:
            return self.index(name)
        except PromptError:
            return None

    def resolve(self, queries: list[str | int]) -> tuple[int, ...]:
        """Ids of class names or ids, in order, duplicates dropped.

        Raises:
            PromptError: an unknown name.
        """
        return tuple(dict.fromkeys(self.index(q) for q in queries))

    def automatic(self) -> tuple[int, ...]:
        """The ids a class request without names answers, in order: the model's everything set for
        a family with the ``everything`` capability (its segmenter resolves
        ``Prompts(everything=True)``, the capability's contract), else every class its weights
        learnt (the catalog's, for an open vocabulary). () without the ``classes`` capability."""
        caps = self.model.family.capabilities
        if not caps.classes:
            return ()
        if caps.everything:
            return tuple(int(c) for c in self.model.segmenter.resolve_classes(Prompts(everything=True)))
        learnt = self.model.segmenter.learnt.classes
        ids = sorted(learnt) if learnt is not None else sorted(self.catalog.names)
        return tuple(int(c) for c in ids)

    def learnt(self) -> dict[str, int] | None:
        """Name -> id of the classes the weights learnt (None: an open vocabulary), for listings."""
        learnt = self.model.segmenter.learnt.classes
        if learnt is None:
            return None
        catalog = self.catalog
        return {catalog.name(c): int(c) for c in sorted(learnt)}

    def learnt_ids(self) -> tuple[int, ...] | None:
        """Ids of the classes the weights learnt, sorted (None: an open vocabulary)."""
        learnt = self.model.segmenter.learnt.classes
        return None if learnt is None else tuple(sorted(int(c) for c in learnt))

"""Which classes a model learnt, as opposed to the ids its architecture has room for (torch-free).

VISTA3D's class table has 512 rows whatever the weights; the released checkpoints learnt 127 of
them, the shipped demo model the 35 of its ``model.json``. A class prompt for an id the loaded model
never learnt gives labels that mean nothing, so the segmenter refuses it unless asked explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from voxelprompt.catalog.labels import GROUPS, LAST_SUPPORTED, UNNAMED_IDS, vista3d_catalog
from voxelprompt.errors import PromptError

__all__ = ["LearntClasses", "RELEASED_VISTA3D_CLASSES", "released_vista3d", "open_vocabulary", "segvol_learnt", "ALLOW_UNLEARNT_FLAG"]

#: The ids the released VISTA3D (MONAI bundle ``model.pt`` and the research ``model_monai1.3.pt``)
#: was trained on: 1..132 less the ids with no class (the group ids kidney, lung and bone included).
RELEASED_VISTA3D_CLASSES = frozenset(i for i in range(1, LAST_SUPPORTED + 1) if i not in UNNAMED_IDS)

#: The command-line flag (and ``Prompts.allow_unlearnt``) that lets such a prompt through.
ALLOW_UNLEARNT_FLAG = "--allow-unlearnt"


@dataclass(frozen=True)
class LearntClasses:
    """What one model was trained to segment by class.

    Args:
        model: how messages name the model (e.g. "the shipped demo VISTA3D").
        classes: the VISTA3D class ids it learnt; None: an open vocabulary (text prompts, SegVol),
            no closed set to check against.
        source: where the list comes from (a model card, the publisher's class table, a paper).
        handle: what ``-c`` takes to name the model in ``voxelprompt classes -c HANDLE``.
        catalog: the family's own class table (a :class:`~voxelprompt.catalog.LabelCatalog`,
            no groups); None: VISTA3D's, whose group ids (kidney, lung, bone) count as their subclasses.
    """

    model: str
    classes: frozenset[int] | None
    source: str
    handle: str = "MODEL"
    catalog: Any = None

    def _names(self) -> Mapping[int, str]:
        return (self.catalog or vista3d_catalog()).names

    def _members(self, i: int) -> tuple[int, ...]:
        return GROUPS.get(i, (i,)) if self.catalog is None else (i,)

    def unlearnt(self, ids: Iterable[int]) -> tuple[int, ...]:
        """The ids among ``ids`` (groups count as their subclasses) that have a class name in the
        VISTA3D table but that this model never learnt; () for an open vocabulary."""
        if self.classes is None:
            return ()
        names = self._names()
        out: list[int] = []
        for i in ids:
            for c in self._members(int(i)):
                if c in names and (self.catalog is not None or c not in UNNAMED_IDS) and c not in self.classes and c not in out:
                    out.append(c)
        return tuple(out)

    def marked(self, names: Mapping[int, str]) -> dict[int, str]:
        """``names`` (label value -> structure name) with " (UNLEARNT)" after each class this
        model never learnt, for printouts, legends and label tables of an allowed prompt."""
        unlearnt = set(self.unlearnt(names))
        return {v: f"{n} (UNLEARNT)" if v in unlearnt else n for v, n in names.items()}

    def check(self, ids: Iterable[int], allow: bool = False) -> tuple[str, ...]:
        """Refuse class prompts this model never learnt, or with ``allow`` say so in notes.

        Returns:
            Notes for the result (empty when every id was learnt).

        Raises:
            PromptError: an unlearnt id and not ``allow``; the message names the class, the model,
                how to list what it learnt and the flag that overrides.
        """
        missing = self.unlearnt(ids)
        if not missing:
            return ()
        name = (self.catalog or vista3d_catalog()).name
        listed = ", ".join(f"{c} ({name(c)})" for c in missing[:5]) + (", ..." if len(missing) > 5 else "")
        if not allow:
            raise PromptError(
                f"class {listed} was never learnt by {self.model} ({len(self.classes or ())} learnt classes, "
                f"'voxelprompt classes -c {self.handle}' lists them): its labels would mean nothing; "
                f"{ALLOW_UNLEARNT_FLAG} segments it anyway"
            )
        return (f"UNLEARNT: class {listed} was never learnt by {self.model}; its labels are not meaningful ({ALLOW_UNLEARNT_FLAG})",)


def released_vista3d() -> LearntClasses:
    """The released VISTA3D's 127 classes (the label table of Project-MONAI/VISTA)."""
    return LearntClasses(
        "the released VISTA3D", RELEASED_VISTA3D_CLASSES, "label_dict.json of Project-MONAI/VISTA (ids 1-132 with a name)"
    )


def open_vocabulary(model: str, source: str) -> LearntClasses:
    """A text-prompted model with no closed class set (e.g. SegVol: CLIP text, over 200 categories)."""
    return LearntClasses(model, None, source)


def segvol_learnt(checkpoint: object = None) -> LearntClasses:
    """SegVol v1: text prompts through CLIP, trained on over 200 categories of 25 datasets (paper
    Sec. 3.1); the authors publish no machine-readable list, so no prompt is refused by class."""
    return open_vocabulary("SegVol", "the SegVol paper: over 200 anatomical categories from 25 CT datasets, no published list")

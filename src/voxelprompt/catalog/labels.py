"""The VISTA3D global class index table as torch-free data, with tolerant name lookup.

Class sets follow the official code: the bundle's "everything" list, the group classes that
expand to subclasses, and the "special" classes whose clicks use VISTA3D's ambiguity embedding.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from voxelprompt.errors import PromptError

__all__ = [
    "click_label_shift",
    "LAST_SUPPORTED",
    "CLASS_TABLE_SIZE",
    "UNNAMED_IDS",
    "EVERYTHING_EXCLUDED",
    "GROUPS",
    "SPECIAL_CLASSES",
    "LabelCatalog",
    "vista3d_catalog",
    "normalize_name",
    "expand_groups",
    "everything_classes",
]

#: Highest class index the released VISTA3D was trained on; larger ids select the zero-shot embedding.
LAST_SUPPORTED = 132

#: Rows of the released VISTA3D class embedding: valid class ids are 1..CLASS_TABLE_SIZE - 1.
CLASS_TABLE_SIZE = 512

#: Ids up to LAST_SUPPORTED that the released model has no trained class for.
UNNAMED_IDS = frozenset({16, 18, 129, 130, 131})

#: Ids left out of "everything" by both official pipelines (groups, unnamed ids, tumours, airway).
EVERYTHING_EXCLUDED = frozenset({2, 16, 18, 20, 21, 23, 24, 25, 26, 27, 128, 129, 130, 131, 132})

#: Group classes and the subclasses they expand to (order as in the bundle's ``subclass`` config).
GROUPS: dict[int, tuple[int, ...]] = {
    2: (14, 5),
    20: (28, 29, 30, 31, 32),
    21: tuple(range(33, 57)) + tuple(range(63, 98)) + (114, 120, 122),
}

#: Classes whose clicks carry the ambiguity embedding (point labels 2/3 instead of 0/1), as in the
#: research code and MONAI's network (``VISTA3D.convert_point_label``), not ``VistaPreTransformd``.
SPECIAL_CLASSES = frozenset({23, 24, 25, 26, 27, 57, 128})

_GROUP_NAMES = {2: "kidney", 20: "lung", 21: "bone"}


def click_label_shift(class_id: int | None) -> int:
    """What to add to click labels (0 negative, 1 positive) of ``class_id``: 2 for the classes of
    :data:`SPECIAL_CLASSES`, whose clicks carry VISTA3D's ambiguity embedding (labels 2/3; paper
    Sec. 3.2, MONAI ``VISTA3D.convert_point_label``), else 0."""
    return 2 if class_id is not None and int(class_id) in SPECIAL_CLASSES else 0

# Spelling variants and common names mapped onto the table's words (applied word by word or whole).
_WORD_SYNONYMS = {"tumour": "tumor", "tumours": "tumor", "vertebra": "vertebrae", "clavicle": "clavicula"}
_NAME_SYNONYMS = {
    "urinary bladder": "bladder",
    "gall bladder": "gallbladder",
    "ivc": "inferior vena cava",
    "liver tumor": "hepatic tumor",
    "kidneys": "kidney",
    "lungs": "lung",
    "bones": "bone",
    "portal vein": "portal vein and splenic vein",
    "splenic vein": "portal vein and splenic vein",
    "airways": "airway",
    "small intestine": "small bowel",
}


def normalize_name(name: str) -> str:
    """Lower-case, ``_``/``-`` to spaces, single spaces, British spellings folded."""
    words = re.sub(r"[_\-\s]+", " ", name.strip().lower()).split(" ")
    text = " ".join(_WORD_SYNONYMS.get(w, w) for w in words if w)
    return _NAME_SYNONYMS.get(text, text)


def _word_key(name: str) -> tuple[str, ...]:
    """Order-free key so that "kidney left" and "left kidney" (TotalSegmentator style) match."""
    return tuple(sorted(normalize_name(name).split(" ")))


@dataclass(frozen=True)
class LabelCatalog:
    """Class index <-> name table of one model family.

    Args:
        names: class index -> canonical name.
    """

    names: dict[int, str]

    def __post_init__(self) -> None:
        by_key: dict[tuple[str, ...], int] = {}
        for index, name in self.names.items():
            by_key[_word_key(name)] = index
        object.__setattr__(self, "_by_key", by_key)

    def name(self, index: int) -> str:
        """Canonical name of ``index`` (``"class <index>"`` when the table has none)."""
        return self.names.get(int(index), f"class {int(index)}")

    def index(self, query: str | int) -> int:
        """Class index for a name (case, ``_``/space, word order and synonyms tolerated) or an id.

        Raises:
            PromptError: unknown name, with the closest known names suggested; neither a name
                nor an integer (a float, a list, an object from JSON).
        """
        if isinstance(query, bool) or not isinstance(query, int | str):
            raise PromptError(f"a class must be a name or an integer id, got {query!r}"[:200])
        if isinstance(query, int) or (isinstance(query, str) and query.strip().isdigit()):
            value = int(query)
            if value < 1:
                raise PromptError(f"class index must be a positive integer, got {value}")
            return value
        found = self._by_key.get(_word_key(query))  # type: ignore[attr-defined]
        if found is not None:
            return found
        candidates = list(self.names.values())
        close = difflib.get_close_matches(normalize_name(query), candidates, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise PromptError(f"unknown class name {query!r}{hint} (see `voxelprompt classes`)")

    def resolve(self, queries: list[str | int]) -> tuple[int, ...]:
        """Indices for several names or ids, in the given order, duplicates dropped."""
        out: list[int] = []
        for q in queries:
            idx = self.index(q)
            if idx not in out:
                out.append(idx)
        return tuple(out)


def expand_groups(classes: tuple[int, ...]) -> tuple[int, ...]:
    """Replace group classes (kidney, lung, bone) by their subclasses, keeping order."""
    out: list[int] = []
    for c in classes:
        for sub in GROUPS.get(c, (c,)):
            if sub not in out:
                out.append(sub)
    return tuple(out)


def everything_classes(last_id: int) -> tuple[int, ...]:
    """The official "everything" prompt: ids ``1..last_id`` minus :data:`EVERYTHING_EXCLUDED`."""
    return tuple(i for i in range(1, last_id + 1) if i not in EVERYTHING_EXCLUDED)


@cache
def vista3d_catalog() -> LabelCatalog:
    """The VISTA3D table (``label_dict.json`` of Project-MONAI/VISTA) plus the group names."""
    raw = json.loads(resources.files("voxelprompt.catalog").joinpath("vista3d_label_dict.json").read_text())
    names = {int(v): k for k, v in raw.items()}
    names.update(_GROUP_NAMES)
    return LabelCatalog(names=dict(sorted(names.items())))

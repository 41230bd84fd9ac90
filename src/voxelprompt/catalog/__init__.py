"""Class catalogs: torch-free tables of class indices and names (listing classes is instant)."""

from __future__ import annotations

from voxelprompt.catalog.colors import ClassColor, Code, class_color, fallback_color, vista3d_colors
from voxelprompt.catalog.learnt import (
    ALLOW_UNLEARNT_FLAG,
    RELEASED_VISTA3D_CLASSES,
    LearntClasses,
    open_vocabulary,
    released_vista3d,
)
from voxelprompt.catalog.labels import (
    CLASS_TABLE_SIZE,
    EVERYTHING_EXCLUDED,
    GROUPS,
    LAST_SUPPORTED,
    SPECIAL_CLASSES,
    UNNAMED_IDS,
    LabelCatalog,
    click_label_shift,
    everything_classes,
    expand_groups,
    normalize_name,
    vista3d_catalog,
)

__all__ = [
    "ALLOW_UNLEARNT_FLAG",
    "RELEASED_VISTA3D_CLASSES",
    "LearntClasses",
    "open_vocabulary",
    "released_vista3d",
    "CLASS_TABLE_SIZE",
    "ClassColor",
    "Code",
    "EVERYTHING_EXCLUDED",
    "GROUPS",
    "LAST_SUPPORTED",
    "SPECIAL_CLASSES",
    "UNNAMED_IDS",
    "LabelCatalog",
    "class_color",
    "click_label_shift",
    "everything_classes",
    "expand_groups",
    "fallback_color",
    "normalize_name",
    "vista3d_catalog",
    "vista3d_colors",
]

"""Class catalogs: torch-free tables of class indices and names (listing classes is instant)."""

from __future__ import annotations

from voxelprompt.catalog.labels import (
    EVERYTHING_EXCLUDED,
    GROUPS,
    LAST_SUPPORTED,
    SPECIAL_CLASSES,
    LabelCatalog,
    everything_classes,
    expand_groups,
    normalize_name,
    vista3d_catalog,
)

__all__ = [
    "EVERYTHING_EXCLUDED",
    "GROUPS",
    "LAST_SUPPORTED",
    "SPECIAL_CLASSES",
    "LabelCatalog",
    "everything_classes",
    "expand_groups",
    "normalize_name",
    "vista3d_catalog",
]

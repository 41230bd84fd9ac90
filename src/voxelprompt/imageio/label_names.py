"""The ``label_names`` JSON beside a label map: which name each label value stands for.

The file maps each value (a decimal string key, JSON allows no integer keys) to its name, in
increasing value: ``{"1": "liver", "3": "spleen"}``. Background 0 is not listed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from voxelprompt.errors import InputError
from voxelprompt.imageio.writers import IMAGE_SUFFIXES, write_text

__all__ = ["LABEL_NAMES_SUFFIX", "label_names_path", "read_label_names", "write_label_names"]

LABEL_NAMES_SUFFIX = ".label_names.json"


def label_names_path(label_map: str | os.PathLike) -> Path:
    """The label-names file beside ``label_map``: ``seg.nii.gz`` -> ``seg.label_names.json``.

    Known image endings (``.nii.gz``, ``.nii``, ``.nrrd``, ``.seg.nrrd``) are replaced; any other
    name gets the suffix appended.
    """
    path = Path(label_map)
    name = path.name
    for suffix in (".seg.nrrd", *IMAGE_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + LABEL_NAMES_SUFFIX)


def write_label_names(label_names: Mapping[int, str], path: str | os.PathLike) -> Path:
    """Write ``label_names`` as JSON (value -> name, increasing value, 2-space indent), atomically.

    The same mapping always gives the same bytes.

    Args:
        label_names: label value (>= 1) -> name (non-empty).
        path: the JSON file; a missing folder is created.

    Returns:
        The path written.

    Raises:
        InputError: a value below 1 or not an integer, an empty name, or a file that cannot be written.
    """
    items = {}
    for value, name in label_names.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{path}: label values must be integers >= 1, got {value!r}")
        if not str(name).strip():
            raise InputError(f"{path}: label value {value} has an empty name")
        items[value] = str(name)
    text = json.dumps({str(v): items[v] for v in sorted(items)}, indent=2, ensure_ascii=False)
    return write_text(path, text + "\n")


def read_label_names(path: str | os.PathLike) -> dict[int, str]:
    """Read a file written by :func:`write_label_names`: label value -> name.

    Raises:
        InputError: a missing or unreadable file, not a JSON object, or keys that are not integers >= 1.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read label names ({err})") from err
    if not isinstance(raw, dict):
        raise InputError(f"{path}: label names must be a JSON object of value -> name")
    names = {}
    for key, name in raw.items():
        if not key.isdigit() or int(key) < 1 or not isinstance(name, str):
            raise InputError(f"{path}: bad entry {key!r}: {name!r}; expected a label value >= 1 and a name")
        names[int(key)] = name
    return names

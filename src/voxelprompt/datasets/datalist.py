"""The one reader of datalist JSON files (MSD ``dataset.json``, MONAI / VISTA datalists), shared by
batch, evaluation and training.

A datalist is a JSON object whose split keys (``training``, ``validation``, ``testing``, ``test``)
hold entries ``{"image": ..., "label": ...}`` with paths relative to a base folder (by default the
file's). An entry may also give a ``supervoxel`` (or VISTA's ``label_sv``) path, a
``pseudo_label`` path (global class ids, VISTA's key; ``"pseudo_label_reliability": 0`` drops it,
as the official loop does), a ``dataset`` (or ``dataset_name``) that selects the label mapping,
and an ``image`` given as a list (channels: the first is read). Each door decides which splits it
reads and what an entry must hold (batch: plain path strings too, labels ignored; evaluation:
labelled entries; training: ``label`` unless unlabeled images are allowed).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.datasets.case import DEFAULT_DATASET, Case
from voxelprompt.errors import InputError

__all__ = ["DatalistFile", "read_datalist", "entry_case", "SUPERVOXEL_KEYS"]

#: Entry keys of a supervoxel map, first found wins.
SUPERVOXEL_KEYS = ("supervoxel", "label_sv")


@dataclass(frozen=True)
class DatalistFile:
    """A datalist JSON as read: its (absolute) path and its top-level object."""

    path: Path
    data: dict

    def splits(self) -> list[str]:
        """Top-level keys that hold lists (the splits), in file order."""
        return [k for k, v in self.data.items() if isinstance(v, list)]

    def entries(self, split: str) -> list:
        """The raw entries of ``split`` (missing or null: an empty list).

        Raises:
            InputError: ``split`` holds something other than a list.
        """
        entries = self.data.get(split)
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise InputError(f"{self.path}: '{split}' must be a list")
        return entries

    def entry_name(self, split: str, index: int) -> str:
        """How messages name an entry: ``datalist.json:training[3]``."""
        return f"{self.path.name}:{split}[{index}]"


def read_datalist(path: str | os.PathLike) -> DatalistFile:
    """Read a datalist JSON file.

    Raises:
        InputError: the file is missing, not readable JSON, or not a JSON object.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise InputError(f"datalist not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read datalist ({' '.join(str(err).split())})") from err
    if not isinstance(data, dict):
        raise InputError(f"{path}: a datalist is a JSON object with split lists ('training', 'validation', 'testing'), got {type(data).__name__}")
    return DatalistFile(path, data)


def entry_case(
    entry: object,
    base: Path,
    name: str,
    *,
    default_dataset: str = DEFAULT_DATASET,
    require_label: bool = True,
    allow_string: bool = False,
) -> Case:
    """The :class:`Case` of one datalist entry, its paths resolved against ``base`` (absolute paths
    pass through).

    Args:
        entry: the entry: an object, or (``allow_string``) a plain image path.
        base: folder relative paths start from.
        name: the case's name (see :meth:`DatalistFile.entry_name`); messages start with it.
        default_dataset: dataset of an entry that names none.
        require_label: an entry without ``label`` is bad; False reads it as an unlabeled image.
        allow_string: a string entry is an image path (no label).

    Raises:
        InputError: naming the entry: not an object, no ``image`` (or, with ``require_label``, no
            ``label``), or a ``pseudo_label_reliability`` that is no number.
    """
    resolve = lambda p: (base / str(p)).resolve() if p else None  # noqa: E731
    if isinstance(entry, str) and allow_string and entry:
        return Case(image=resolve(entry), name=name, dataset=default_dataset)
    if isinstance(entry, str):
        raise InputError(f"{name}: entry must be an object with 'image' and 'label', got a string {entry!r}")
    if not isinstance(entry, dict):
        raise InputError(f"{name}: entry must be an object with 'image' and 'label', got {type(entry).__name__}")
    image = entry.get("image")
    if isinstance(image, list):  # channels: the first is the CT
        image = image[0] if image else None
    missing = [k for k, v in (("image", image), ("label", entry.get("label"))) if not v and (k == "image" or require_label)]
    if missing:
        raise InputError(f"{name}: entry has no {' or '.join(repr(k) for k in missing)}")
    supervoxel = next((entry[k] for k in SUPERVOXEL_KEYS if entry.get(k)), None)
    pseudo = entry.get("pseudo_label") or None
    reliability = entry.get("pseudo_label_reliability", 1)
    if not isinstance(reliability, (int, float)) or isinstance(reliability, bool):
        raise InputError(f"{name}: pseudo_label_reliability must be a number, got {reliability!r}")
    if reliability <= 0:  # the official loop skips pseudo labels of reliability 0
        pseudo = None
    return Case(
        image=resolve(image),
        name=name,
        label=resolve(entry.get("label")),
        dataset=str(entry.get("dataset") or entry.get("dataset_name") or default_dataset),
        supervoxel=resolve(supervoxel),
        pseudo_label=resolve(pseudo),
    )

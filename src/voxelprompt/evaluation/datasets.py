"""Evaluation datasets: MSD ``dataset.json``, VISTA-style datalists and TotalSegmentator folders.

Every dataset becomes a list of :class:`~voxelprompt.datasets.Case` records (image + label
paths, read by the one datalist reader :mod:`voxelprompt.datasets.datalist`) and one
:class:`LabelMapping` from the dataset's label values to model class ids (VISTA3D global
indices, see :mod:`voxelprompt.catalog`). Label maps are read on the image's voxel grid
(a label stored in another axis orientation of the same grid is reoriented to it).

Accepted ``datalist`` inputs:

* a JSON file with split keys (``training``, ``validation``, ``testing``, ``test``) holding
  ``{"image": ..., "label": ...}`` entries, relative to the file's folder or ``base_dir`` (MONAI
  / VISTA datalists, MSD ``dataset.json``); an optional ``labels`` key maps label values to names
  (a dict, or the path of a JSON file holding one) and ``name`` names the dataset;
* a folder holding ``dataset.json`` (MSD);
* a TotalSegmentator-style folder: ``classes.json`` (value -> name) and images ``X.nii.gz`` or
  DICOM folders ``X/`` next to labels ``X_seg.nii.gz`` (``../shared/data/totalseg``).

Label mappings, first match wins: an explicit mapping file (VISTA's ``label_mappings.json``,
``{"dataset": [[value, class_id], ...]}``, or a flat ``{"value": class_id or name}``), then the
dataset's label names resolved through the VISTA3D catalog, then identity (labels already hold
VISTA3D ids, as in ``voxelprompt phantom`` datalists).

A label value with no VISTA3D class is a novel (zero-shot) object (:mod:`voxelprompt.evaluation.novel`),
one object per value as in VISTA3D's zero-shot evaluation: a label name the catalog does not know,
a mapping-file entry whose class is ``null``, and with identity any value that is no named class
of the released model (unnamed ids, ids above :data:`~voxelprompt.catalog.LAST_SUPPORTED`). Values a
mapping file does not list are ignored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from voxelprompt.catalog import CLASS_TABLE_SIZE, LAST_SUPPORTED, UNNAMED_IDS, vista3d_catalog
from voxelprompt.datasets import Case, DatalistFile, entry_case, image_stem, read_datalist
from voxelprompt.errors import InputError, PromptError, VoxelPromptError
from voxelprompt.evaluation.novel import MAX_NOVEL_VALUE, is_novel, novel_id, novel_value
from voxelprompt.imageio import align_to_grid, read_labels, read_volume
from voxelprompt.types import Volume

__all__ = ["Case", "LabelMapping", "EvalDataset", "load_dataset", "load_mapping", "read_case"]

logger = logging.getLogger(__name__)

#: Split keys tried in order when none is named (labelled splits first).
SPLITS = ("validation", "testing", "test", "training")
_NIFTI = (".nii.gz", ".nii")


@dataclass(frozen=True)
class LabelMapping:
    """Dataset label value -> evaluated object id: a model class id, or a novel object's id.

    Args:
        pairs: ``(value, class_id)`` pairs of values with a VISTA3D class.
        names: object id -> display name (novel objects: the dataset's label name).
        novel: values with no VISTA3D class, evaluated as zero-shot objects (:func:`novel_id`).
        novel_unlisted: every value not in ``pairs`` is a novel object (identity mappings, where
            the values present are only known once a label map is read).
        catalog: the class table that names class ids (the evaluated family's own,
            :meth:`~voxelprompt.families.ModelFamily.class_catalog`); None: VISTA3D's.

    Values neither in ``pairs`` nor novel are ignored (set to background).
    """

    pairs: tuple[tuple[int, int], ...]
    names: dict[int, str] = field(default_factory=dict)
    novel: tuple[int, ...] = ()
    novel_unlisted: bool = False
    catalog: Any = field(default=None, compare=False)

    @property
    def class_ids(self) -> tuple[int, ...]:
        """Model class ids, ascending, duplicates dropped (novel objects not included)."""
        return tuple(sorted({c for _, c in self.pairs}))

    def name(self, object_id: int) -> str:
        """Display name of a class or novel object id (a novel one without a name: ``label <value>``)."""
        found = self.names.get(int(object_id))
        if found:
            return found
        if is_novel(object_id):
            return f"label {novel_value(object_id)}"
        return (self.catalog or vista3d_catalog()).name(int(object_id))

    def novel_ids(self, names: list[str] | tuple[str, ...]) -> dict[str, int]:
        """Novel object ids of the given names (case and ``_``/space insensitive), for those that match."""
        by_name = {" ".join(self.name(novel_id(v)).lower().replace("_", " ").split()): novel_id(v) for v in self.novel}
        return {n: by_name[key] for n in names if (key := " ".join(n.lower().replace("_", " ").split())) in by_name}

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """(I, J, K) dataset labels -> (I, J, K) object ids (int16, 0 background).

        Raises:
            InputError: negative values, or (``novel_unlisted``) a value too large to be a novel object.
        """
        labels = np.asarray(labels)
        if int(labels.min(initial=0)) < 0:
            raise InputError(f"label maps must hold non-negative values, got {int(labels.min())}")
        largest = int(labels.max(initial=0))
        top = max([largest] + [v for v, _ in self.pairs] + list(self.novel)) + 1
        table = np.zeros(top, dtype=np.int16)
        if self.novel_unlisted:
            listed = {v for v, _ in self.pairs}
            if largest > MAX_NOVEL_VALUE and largest not in listed:
                novel_id(largest)  # raises, naming the value
            stop = min(top, MAX_NOVEL_VALUE + 1)
            table[1:stop] = novel_id(1) + np.arange(stop - 1)
        for value in self.novel:
            table[value] = novel_id(value)
        for value, class_id in self.pairs:
            if value >= 0:
                table[value] = class_id
        return table[labels]


@dataclass(frozen=True)
class EvalDataset:
    """Cases of one dataset and its label mapping."""

    name: str
    cases: tuple[Case, ...]
    mapping: LabelMapping


def load_dataset(
    datalist: str | os.PathLike,
    split: str | None = None,
    mapping: str | os.PathLike | None = None,
    name: str | None = None,
    base_dir: str | os.PathLike | None = None,
    catalog: Any = None,
) -> EvalDataset:
    """Load a datalist, an MSD folder or a TotalSegmentator-style folder (see the module docstring).

    Args:
        datalist: the JSON file or folder.
        split: split key to evaluate; default the first of ``validation``, ``testing``, ``test``,
            ``training`` that holds labelled entries.
        mapping: optional label-mapping JSON file.
        name: dataset name (default: the datalist's ``name`` key, else its file or folder stem).
        base_dir: folder that relative paths start from (default the datalist's folder).
        catalog: the class table label names resolve through (the evaluated family's own); None: VISTA3D's.

    Raises:
        InputError: missing files, unknown split, no labelled case.
    """
    path = Path(datalist)
    if not path.exists():
        raise InputError(f"datalist {path} not found")
    if path.is_dir():
        if (path / "dataset.json").exists():
            path = path / "dataset.json"
        elif (path / "classes.json").exists():
            return _totalseg_folder(path, mapping, name, catalog)
        else:
            raise InputError(f"{path}: a dataset folder needs dataset.json (MSD) or classes.json (TotalSegmentator)")
    file = read_datalist(path)
    raw = file.data
    root = Path(base_dir) if base_dir is not None else path.parent
    entries = _split_entries(file, split)
    tags = {str(e["dataset"]) for _, e in entries if e.get("dataset")}
    dataset_name = name or str(raw.get("name") or (tags.pop() if len(tags) == 1 else path.stem))
    cases = []
    for i, (entry_name, entry) in enumerate(entries):
        case = entry_case(entry, root, entry_name, default_dataset=dataset_name)
        given = entry["image"][0] if isinstance(entry["image"], list) else entry["image"]  # named as given, links unresolved
        cases.append(replace(case, name=image_stem(Path(str(given)).name) or f"case{i}", dataset=dataset_name))
    names = _label_names(raw.get("labels"), path.parent)
    return EvalDataset(dataset_name, _unique(cases), _build_mapping(mapping, names, dataset_name, catalog))


def _split_entries(datalist: DatalistFile, split: str | None) -> list[tuple[str, dict]]:
    """``(entry name, entry)`` of the labelled entries of ``split`` (None: the first of :data:`SPLITS`
    that has any); other entries are passed over."""

    def labelled(key: str) -> list[tuple[str, dict]]:
        return [
            (datalist.entry_name(key, i), item)
            for i, item in enumerate(datalist.entries(key))
            if isinstance(item, dict) and "image" in item and item.get("label")
        ]

    if split is not None:
        if split not in datalist.data:
            keys = datalist.splits()
            raise InputError(f"datalist {datalist.path} has no split {split!r}; it has {', '.join(keys) or 'none'}")
        entries = labelled(split)
    else:
        entries = next((e for e in (labelled(k) for k in SPLITS) if e), [])
    if not entries:
        raise InputError(f"datalist {datalist.path}: no entry with both 'image' and 'label' in split {split or SPLITS}")
    return entries


def _label_names(labels: object, folder: Path) -> dict[int, str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        file = folder / labels
        try:
            labels = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(f"label names {file}: not readable JSON ({err})") from None
    if not isinstance(labels, Mapping):
        raise InputError(f"'labels' must map label values to names, got {type(labels).__name__}")
    try:
        return {int(k): str(v) for k, v in labels.items()}
    except ValueError:
        raise InputError(f"'labels' keys must be integer label values, got {list(labels)[:3]}") from None


def _totalseg_folder(folder: Path, mapping: str | os.PathLike | None, name: str | None, catalog: Any = None) -> EvalDataset:
    names = _label_names("classes.json", folder)
    cases = []
    for label in sorted(folder.glob("*_seg.nii*")):
        stem = image_stem(label.name)[: -len("_seg")]
        candidates = [folder / f"{stem}{s}" for s in _NIFTI] + [folder / stem]
        image = next((c for c in candidates if c.exists()), None)
        if image is not None:
            cases.append(Case(image=image, name=stem, label=label, dataset=name or folder.name))
    if not cases:
        raise InputError(f"{folder}: no image with a matching X_seg.nii.gz label")
    dataset_name = name or folder.name
    return EvalDataset(dataset_name, tuple(cases), _build_mapping(mapping, names, dataset_name, catalog))


def _unique(cases: list[Case]) -> tuple[Case, ...]:
    seen: dict[str, int] = {}
    out = []
    for case in cases:
        n = seen.get(case.name, 0)
        seen[case.name] = n + 1
        out.append(case if n == 0 else replace(case, name=f"{case.name}_{n}"))
    return tuple(out)


def load_mapping(path: str | os.PathLike, dataset: str, catalog: Any = None) -> LabelMapping:
    """Read a mapping file: VISTA ``{"dataset": [[value, id], ...]}`` or flat ``{"value": id or name}``.

    A ``null`` class marks a value with no VISTA3D class: a novel (zero-shot) object.

    Raises:
        InputError: unreadable file, no entry for ``dataset``, an unknown class name or a bad id.
    """
    file = Path(path)
    try:
        raw = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"label mapping {file}: not readable JSON ({err})") from None
    if isinstance(raw, dict) and raw and all(isinstance(v, list) for v in raw.values()):
        if dataset not in raw:
            raise InputError(f"label mapping {file} has no entry for dataset {dataset!r}; it has {', '.join(raw)}")
        pairs = raw[dataset]
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise InputError(f"label mapping {file}: expected a JSON object")
    catalog = catalog or vista3d_catalog()
    out, novel = [], []
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InputError(f"label mapping {file}: entries must be [value, class], got {pair!r}")
        value, target = pair
        try:
            if target is None:  # no VISTA3D class: a novel (zero-shot) object
                novel_id(int(value))
                novel.append(int(value))
            else:
                class_id = catalog.index(target) if isinstance(target, str) else int(target)
                if not 0 < class_id < CLASS_TABLE_SIZE:
                    raise ValueError(f"class ids are 1..{CLASS_TABLE_SIZE - 1}; null marks a value with no class")
                out.append((int(value), class_id))
        except (ValueError, PromptError, InputError) as err:
            raise InputError(f"label mapping {file}: bad entry {pair!r} ({err})") from None
    return LabelMapping(pairs=tuple(out), novel=tuple(novel))


def _build_mapping(
    mapping: str | os.PathLike | None, names: dict[int, str] | None, dataset: str, own: Any = None
) -> LabelMapping:
    catalog = own or vista3d_catalog()
    if mapping is not None:
        return replace(load_mapping(mapping, dataset, own), catalog=own)
    if names is None:
        if own is None:
            supported = [c for c in catalog.names if 0 < c <= LAST_SUPPORTED and c not in UNNAMED_IDS]
        else:  # a family's own table: every class it names
            supported = [c for c in catalog.names if c > 0]
        return LabelMapping(pairs=tuple((c, c) for c in sorted(supported)), novel_unlisted=True, catalog=own)
    pairs, novel, novel_names = [], [], {}
    for value, label_name in sorted(names.items()):
        if value == 0 or label_name.lower() == "background":
            continue
        try:
            pairs.append((value, catalog.index(label_name)))
        except PromptError:
            novel.append(value)
            novel_names[novel_id(value)] = label_name
    if novel:
        # The runner says whether they are evaluated (it knows the modes and the zero-shot switch).
        logger.debug("%s: label names with no VISTA3D class, novel objects: %s", dataset, ", ".join(novel_names.values()))
    if not pairs and not novel:
        raise VoxelPromptError(f"{dataset}: the label names hold nothing but background; pass a label mapping file")
    return LabelMapping(pairs=tuple(pairs), names=novel_names, novel=tuple(novel), catalog=own)


def read_case(case: Case, mapping: LabelMapping) -> tuple[Volume, Volume]:
    """Read a case: the CT (float32 HU) and its labels mapped to model class ids on the CT's grid."""
    image = read_volume(case.image)
    array = align_to_grid(read_labels(case.label), image).array
    return image, image.with_array(mapping.apply(array), source=f"{case.name} labels")

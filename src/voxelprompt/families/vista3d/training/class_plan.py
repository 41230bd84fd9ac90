"""Which global class id each structure of a labelling datastore trains: the labels a viewer saved
(a structure name per value), and a class plan that keeps learnt and catalog ids and gives any other
name a free row of the class embedding (see :mod:`voxelprompt.families.vista3d.training.teach`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxelprompt.catalog import LAST_SUPPORTED, vista3d_catalog
from voxelprompt.errors import InputError, PromptError

__all__ = ["LabelledImage", "ClassPlan", "structure_names", "labelled_images", "assign_classes"]


@dataclass(frozen=True)
class LabelledImage:
    """One image of a datastore with a saved label.

    Args:
        image_id: its id in the datastore; image, label: their files (same grid).
        names: label value -> structure name (as the client sent them).
    """

    image_id: str
    image: Path
    label: Path
    names: dict[int, str]


@dataclass(frozen=True)
class ClassPlan:
    """Global class ids of the structures a run trains.

    Args:
        ids: structure name -> global class id (every trained structure).
        new: the names of ``ids`` the model did not segment before (a new or unused embedding row).
        init_from: new id -> known id whose embedding row it starts from.
    """

    ids: dict[str, int]
    new: tuple[str, ...] = ()
    init_from: dict[int, int] = field(default_factory=dict)

    def taught(self) -> dict[int, str]:
        """id -> name of the new structures."""
        return {self.ids[n]: n for n in self.new}


def structure_names(info: Mapping[str, Any]) -> dict[int, str]:
    """Label value -> structure name from a saved label's ``params``: 3D Slicer's ``label_info``
    (``[{"name": ..., "idx": ...}]``) or MONAI Label's ``label_names`` (``{name: value}``).

    Raises:
        InputError: entries that are not a name with a positive integer value.
    """
    pairs: list[tuple[Any, Any]] = []
    if isinstance(info.get("label_names"), Mapping):
        pairs += [(v, k) for k, v in info["label_names"].items()]
    if isinstance(info.get("label_info"), list):
        pairs += [(e.get("idx"), e.get("name")) for e in info["label_info"] if isinstance(e, Mapping)]
    out: dict[int, str] = {}
    for value, name in pairs:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or not isinstance(name, str) or not name.strip():
            raise InputError(f"label names must pair a name with a value >= 1, got {name!r}: {value!r}"[:200])
        out[int(value)] = name.strip()
    return out


def labelled_images(root: str | os.PathLike, tag: str = "final") -> list[LabelledImage]:
    """The images of the datastore folder ``root`` with a label tagged ``tag``, oldest first.

    Raises:
        InputError: no such label in the datastore, or a label without structure names.
    """
    from voxelprompt.server.datastore_index import read_index

    root = Path(root)
    if not (root / "index.json").is_file():
        raise InputError(f"{root}: not a voxelprompt datastore folder (no index.json)")
    out = []
    for record in sorted(read_index(root).values(), key=lambda r: r.added):
        label = record.labels.get(tag)
        if label is None:
            continue
        names = structure_names(label.info)
        if not names:
            raise InputError(
                f"image {record.image_id!r}: its {tag!r} label has no structure names; save it with "
                "params label_info [{name, idx}] or label_names {name: value}"
            )
        out.append(LabelledImage(record.image_id, root / "images" / record.file, root / "labels" / label.file, names))
    if not out:
        raise InputError(f"{root}: the datastore has no labels tagged {tag!r}; save labels first (PUT /datastore/label)")
    return out


def assign_classes(
    names: Iterable[str],
    known: Mapping[int, str],
    learnt: Mapping[int, str] | None = None,
    table_size: int = 512,
    fixed: Mapping[str, int] | None = None,
    related: Mapping[str, str] | None = None,
) -> ClassPlan:
    """A global class id for each structure name.

    Args:
        names: the structures to train.
        known: id -> name of every class the model segments automatically now.
        learnt: id -> name of the classes earlier finetuning added (they keep their ids).
        table_size: rows of the model's class embedding (free ids lie below it).
        fixed: name -> id the caller chose.
        related: new structure's name -> a known class name (or id) its embedding row starts from.

    Raises:
        InputError: an id given to two structures, an id outside the table, a related class the
            model does not segment, or no free row left.
    """
    catalog = vista3d_catalog()
    learnt = dict(learnt or {})
    by_name = {v.lower(): k for k, v in learnt.items()}
    fixed = {n.strip(): int(i) for n, i in (fixed or {}).items()}
    ids: dict[str, int] = {}
    for name in dict.fromkeys(names):
        if name in fixed:
            ids[name] = fixed[name]
        elif name.lower() in by_name:
            ids[name] = by_name[name.lower()]
        else:
            with contextlib.suppress(PromptError):
                ids[name] = catalog.index(name)
    taken = set(known) | set(learnt) | set(ids.values())
    free = (i for i in range(LAST_SUPPORTED + 1, table_size) if i not in taken)
    for name in dict.fromkeys(names):
        if name not in ids:
            ids[name] = next(free, 0)
            if not ids[name]:
                raise InputError(f"no free class id left in the model's {table_size}-row class embedding for {name!r}")
    owners: dict[int, str] = {}
    for name, i in ids.items():
        if not 0 < i < table_size:
            raise InputError(f"class id {i} of {name!r} is outside the model's class embedding (1..{table_size - 1})")
        if i in owners:
            raise InputError(f"conflicting class ids: {owners[i]!r} and {name!r} both map to id {i}")
        owners[i] = name
        other = learnt.get(i)
        if other is not None and other.lower() != name.lower():
            raise InputError(f"conflicting class ids: {name!r} -> {i}, which this model already learnt as {other!r}")
    new = tuple(n for n, i in ids.items() if i not in known)
    init_from: dict[int, int] = {}
    for name, base in (related or {}).items():
        if name not in ids:
            raise InputError(f"unknown label name {name!r} in init_from: the labels name {', '.join(map(repr, ids))}")
        base_id = _known_id(base, known, learnt)
        init_from[ids[name]] = base_id
    return ClassPlan(ids, new, init_from)


def _known_id(base: str | int, known: Mapping[int, str], learnt: Mapping[int, str]) -> int:
    names = {**{v.lower(): k for k, v in known.items()}, **{v.lower(): k for k, v in learnt.items()}}
    try:
        found = names.get(str(base).lower()) or vista3d_catalog().index(base)
    except PromptError:
        found = None
    if found is None or found not in known and found not in learnt:
        raise InputError(f"unknown label name {base!r}: a new structure starts from a class this model segments")
    return int(found)

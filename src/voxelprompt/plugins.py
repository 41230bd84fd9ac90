"""Registries that plugins extend through Python entry points (the convention napari and pytest use):
model families (``voxelprompt.families``) and output formats (``voxelprompt.outputs``).

Torch-free and lazy: a registry imports its built-in records and each entry point's object on first
use, then behaves as a read-only mapping name -> record.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = ["EntryPointRegistry", "import_target"]

logger = logging.getLogger("voxelprompt")

T = TypeVar("T")

#: A plugin's name: lower case, as ``--model`` and ``--output-format`` take it.
_NAME = re.compile(r"[a-z][a-z0-9_.-]*")


def import_target(target: str) -> Any:
    """The object a ``"package.module:attribute"`` string names (imported on first use)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class EntryPointRegistry(Mapping[str, T], Generic[T]):
    """Name -> record: the built-in records, then every entry point of ``group`` whose object is a
    ``kind`` whose ``name`` is the entry point's name.

    A plugin that fails to import, is not a ``kind``, has another or an invalid name (lower case:
    letters, digits, ``_.-``), a taken name, or fails ``validate`` is skipped with a warning naming
    it; the built-in records keep their names. An entry point that names a built-in's own target
    (voxelprompt's own declarations) is not loaded twice.

    Args:
        group: the entry-point group.
        builtins: name -> ``"module:attribute"`` of voxelprompt's own records.
        kind: the record type.
        what: how warnings name a record (e.g. "model family").
        validate: raises ``ValueError`` for a plugin record the registry must not take.
    """

    def __init__(
        self, group: str, builtins: Mapping[str, str], kind: type, what: str, validate: Callable[[Any], None] | None = None
    ) -> None:
        self.group, self.builtins, self.kind, self.what, self.validate = group, dict(builtins), kind, what, validate
        self._records: dict[str, T] | None = None

    def _load(self) -> dict[str, T]:
        if self._records is None:
            from importlib.metadata import entry_points

            found: dict[str, T] = {name: import_target(target) for name, target in self.builtins.items()}
            for point in entry_points(group=self.group):
                if point.value.replace(" ", "") == self.builtins.get(point.name):
                    continue
                try:
                    record = point.load()
                except Exception as err:  # a broken plugin must not take the others down
                    logger.warning("%s plugin %s (%s) failed to load: %s", self.what, point.name, point.value, err)
                    continue
                try:
                    if not isinstance(record, self.kind) or record.name != point.name or not _NAME.fullmatch(point.name):
                        raise ValueError(f"not a {self.kind.__name__} named {point.name!r} (lower case: letters, digits, _.-)")
                    if point.name in found:
                        raise ValueError(f"the name {point.name!r} is taken")
                    if self.validate is not None:
                        self.validate(record)
                except ValueError as err:
                    logger.warning("%s plugin %s (%s) skipped: %s", self.what, point.name, point.value, err)
                    continue
                found[point.name] = record
            self._records = found
        return self._records

    def reload(self) -> None:
        """Find the entry points again (after a plugin was installed in this process)."""
        self._records = None

    def __getitem__(self, name: str) -> T:
        return self._load()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __repr__(self) -> str:
        return f"{self.group}({', '.join(self._load())})"

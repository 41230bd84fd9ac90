"""Tasks of a cohort run: one or more prompt sets, each answered by its own model, merged into one
label map per case.

Precedence rule (stated once, here): tasks are applied in the order given and **an earlier task
wins**: a later task writes its labels only where the merged map is still background (0). Two
tasks that would give one label value two different names are refused for that case.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxelprompt.errors import PromptError, VoxelPromptError
from voxelprompt.families.registry import DEFAULT_FAMILY
from voxelprompt.inference.merge import merge_labels  # the one merger, shared with the server
from voxelprompt.types import Prompts

__all__ = [
    "Task",
    "ResolvedTask",
    "ModelSpec",
    "parse_task",
    "load_tasks",
    "resolve_task",
    "task_prompt_kwargs",
    "merge_labels",
]

logger = logging.getLogger(__name__)

_PROMPT_KEYS = (
    "classes", "everything", "text", "point", "negative_point", "box", "point_space", "new_structure", "label_value",
    "allow_unlearnt",
)  # fmt: skip


def _option_keys() -> dict[str, str]:
    """``--task`` keys that set a family option -> its flag: the flag's name (``segvol_mode``,
    ``roi``) and each family's field name for it (``mode``, ``roi_size``), from the registered
    families' options records (:func:`voxelprompt.families.option`)."""
    from voxelprompt.families import option_flags

    keys: dict[str, str] = {}
    for flag, fields in option_flags().items():
        keys.setdefault(flag.lstrip("-").replace("-", "_"), flag)
        for name in fields.values():
            keys.setdefault(name, flag)
    return keys


def _keys() -> tuple[str, ...]:
    return (*_PROMPT_KEYS, "model", "checkpoint", "name", *_option_keys())
_TRUE = {"1", "true", "yes", "on", ""}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Task:
    """One prompt set as the user gave it (the fields mean what ``voxelprompt segment``'s flags do).

    Args:
        classes: class names or VISTA3D ids.
        everything: the model's everything set.
        text: a class name as free text.
        points, negative_points: clicks, (I, J, K) voxels or (x, y, z) RAS+ mm per ``point_space``.
        box: ``(i0, j0, k0, i1, j1, k1)`` inclusive corners (SegVol).
        point_space: ``"voxel"`` or ``"world"``.
        new_structure: clicks mark a structure outside VISTA3D's classes.
        label_value: value of a single object.
        allow_unlearnt: run class prompts the model never learnt (else the run is refused).
        family: ``"vista3d"`` or ``"segvol"``; None: from the checkpoint.
        checkpoint: weights file, or the name of fetched official weights (``voxelprompt weights
            list``), or ``demo``; None: the default model (the official VISTA3D weights when
            cached, else the shipped demo VISTA3D; :func:`voxelprompt.weights.default.default_model`).
        options: family options by flag (``--engine``, ``--segvol-mode``, ...; the families' option records).
        name: how messages refer to the task (``--task`` and tasks files: ``task N``).
    """

    classes: tuple[str, ...] = ()
    everything: bool = False
    text: str | None = None
    points: tuple[tuple[float, float, float], ...] = ()
    negative_points: tuple[tuple[float, float, float], ...] = ()
    box: tuple[float, ...] | None = None
    point_space: str = "voxel"
    new_structure: bool = False
    label_value: int | None = None
    allow_unlearnt: bool = False
    family: str | None = None
    checkpoint: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """What a worker loads (once, then reuses): family, weights, options and device."""

    family: str
    checkpoint: str | None
    options: Any
    device: str


@dataclass(frozen=True)
class ResolvedTask:
    """A task checked against its family (prompts built, checkpoint hashed) before any case runs.

    Args:
        task: as given.
        model: what to load.
        checkpoint_sha256: sha256 of the weights file (the shipped demo weights without one).
        prompts: the task's prompts, built once with its family's catalog (checked for each case's grid).
    """

    task: Task
    model: ModelSpec
    checkpoint_sha256: str
    prompts: Prompts = field(default_factory=Prompts, compare=False)

    def settings(self) -> dict:
        """The task as plain JSON data, for the run manifest (what must match to resume)."""
        data = dataclasses.asdict(self.task)
        data.pop("checkpoint")  # the content hash identifies the weights, not their path
        data.pop("name")
        if not data["allow_unlearnt"]:
            data.pop("allow_unlearnt")  # manifests of runs without it stay as they were
        data["family"] = self.model.family
        data["options"] = _plain(dataclasses.asdict(self.model.options))
        data["checkpoint_sha256"] = self.checkpoint_sha256
        return _plain(data)

    def names(self, classes: Sequence[int]) -> dict[int, str]:
        """Label value -> structure name of this task's result (:func:`voxelprompt.prompts.value_names`
        with the family's catalog)."""
        from voxelprompt.families import get_family
        from voxelprompt.prompts import value_names

        return value_names(classes, self.prompts, get_family(self.model.family).class_catalog())


def parse_task(text: str, index: int = 1) -> Task:
    """A ``--task`` value: ``key=value`` pairs separated by ``;``.

    Keys: ``classes`` (comma-separated), ``everything``, ``text``, ``point`` and
    ``negative_point`` (``I,J,K``, several separated by ``|``), ``box``, ``point_space``,
    ``new_structure``, ``label_value``, ``model``, ``checkpoint``, ``name`` and the family
    options, by flag name or field name (``engine``, ``roi`` = ``roi_size`` as ``H,W,D``,
    ``segvol_mode`` = ``mode``, ...: the registered families' options records).
    Example: ``classes=liver,spleen`` or ``text=left kidney;model=segvol;checkpoint=SegVol_v1.pth``.

    Raises:
        PromptError: an unknown key or a bad value, naming the task.
    """
    values: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep and (key in ("everything", "new_structure", "allow_unlearnt") or _is_switch(key)):
            value = "true"
        elif not sep:
            raise PromptError(f"--task {text!r}: expected key=value pairs separated by ';', got {part.strip()!r}")
        values[key] = value.strip()
    return _task_from_mapping(values, f"--task {text!r}", index)


def load_tasks(path: str | os.PathLike) -> list[Task]:
    """A JSON tasks file: a list of objects with the keys of :func:`parse_task` (``classes`` and
    clicks may also be JSON lists).

    Raises:
        VoxelPromptError: an unreadable file; PromptError: a bad task, named.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VoxelPromptError(f"{path}: cannot read tasks file ({' '.join(str(err).split())})") from None
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise VoxelPromptError(f"{path}: a tasks file is a non-empty JSON list of objects")
    return [_task_from_mapping(d, f"{path}[{i}]", i + 1) for i, d in enumerate(data)]


def resolve_task(task: Task, device: str) -> ResolvedTask:
    """Check a task before any work: its prompts, its family's capabilities and options, and its
    checkpoint (hashed).

    Raises:
        VoxelPromptError: a bad prompt, option or checkpoint, the message prefixed by the task's name.
    """
    from voxelprompt import api
    from voxelprompt.families import check_capabilities
    from voxelprompt.weights.cache import resolve_checkpoint

    try:
        if task.checkpoint is not None:  # a name from `voxelprompt weights list` means its fetched file
            task = dataclasses.replace(task, checkpoint=str(resolve_checkpoint(Path(task.checkpoint))))
        family = api.resolve_family(task.checkpoint, task.family)
        prompts = api.build_prompts(**task_prompt_kwargs(task), catalog=family.class_catalog())
        if not (prompts.classes or prompts.everything or prompts.points or prompts.box or prompts.text):
            raise PromptError("nothing to segment: give classes, everything, clicks, a box or a text")
        check_capabilities(prompts, family)
        checkpoint = task.checkpoint
        if checkpoint is None and family.name == DEFAULT_FAMILY:  # the default model, nobody asked
            from voxelprompt.weights.default import default_model

            checkpoint = str(default_model().checkpoint)
        family.learnt(checkpoint).check(prompts.classes, allow=prompts.allow_unlearnt)
        options = family.options_from_flags(dict(task.options))
    except VoxelPromptError as err:
        raise type(err)(f"{task.name}: {err}" if task.name else str(err)) from None
    spec = ModelSpec(family=family.name, checkpoint=checkpoint, options=options, device=device)
    return ResolvedTask(task=task, model=spec, checkpoint_sha256=_checkpoint_sha256(checkpoint, family.name), prompts=prompts)


def task_prompt_kwargs(task: Task) -> dict:
    """Keywords of :func:`voxelprompt.api.build_prompts` for ``task``."""
    return dict(
        classes=list(task.classes), points=list(task.points), negative_points=list(task.negative_points),
        point_space=task.point_space, new_structure=task.new_structure, text=task.text, box=task.box,
        everything=task.everything, label_value=task.label_value, allow_unlearnt=task.allow_unlearnt,
    )  # fmt: skip


def _task_from_mapping(values: Mapping[str, Any], where: str, index: int) -> Task:
    keys, option_keys = _keys(), _option_keys()
    unknown = [k for k in values if k.replace("-", "_") not in keys]
    if unknown:
        raise PromptError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(keys)}")
    v = {k.replace("-", "_"): val for k, val in values.items()}
    options = {option_keys[k]: _option_value(k, option_keys[k], v[k], where) for k in v if k in option_keys}
    return Task(
        classes=tuple(_names(v.get("classes", ()))),
        everything=_flag(v.get("everything", False), "everything", where),
        text=str(v["text"]) if v.get("text") not in (None, "") else None,
        points=_clicks(v.get("point", ()), "point", where),
        negative_points=_clicks(v.get("negative_point", ()), "negative_point", where),
        box=_numbers(v["box"], 6, "box", where) if v.get("box") not in (None, "") else None,
        point_space=str(v.get("point_space") or "voxel"),
        new_structure=_flag(v.get("new_structure", False), "new_structure", where),
        label_value=_int(v["label_value"], "label_value", where) if v.get("label_value") not in (None, "") else None,
        allow_unlearnt=_flag(v.get("allow_unlearnt", False), "allow_unlearnt", where),
        family=str(v["model"]) if v.get("model") else None,
        checkpoint=str(v["checkpoint"]) if v.get("checkpoint") else None,
        options=options,
        name=str(v.get("name") or f"task {index}"),
    )


def _names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [p.strip() for p in value.split(",") if p.strip()]
    return [str(p) for p in value]


def _flag(value: Any, key: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise PromptError(f"{where}: {key} must be true or false, got {value!r}")


def _int(value: Any, key: str, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PromptError(f"{where}: {key} must be a whole number, got {value!r}") from None


def _numbers(value: Any, count: int, key: str, where: str) -> tuple[float, ...]:
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        numbers = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != count:
        raise PromptError(f"{where}: {key} needs {count} comma-separated numbers, got {value!r}")
    return numbers


def _clicks(value: Any, key: str, where: str) -> tuple[tuple[float, float, float], ...]:
    items = [p for p in value.split("|") if p.strip()] if isinstance(value, str) else list(value)
    return tuple(_numbers(p, 3, key, where) for p in items)  # type: ignore[misc]


def _option_type(flag: str) -> Any:
    """The value type of ``flag`` in the first family that has it (its options record's field)."""
    from voxelprompt.families import get_family, option_flags
    from voxelprompt.families.options import field_type

    family, field = next(iter(option_flags()[flag].items()))
    return field_type(get_family(family).options, field)


def _is_switch(key: str) -> bool:
    flag = _option_keys().get(key)
    return flag is not None and _option_type(flag) is bool


def _option_value(key: str, flag: str, value: Any, where: str) -> Any:
    """A task's text for a family option as the type of its record's field."""
    import typing

    kind = _option_type(flag)
    if kind is bool:
        return _flag(value, key, where)
    if typing.get_origin(kind) is tuple:
        types = typing.get_args(kind)
        return tuple(t(n) for t, n in zip(types, _numbers(value, len(types), key, where)))  # each element its own type
    if kind in (int, float):
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise PromptError(f"{where}: {key} must be a number, got {value!r}") from None
    return str(value)


def _checkpoint_sha256(checkpoint: str | None, family: str = DEFAULT_FAMILY) -> str:
    """The weights' content hash; a family's shipped default without a file is named by the family."""
    import hashlib

    from voxelprompt.batch.cases import hash_files

    if checkpoint is not None:
        return hash_files([Path(checkpoint)])
    if family == DEFAULT_FAMILY:
        from voxelprompt.families.vista3d.inference.default_model import default_checkpoint

        return hash_files([default_checkpoint()])
    return hashlib.sha256(f"{family}: shipped default".encode()).hexdigest()


def _plain(value: Any) -> Any:
    """JSON-stable data: tuples as lists, mappings with string keys."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

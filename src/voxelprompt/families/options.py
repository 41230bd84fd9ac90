"""Fields of a family's options record that carry how they appear on the command line and in
batch tasks (:func:`option`); the CLI builds its flags from them (:mod:`voxelprompt.cli.family_options`)."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["OptionSpec", "option", "option_specs", "field_type"]


@dataclass(frozen=True)
class OptionSpec:
    """How one field of a family's options record appears on the command line and in batch rows.

    Args:
        flag: the long flag, e.g. ``--engine``; one flag means the same in every family that has it.
        help: one line for ``--help`` (say what omitting it gives).
        choices: the allowed values, listed by ``--help``; empty: any value of the field's type.
        metavar: how ``--help`` shows the value.
        is_flag: a boolean switch (``--amp``) rather than a valued option.
        nargs: values per option (``--roi H W D``: 3).
    """

    flag: str
    help: str
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    is_flag: bool = False
    nargs: int = 1


def option(default: Any, flag: str, help: str, choices: Iterable[str] = (), metavar: str | None = None, nargs: int = 1) -> Any:  # noqa: A002
    """A field of a family's options record that carries its :class:`OptionSpec`, from which the
    CLI (``segment``, ``serve``, ``evaluate``) and batch rows build their options."""
    spec = OptionSpec(flag=flag, help=help, choices=tuple(choices), metavar=metavar, is_flag=isinstance(default, bool), nargs=nargs)
    return dataclasses.field(default=default, metadata={"voxelprompt": spec})


def option_specs(options: type) -> dict[str, OptionSpec]:
    """Field name -> :class:`OptionSpec` of an options record type (fields made by :func:`option`)."""
    return {f.name: f.metadata["voxelprompt"] for f in dataclasses.fields(options) if "voxelprompt" in f.metadata}


def field_type(options: type, field: str) -> Any:
    """The value type of one field of an options record, ``X | None`` read as ``X``
    (``tuple[int, int, int] | None`` -> ``tuple[int, int, int]``)."""
    hint = typing.get_type_hints(options)[field]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint

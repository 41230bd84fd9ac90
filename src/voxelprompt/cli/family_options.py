"""Command-line options built from the families' options records (:func:`voxelprompt.families.option`).

Each field of a family's options record carries its flag, help and choices; a command decorated
with :func:`with_family_options` gets one option per distinct flag of every registered family
(plugins included), and receives the values given as one ``family_options`` mapping, flag ->
value. :func:`options_for` turns that mapping into the chosen family's record, refusing a flag
that belongs to another family. Adding a family or an option is then an edit to its package only.
"""

from __future__ import annotations

import enum
import functools
import logging
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from voxelprompt.errors import PromptError
from voxelprompt.families import FAMILIES, ModelFamily, OptionSpec, option_flags, option_specs
from voxelprompt.families.options import field_type

__all__ = ["FamilyFlag", "family_flags", "with_family_options", "options_for", "option_fields"]

logger = logging.getLogger("voxelprompt")


@dataclass(frozen=True)
class FamilyFlag:
    """One command-line option shared by the families whose records have its flag.

    Args:
        spec: the flag's :class:`~voxelprompt.families.OptionSpec` (the first family's).
        param: the Python parameter name (``--segvol-mode`` -> ``segvol_mode``).
        annotation: the Typer annotation of the parameter.
        fields: family name -> the field of its options record the flag sets.
    """

    spec: OptionSpec
    param: str
    annotation: Any
    fields: Mapping[str, str]


def _value_type(options: type, field: str, spec: OptionSpec) -> Any:
    if spec.is_flag:
        return bool
    if spec.choices:
        return enum.Enum(f"{spec.flag.strip('-').title().replace('-', '')}Choice", {c: c for c in spec.choices}, type=str)
    return field_type(options, field)


def family_flags(families: Mapping[str, ModelFamily] | None = None) -> dict[str, FamilyFlag]:
    """Flag -> :class:`FamilyFlag` over every registered family (in registry order)."""
    flags: dict[str, FamilyFlag] = {}
    fields: dict[str, dict[str, str]] = {}
    for family in (FAMILIES if families is None else families).values():
        for field, spec in option_specs(family.options).items():
            fields.setdefault(spec.flag, {})[family.name] = field
            if spec.flag in flags:
                first = flags[spec.flag].spec
                if (first.choices, first.is_flag, first.nargs) != (spec.choices, spec.is_flag, spec.nargs):
                    logger.warning("%s of %s differs from the first family's (%s): the command line takes the first's", spec.flag, family.name, first)
                continue
            kind = _value_type(family.options, field, spec)
            info = typer.Option(spec.flag, help=spec.help, metavar=spec.metavar)
            annotation = Annotated[bool, info] if spec.is_flag else Annotated[kind | None, info]
            flags[spec.flag] = FamilyFlag(spec, spec.flag.lstrip("-").replace("-", "_"), annotation, fields[spec.flag])
    return flags


def with_family_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with one Typer option per family flag added to its signature; it receives them
    as ``family_options``: flag -> value, for the flags given (a switch given as True)."""
    flags = family_flags()
    signature = inspect.signature(command)
    params = [p for p in signature.parameters.values() if p.name != "family_options"]
    taken = {p.name for p in params}
    added = [flag for flag in flags.values() if flag.param not in taken]
    for flag in flags.values():
        if flag.param in taken:  # a family option may not shadow a command's own parameter
            logger.warning("family option %s of %s is not offered by %s: the command has its own", flag.spec.flag, ", ".join(flag.fields), command.__name__)
    extra = [
        inspect.Parameter(f.param, inspect.Parameter.KEYWORD_ONLY, default=False if f.spec.is_flag else None, annotation=f.annotation)
        for f in added
    ]  # fmt: skip
    hints = typing.get_type_hints(command, include_extras=True)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {}
        for f in added:
            value = kwargs.pop(f.param, None)
            if value is not None and value is not False:
                given[f.spec.flag] = value.value if isinstance(value, enum.Enum) else value
        return command(*args, family_options=given, **kwargs)

    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keyword = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation), kind=inspect.Parameter.KEYWORD_ONLY) for p in positional + keyword] + extra
    )  # fmt: skip
    wrapper.__annotations__ = {**{p.name: hints.get(p.name, p.annotation) for p in params}, **{f.param: f.annotation for f in added}}
    wrapper.__annotations__.pop("family_options", None)
    return wrapper


def options_for(family: ModelFamily, given: Mapping[str, Any]) -> Any:
    """``family``'s options record from ``given`` (flag -> value, as :func:`with_family_options`
    passes); see :meth:`~voxelprompt.families.ModelFamily.options_from_flags`."""
    return family.options_from_flags(given)


def option_fields(given: Mapping[str, Any], families: Iterable[str]) -> dict[str, Any]:
    """Field name -> value from ``given`` (flag -> value) for commands that load models of several
    families at once (``evaluate``): each model then takes the fields its family has
    (:func:`voxelprompt.api.load_named_models`).

    Raises:
        PromptError: a flag none of ``families`` (the families of the models to load) has.
    """
    flags, names = option_flags(), sorted(set(families))
    for flag in given:
        if not set(flags[flag]) & set(names):
            raise PromptError(f"{flag} is not an option of the models given ({', '.join(names) or 'none'})")
    return {field: value for flag, value in given.items() for field in flags[flag].values()}

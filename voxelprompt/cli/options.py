"""Parsing of comma-separated CLI values (clicks, boxes) shared by the commands."""

from __future__ import annotations

from voxelprompt.errors import PromptError

__all__ = ["parse_numbers", "parse_point", "parse_box"]


def parse_numbers(text: str, count: int, option: str, form: str) -> tuple[float, ...]:
    """``"1,2,3"`` -> ``(1.0, 2.0, 3.0)``; a PromptError naming ``option`` otherwise."""
    parts = text.replace(" ", "").split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise PromptError(f"{option} {text!r}: expected {count} numbers {form}") from None
    if len(values) != count:
        raise PromptError(f"{option} {text!r}: expected {count} numbers {form}, got {len(values)}")
    return values


def parse_point(text: str, option: str = "--point") -> tuple[float, float, float]:
    """A click ``I,J,K``."""
    return parse_numbers(text, 3, option, "I,J,K")  # type: ignore[return-value]


def parse_box(text: str, option: str = "--box") -> tuple[float, ...]:
    """A box ``I0,J0,K0,I1,J1,K1`` (both corners inclusive)."""
    return parse_numbers(text, 6, option, "I0,J0,K0,I1,J1,K1")

"""Request fields every web adapter parses the same way."""

from __future__ import annotations

import json
from typing import Any

from voxelprompt.errors import PromptError

__all__ = ["json_object"]


def json_object(raw: str | None, what: str) -> dict[str, Any]:
    """``raw`` parsed as a JSON object (empty or None: ``{}``).

    Raises:
        PromptError: not JSON, JSON nested too deeply, or JSON that is not an object; the message names ``what``
            (e.g. "params", "X-Meta header").
    """
    try:
        value = json.loads(raw) if raw else {}
    except json.JSONDecodeError as err:
        raise PromptError(f"{what} must be a JSON object ({err.msg} at character {err.pos})") from None
    except RecursionError:  # nesting deeper than the parser's stack
        raise PromptError(f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise PromptError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value

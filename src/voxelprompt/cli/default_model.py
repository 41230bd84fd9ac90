"""Which model a command runs without ``-c``: the command line's face of
:func:`voxelprompt.weights.default.default_model` (``--download``, ``--offline``, the consent
question on a terminal, a download bar, the one line that says what was chosen)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from voxelprompt.families import DEFAULT_FAMILY

__all__ = ["checkpoint_or_default", "can_ask"]

logger = logging.getLogger("voxelprompt")


def can_ask() -> bool:
    """A person can answer a question: stdin and stderr are terminals and ``CI`` is not set
    (scripts, pipes and CI never wait on a prompt)."""
    if os.environ.get("CI"):
        return False
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, OSError, ValueError):  # a replaced or closed stream
        return False


def _ask(question: str) -> bool:
    return typer.confirm(question, default=False, err=True)


def checkpoint_or_default(
    checkpoint: Path | None, family: str | None, *, download: bool = False, offline: bool = False, quiet: bool = False
) -> Path | None:
    """``checkpoint`` as given, or for a family whose weights ship the default model's file: the
    cached official weights, downloaded with consent, else the demo model (one line says why).

    Raises:
        WeightsError: an agreed download that fails other than by an unreachable network.
    """
    if checkpoint is not None or (family is not None and family != DEFAULT_FAMILY):
        return checkpoint
    from voxelprompt.cli.weights_cmd import download_bar
    from voxelprompt.weights.default import DEFAULT_WEIGHTS, default_model

    bar, shown = download_bar(DEFAULT_WEIGHTS, quiet), []

    def progress(done: int, total: int | None) -> None:  # the bar starts with the first bytes, after any question
        if not shown:
            shown.append(bar.__enter__())
        if shown[0] is not None:
            shown[0](done, total)

    try:
        choice = default_model(download=download, offline=offline, ask=_ask if can_ask() else None, progress=progress)
    finally:
        if shown:
            bar.__exit__(None, None, None)
    if choice.message:
        logger.warning(choice.message)
    return choice.checkpoint

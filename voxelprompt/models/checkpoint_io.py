"""Reading and writing torch checkpoint files, shared by every model family.

Loads with ``weights_only=True`` (no arbitrary pickles) and turns every failure into a
:class:`~voxelprompt.errors.CheckpointError`; saves atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from voxelprompt.errors import CheckpointError

__all__ = ["load_checkpoint_file", "save_checkpoint_file"]


def load_checkpoint_file(path: str | os.PathLike) -> object:
    """The object stored in a torch checkpoint, on the CPU.

    Raises:
        CheckpointError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"{path}: cannot read checkpoint ({type(err).__name__}: {str(err)[:160]})") from err


def save_checkpoint_file(obj: object, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path

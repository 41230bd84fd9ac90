"""Reading and writing torch checkpoint files, shared by every model family.

Loads with ``weights_only=True`` (no arbitrary pickles) and turns every failure into a
:class:`~voxelprompt.errors.CheckpointError`; saves atomically (temporary file, then rename).
"""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import torch

from voxelprompt.errors import CheckpointError

__all__ = ["load_checkpoint_file", "save_checkpoint_file", "checkpoint_keys"]


def load_checkpoint_file(path: str | os.PathLike) -> object:
    """The object stored in a torch checkpoint, on the CPU.

    Raises:
        CheckpointError: the file is missing or unreadable, or it is a pickle carrying Python
            objects beyond tensors and plain containers (never unpickled: that could run code).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "global" not in str(err).lower():  # torch names the Python object it refused to build
            raise CheckpointError(f"{path}: cannot read checkpoint (corrupt or foreign pickle data)") from err
        # torch's own advice here is to load with weights_only=False, i.e. to run the file's code.
        raise CheckpointError(
            f"{path}: not a plain weights file (it holds pickled Python objects, which could run code "
            "when loaded), so it is not loaded; load and re-save only its state_dict where you trust it"
        ) from err
    except Exception as err:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(
            f"{path}: cannot read checkpoint: not a PyTorch weights file ({type(err).__name__}: {_first_line(err)})"
        ) from err


def checkpoint_keys(path: str | os.PathLike) -> list[str]:
    """The tensor names of a checkpoint (inside a ``state_dict`` / ``model`` wrapper, if any).

    Memory-maps the file where its format allows, so recognising a model family does not read
    every weight; the names are remembered per file (path, size, modification time).

    Raises:
        CheckpointError: as :func:`load_checkpoint_file`.
    """
    stat = Path(path).stat()
    return list(_keys(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _keys(path: str, size: int, mtime_ns: int) -> tuple[str, ...]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip-format file (mmap needs one): read it the usual way
        obj = load_checkpoint_file(path)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    return tuple(str(k) for k in obj) if isinstance(obj, dict) else ()


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:160] if lines else type(err).__name__


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

"""The optional parts of voxelprompt and the pip extras that install them (``pyproject.toml``).

The core (``pip install voxelprompt``) segments, draws and lists with VISTA3D; the server, Dask
workers, PACS / DICOM-SEG and SegVol need an extra. Using one that is not installed is a one-line
:class:`MissingExtraError` naming the ``pip install`` command, raised before any work.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator, Sequence

from voxelprompt.errors import VoxelPromptError

__all__ = ["EXTRAS", "MissingExtraError", "require", "needs"]

#: Extra -> the top-level modules it installs that voxelprompt imports; ``a|b``: either name
#: (python-multipart is imported as ``python_multipart``, before 0.0.13 as ``multipart``).
EXTRAS: dict[str, tuple[str, ...]] = {
    "server": ("fastapi", "uvicorn", "python_multipart|multipart", "urllib3", "psutil", "blosc2"),
    "dask": ("distributed",),
    "pacs": ("dicomweb_client", "requests", "highdicom"),
    "segvol": ("transformers", "instant_clip_tokenizer"),
}


class MissingExtraError(VoxelPromptError):
    """A feature whose pip extra is not installed (exit code 2, like other fixable errors)."""


def _error(extra: str, purpose: str, module: str) -> MissingExtraError:
    return MissingExtraError(
        f'{purpose} needs the "{extra}" extra ({module} is not installed): pip install "voxelprompt[{extra}]"'
    )


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken install, or an import hook that refuses it
        return False


def require(extra: str, purpose: str, modules: Sequence[str] | None = None) -> None:
    """Raise unless every module of ``extra`` can be imported; imports nothing (cheap).

    Args:
        extra: a key of :data:`EXTRAS`.
        purpose: what needs it, for the message (``"voxelprompt serve"``).
        modules: only these of the extra's modules (DICOM-SEG output needs highdicom alone).

    Raises:
        MissingExtraError: e.g. ``voxelprompt serve needs the "server" extra (fastapi is not
            installed): pip install "voxelprompt[server]"``.
    """
    for entry in EXTRAS[extra]:
        names = entry.split("|")
        if modules is not None and not set(names) & set(modules):
            continue
        if not any(_installed(name) for name in names):
            raise _error(extra, purpose, names[0])


@contextlib.contextmanager
def needs(extra: str, purpose: str) -> Iterator[None]:
    """Turn an ImportError of one of ``extra``'s modules inside the block into :class:`MissingExtraError`."""
    try:
        yield
    except ImportError as err:
        root = (err.name or "").partition(".")[0]
        if any(root in entry.split("|") for entry in EXTRAS[extra]):
            raise _error(extra, purpose, root) from None
        raise

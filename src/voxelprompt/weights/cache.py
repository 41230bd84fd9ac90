"""Where official weights live on disk and which settings the environment gives.

``$VOXELPROMPT_HOME`` (default ``$XDG_CACHE_HOME/voxelprompt``, i.e. ``~/.cache/voxelprompt``)
holds ``weights/NAME/FILE``; a download in progress is ``FILE.part`` beside it. The same layout
served over HTTP is a mirror (``VOXELPROMPT_WEIGHTS_MIRRORS``): ``BASE/NAME/FILE``.
"""

from __future__ import annotations

import os
from pathlib import Path

from voxelprompt.errors import WeightsError
from voxelprompt.weights.registry import WEIGHTS, WeightFile

__all__ = ["home", "weight_path", "part_path", "offline_from_env", "mirrors_from_env", "mirror_urls", "resolve_checkpoint"]

#: Truthy spellings of ``VOXELPROMPT_OFFLINE``.
_TRUE = {"1", "true", "yes", "on"}


def home() -> Path:
    """The voxelprompt cache folder: ``$VOXELPROMPT_HOME``, else ``$XDG_CACHE_HOME/voxelprompt``, else ``~/.cache/voxelprompt``."""
    explicit = os.environ.get("VOXELPROMPT_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "voxelprompt"


def weight_path(weight: WeightFile) -> Path:
    """Where ``weight`` lives (or will live) in the cache: ``HOME/weights/NAME/FILE``."""
    return home() / "weights" / weight.name / weight.file_name


def part_path(weight: WeightFile) -> Path:
    """The partial download of ``weight`` (renamed to :func:`weight_path` once its digest matches)."""
    final = weight_path(weight)
    return final.with_name(final.name + ".part")


def offline_from_env() -> bool:
    """True when ``VOXELPROMPT_OFFLINE`` is set to 1/true/yes/on (case-insensitive)."""
    return os.environ.get("VOXELPROMPT_OFFLINE", "").strip().lower() in _TRUE


def mirrors_from_env() -> list[str]:
    """Base URLs from ``VOXELPROMPT_WEIGHTS_MIRRORS`` (comma- or space-separated), in order."""
    raw = os.environ.get("VOXELPROMPT_WEIGHTS_MIRRORS", "")
    return [part for part in raw.replace(",", " ").split() if part]


def mirror_urls(weight: WeightFile, bases: list[str]) -> list[str]:
    """``BASE/NAME/FILE`` for each mirror base (a served copy of the cache's ``weights`` folder)."""
    return [f"{base.rstrip('/')}/{weight.name}/{weight.file_name}" for base in bases]


def resolve_checkpoint(value: Path) -> Path:
    """A ``--checkpoint`` value: an existing path as is, ``demo`` as the shipped demo weights, a
    registry name as its cached file.

    Args:
        value: what the user typed after ``-c``.

    Returns:
        ``value`` when it exists on disk; the shipped demo weights for ``demo``; ``value`` when it
        is not a registry name (loading reports a missing file); else the cached file of the
        weights called ``value``.

    Raises:
        WeightsError: ``value`` names registry weights that are not downloaded yet.
    """
    from voxelprompt.families.vista3d.inference.default_model import DEMO_NAME, default_checkpoint

    if value.exists():
        return value
    if str(value) == DEMO_NAME:
        return default_checkpoint()
    if str(value) not in WEIGHTS:
        return value
    path = weight_path(WEIGHTS[str(value)])
    if not path.is_file():
        raise WeightsError(f"weights {value} are not downloaded: run 'voxelprompt weights fetch {value}' (it would be {path})")
    return path

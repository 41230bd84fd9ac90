"""Per-case cache of pseudo-label maps: one ``.npz`` per case and parameter set, written atomically.

The key hashes the parameters *and* the image content, so a changed image or setting never reads a
stale map; the case name (the image file's stem) keeps the folder readable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from pathlib import Path

import numpy as np

from voxelprompt.types import Volume

__all__ = ["cache_path", "load_cached", "save_cached", "volume_digest"]

logger = logging.getLogger(__name__)


def volume_digest(volume: Volume) -> str:
    """SHA-1 of a volume's shape, dtype, voxel values and affine."""
    h = hashlib.sha1()
    array = np.ascontiguousarray(volume.array)
    h.update(f"{array.shape}|{array.dtype.str}|".encode())
    h.update(array.tobytes())
    h.update(np.asarray(volume.affine, dtype=np.float64).tobytes())
    return h.hexdigest()


def _case_name(volume: Volume) -> str:
    name = Path(str(volume.source)).name
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "case"


def cache_path(cache_dir: str | os.PathLike, volume: Volume, kind: str, params: dict) -> Path:
    """``cache_dir/<case>.<kind>.<hash>.npz`` for ``volume`` and JSON-serialisable ``params``."""
    key = json.dumps({"params": params, "image": volume_digest(volume)}, sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return Path(cache_dir) / f"{_case_name(volume)}.{kind}.{digest}.npz"


def load_cached(path: Path) -> np.ndarray | None:
    """The cached label array, or ``None`` when absent or unreadable (it is then recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as data:
            array = data["labels"]
    except Exception as err:  # noqa: BLE001 - a corrupt cache entry is recomputed, not fatal
        logger.warning("ignoring unreadable cache file %s (%s)", path, err)
        return None
    logger.info("loaded cached %s", path)
    return array


def save_cached(path: Path, labels: np.ndarray) -> Path:
    """Write ``labels`` to ``path`` (compressed), via a temporary file and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp.npz")
    try:
        np.savez_compressed(tmp, labels=labels)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

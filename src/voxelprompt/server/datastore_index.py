"""The datastore's records and its index on disk: which image and label files a client's names
map to (files are named by a hash of the name, never by the name), read and written atomically.

Reading needs no store: a command may read the folder of a running server (``voxelprompt finetune``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voxelprompt.errors import InputError

__all__ = [
    "StoredImage",
    "StoredLabel",
    "SessionRecord",
    "UPLOAD_SUFFIXES",
    "check_id",
    "check_tag",
    "upload_suffix",
    "file_key",
    "read_index",
    "write_index",
]

#: Image formats an upload may have (the reader's; a DICOM series is not uploaded file by file).
UPLOAD_SUFFIXES = (".nii.gz", ".nii", ".nrrd")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_ID_CHARS = 256


@dataclass(frozen=True)
class StoredLabel:
    """A label map saved for an image under a tag (``final``, ``original``, ...)."""

    tag: str
    file: str
    suffix: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredImage:
    """One image of the store.

    Args:
        image_id: the client's name for it.
        file: file name inside ``<root>/images`` (derived from the id, never given by a client).
        suffix: its format (one of :data:`UPLOAD_SUFFIXES`).
        sha256: content hash of the file (sessions are keyed by it: a re-upload under the same
            id is a new image).
        shape: (I, J, K) voxels; ``spacing``: mm along i, j, k.
        added: upload time (Unix seconds); ``info``: the client's ``params`` (never trusted).
        labels: saved label maps by tag.
        provenance: where the server got it: ``"upload"`` (a client sent it) or ``"dicomweb"``
            (the server fetched it from its PACS); set by the server, never by a client.
    """

    image_id: str
    file: str
    suffix: str
    sha256: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    added: float
    info: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, StoredLabel] = field(default_factory=dict)
    provenance: str = "upload"


@dataclass(frozen=True)
class SessionRecord:
    """A MONAI Label session: an image uploaded for one annotation session, kept until ``expiry``."""

    session_id: str
    image_id: str
    created: float
    expiry: float


def check_id(image_id: str, what: str = "image id") -> str:
    """``image_id`` if it is a usable name: 1-256 printable characters.

    Raises:
        InputError: empty, too long, or with control characters.
    """
    if not isinstance(image_id, str) or not image_id.strip():
        raise InputError(f"{what} must be a non-empty string, got {image_id!r}")
    if len(image_id) > _MAX_ID_CHARS or not image_id.isprintable():
        raise InputError(f"{what} must be at most {_MAX_ID_CHARS} printable characters, got {image_id[:40]!r}...")
    return image_id


def upload_suffix(filename: str | None) -> str:
    """The image format of an uploaded file name.

    Raises:
        InputError: a name without one of :data:`UPLOAD_SUFFIXES`.
    """
    name = (filename or "").lower()
    for suffix in UPLOAD_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise InputError(
        f"unsupported image file {filename!r}: upload NIfTI (.nii, .nii.gz) or NRRD (.nrrd)"
    )


def check_tag(tag: str) -> str:
    """``tag`` if it can name a label: 1-64 letters, digits, ``_`` or ``-``.

    Raises:
        InputError: any other tag.
    """
    if not _TAG.match(tag or ""):
        raise InputError(f"label tag must be 1-64 letters, digits, '_' or '-', got {tag!r}")
    return tag


def file_key(image_id: str) -> str:
    """The file-name stem of ``image_id``'s files (a hash: a name is never a path)."""
    return hashlib.sha256(image_id.encode("utf-8")).hexdigest()[:40]


def read_index(root: str | os.PathLike) -> dict[str, StoredImage]:
    """The images (with their labels) a datastore folder's index names, by id, without opening the
    store: read-only, so a command may read the folder of a running server (``voxelprompt
    finetune``). Entries whose image file is gone are left out; a folder without an index has none.

    Raises:
        InputError: an index that is not a voxelprompt datastore index.
    """
    path = Path(root) / "index.json"
    if not path.exists():
        return {}
    images: dict[str, StoredImage] = {}
    try:
        raw = json.loads(path.read_text())
        for item in raw.get("images", []):
            labels = {t: StoredLabel(**lab) for t, lab in item.pop("labels", {}).items()}
            record = StoredImage(**{**item, "shape": tuple(item["shape"]), "spacing": tuple(item["spacing"]), "labels": labels})
            if (Path(root) / "images" / record.file).exists():
                images[record.image_id] = record
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise InputError(f"{path}: not a voxelprompt datastore index ({err})") from None
    return images


def write_index(root: Path, images: list[StoredImage]) -> None:
    """Replace ``root/index.json`` with ``images`` (session images left out) atomically and durably:
    a killed server leaves either the previous index or this one."""
    path = root / "index.json"
    tmp = path.with_name(f".index.{secrets.token_hex(4)}.tmp")
    kept = [asdict(r) for r in images if not r.image_id.startswith("session-")]
    with open(tmp, "w") as file:
        file.write(json.dumps({"images": kept}, indent=1))
        file.flush()
        os.fsync(file.fileno())  # the data is on disk before the name points at it
    os.replace(tmp, path)
    _fsync_folder(root)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


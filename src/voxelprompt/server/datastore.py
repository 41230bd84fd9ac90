"""The server's image store: uploaded CTs and labels under opaque keys, never under client paths.

A client names an image with any string (3D Slicer sends its volume node name, OHIF a
SeriesInstanceUID); the store keeps the file as ``<root>/images/<sha256 of the name>.<ext>`` and
an index (``index.json``, replaced atomically) from names to files, so an id such as
``../../etc/passwd`` is only an unknown name, never a path. Uploads are checked by reading them
(the same reader as ``voxelprompt segment``, under its untrusted-file policy: one self-contained
file, no references to other files, a decoded-size limit checked from the header) before they are
kept: a refused file gets the reader's one-line message and nothing of it stays. Uploads are
decoded one at a time, so concurrent uploads cannot multiply the decoding memory. Decoded volumes
of the most recently used images are kept in memory for the next request, charged to the server's
memory budget (dropped first when it is full). Each upload is a new file; the index (fsynced) is
replaced before the file it supersedes is deleted, so a killed server leaves the index naming
either the previous upload or the new one, each with its own file.

MONAI Label's "sessions" (``PUT /session/``: an image uploaded for one annotation session, with an
expiry) are images of this store with a session record beside them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from voxelprompt.errors import InputError, VoxelPromptError
from voxelprompt.imageio.policy import UNTRUSTED

# The records and the index live in datastore_index; they stay importable from here.
from voxelprompt.server.datastore_index import (
    UPLOAD_SUFFIXES,
    SessionRecord,
    StoredImage,
    StoredLabel,
    check_id,
    check_tag,
    file_key,
    read_index,
    upload_suffix,
    write_index,
)
from voxelprompt.types import Volume

if TYPE_CHECKING:
    from voxelprompt.server.budget import MemoryBudget

__all__ = [
    "NotFound",
    "StoredImage",
    "StoredLabel",
    "SessionRecord",
    "ImageStore",
    "UPLOAD_SUFFIXES",
    "check_id",
    "upload_suffix",
    "read_index",
]

class NotFound(VoxelPromptError):
    """An image, label or session id the store does not hold (HTTP 404)."""


class ImageStore:
    """Images and labels under ``root``; thread-safe.

    Args:
        root: the store's folder (created if missing; an existing store is reopened).
        max_images: uploads beyond this evict the least recently added image (not its labels'
            files: those go with it) so a long-running server cannot fill its disk.
        cached_volumes: decoded volumes kept in memory.
        session_s: lifetime of a MONAI Label session.
        budget: the server's memory budget: cached volumes are charged to it, and its
            ``max_image_bytes`` limits an upload's decoded size (None: the reader's memory check only).

    Raises:
        InputError: ``root`` cannot be created or written.
    """

    def __init__(
        self, root: str | os.PathLike, max_images: int = 100, cached_volumes: int = 2, session_s: float = 3600,
        budget: MemoryBudget | None = None,
    ) -> None:  # fmt: skip
        self.root = Path(root)
        self.budget = budget
        self.policy = UNTRUSTED.with_budget(budget.max_image_bytes if budget is not None else None)
        self._decoding = threading.Lock()  # one upload decoded at a time
        self.max_images = max_images
        self.session_s = session_s
        try:
            (self.root / "images").mkdir(parents=True, exist_ok=True)
            (self.root / "labels").mkdir(exist_ok=True)
        except OSError as err:
            raise InputError(f"{self.root}: cannot create the datastore folder ({err.strerror})") from None
        self._lock = threading.RLock()
        self._volumes: OrderedDict[str, Volume] = OrderedDict()
        self._cached = cached_volumes
        self._images: dict[str, StoredImage] = {}
        self._sessions: dict[str, SessionRecord] = {}
        self._load_index()
        self._sweep()
        if budget is not None:
            budget.add_reclaimer(self._reclaim)

    # ---- images -----------------------------------------------------------------------------

    def add_image(
        self, image_id: str | None, upload: BinaryIO, filename: str | None, info: dict | None = None,
        provenance: str = "upload",
    ) -> StoredImage:  # fmt: skip
        """Keep an uploaded image under ``image_id`` (None: a new random id), replacing one of that id.

        Args:
            provenance: where the server got the file (``"upload"``; ``"dicomweb"`` only from
                :class:`~voxelprompt.server.pacs.PacsBridge`).

        Raises:
            InputError: a bad id, an unsupported format, or a file the reader refuses.
            TooLargeError: a header whose decoded volume exceeds the per-image limit.
        """
        image_id = check_id(image_id) if image_id is not None else uuid.uuid4().hex
        suffix = upload_suffix(filename)
        tmp, digest = self._receive(upload, suffix, self.root / "images")
        try:
            from voxelprompt.api import read_ct

            with self._decoding:
                volume = read_ct(tmp, policy=self.policy)  # the checks of `voxelprompt segment`, untrusted
        except InputError as err:
            tmp.unlink(missing_ok=True)
            raise type(err)(str(err).replace(str(tmp), f"upload {filename!r}")) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        name = f"{file_key(image_id)}-{secrets.token_hex(4)}{suffix}"  # a new file: the old one stays until the index moves on
        record = StoredImage(
            image_id=image_id, file=name, suffix=suffix, sha256=digest, shape=volume.shape,
            spacing=tuple(round(s, 6) for s in volume.spacing), added=time.time(), info=dict(info or {}),
            provenance=provenance,
        )  # fmt: skip
        with self._lock:
            old = self._images.get(image_id)
            os.replace(tmp, self.root / "images" / name)
            self._images[image_id] = record
            self._volumes.pop(image_id, None)
            gone = self._evict()
            self._save_index()
            for dropped in gone + ([old] if old is not None else []):
                self._drop_files(dropped)
            self._remember(image_id, volume.with_array(volume.array, source=f"image {image_id!r}"))
        return record

    def image(self, image_id: str) -> StoredImage:
        """The record of ``image_id``.

        Raises:
            NotFound: no such image.
        """
        with self._lock:
            record = self._images.get(image_id)
        if record is None:
            raise NotFound(f"unknown image {image_id!r}; upload it first (PUT /datastore/?image=ID)")
        return record

    def volume(self, image_id: str) -> Volume:
        """The decoded CT of ``image_id`` (kept for the next request).

        Raises:
            NotFound: no such image.
        """
        record = self.image(image_id)
        with self._lock:
            if image_id in self._volumes:
                self._volumes.move_to_end(image_id)
                return self._volumes[image_id]
        from voxelprompt.imageio import read_volume

        with self._decoding:
            volume = read_volume(self.root / "images" / record.file, policy=self.policy)
        volume = volume.with_array(volume.array, source=f"image {image_id!r}")
        with self._lock:
            self._remember(image_id, volume)
        return volume

    def image_path(self, image_id: str) -> Path:
        """The stored file of ``image_id`` (for downloads)."""
        return self.root / "images" / self.image(image_id).file

    def images_by_id(self) -> dict[str, StoredImage]:
        """Every image by id (a snapshot)."""
        with self._lock:
            return dict(self._images)

    def images(self) -> list[StoredImage]:
        """Every image, oldest first."""
        with self._lock:
            return sorted(self._images.values(), key=lambda r: r.added)

    def remove_image(self, image_id: str) -> None:
        """Delete an image and its labels.

        Raises:
            NotFound: no such image.
        """
        record = self.image(image_id)
        with self._lock:
            self._images.pop(image_id, None)
            self._forget_volume(image_id)
            self._save_index()
            self._drop_files(record)

    # ---- labels -----------------------------------------------------------------------------

    def add_label(self, image_id: str, tag: str, upload: BinaryIO, filename: str | None, info: dict | None = None) -> StoredLabel:
        """Keep a label map for ``image_id`` under ``tag``; it must lie on the image's grid (the same
        grid in another axis order is stored reoriented onto it).

        Raises:
            NotFound: no such image.
            InputError: a bad tag, format or file, or a label map on another grid.
        """
        record = self.image(image_id)
        check_tag(tag)
        suffix = upload_suffix(filename)
        tmp, _ = self._receive(upload, suffix, self.root / "labels")
        try:
            from voxelprompt.imageio import align_to_grid, read_labels, write_volume

            volume = self.volume(image_id)
            with self._decoding:
                uploaded = read_labels(tmp, policy=self.policy)
            aligned = align_to_grid(uploaded, volume)
            if aligned.array is not uploaded.array:  # another axis order: keep it on the image's grid
                write_volume(aligned, tmp)
        except InputError as err:
            tmp.unlink(missing_ok=True)
            raise type(err)(str(err).replace(str(tmp), f"label {filename!r}")) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        label = StoredLabel(
            tag=tag, file=f"{file_key(image_id)}.{tag}-{secrets.token_hex(4)}{suffix}", suffix=suffix, info=dict(info or {})
        )  # fmt: skip
        with self._lock:
            record = self.image(image_id)
            old = record.labels.get(tag)
            os.replace(tmp, self.root / "labels" / label.file)
            self._images[image_id] = replace(record, labels={**record.labels, tag: label})
            self._save_index()
            if old is not None:
                (self.root / "labels" / old.file).unlink(missing_ok=True)
        return label

    def label_path(self, image_id: str, tag: str) -> Path:
        """The file of the label saved for ``image_id`` under ``tag``.

        Raises:
            NotFound: no such image or tag.
        """
        label = self.image(image_id).labels.get(tag)
        if label is None:
            raise NotFound(f"image {image_id!r} has no label tagged {tag!r}")
        return self.root / "labels" / label.file

    # ---- MONAI Label sessions ---------------------------------------------------------------

    def add_session(self, upload: BinaryIO, filename: str | None) -> SessionRecord:
        """A new session holding one uploaded image."""
        self.expire_sessions()
        session_id = uuid.uuid4().hex
        self.add_image(f"session-{session_id}", upload, filename)
        now = time.time()
        record = SessionRecord(session_id, f"session-{session_id}", now, now + self.session_s)
        with self._lock:
            self._sessions[session_id] = record
        return record

    def session(self, session_id: str) -> SessionRecord:
        """A live session.

        Raises:
            NotFound: unknown or expired.
        """
        self.expire_sessions()
        with self._lock:
            record = self._sessions.get(session_id)
        if record is None:
            raise NotFound(f"unknown or expired session {session_id!r}")
        return record

    def remove_session(self, session_id: str) -> SessionRecord:
        """End a session and delete its image.

        Raises:
            NotFound: unknown or expired.
        """
        record = self.session(session_id)
        with self._lock:
            self._sessions.pop(session_id, None)
        self.remove_image(record.image_id)
        return record

    def expire_sessions(self) -> None:
        """Delete sessions past their expiry, with their images."""
        now = time.time()
        with self._lock:
            dead = [s for s in self._sessions.values() if s.expiry < now]
            for s in dead:
                self._sessions.pop(s.session_id, None)
        for s in dead:
            try:
                self.remove_image(s.image_id)
            except NotFound:
                pass

    # ---- internals --------------------------------------------------------------------------

    def _receive(self, upload: BinaryIO, suffix: str, folder: Path) -> tuple[Path, str]:
        """Copy an upload to a hidden file of ``folder`` (``.upload-*``, swept at start), hashing it."""
        tmp = folder / f".upload-{secrets.token_hex(8)}{suffix}"
        digest = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for chunk in iter(lambda: upload.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if tmp.stat().st_size == 0:
            tmp.unlink(missing_ok=True)
            raise InputError("the uploaded file is empty")
        return tmp, digest.hexdigest()

    def _sweep(self) -> None:
        """Delete what a killed server left: half-received uploads and files no index entry names."""
        kept = {r.file for r in self._images.values()} | {
            lab.file for r in self._images.values() for lab in r.labels.values()
        }
        for folder in (self.root / "images", self.root / "labels"):
            for path in folder.iterdir():
                if path.is_file() and path.name not in kept:
                    path.unlink(missing_ok=True)

    def _remember(self, image_id: str, volume: Volume) -> None:
        """Cache a decoded volume if the memory budget has room for it (after dropping older ones)."""
        if self.budget is not None:
            try:
                self.budget.set(("volume", image_id), volume.array.nbytes, f"cached image {image_id!r}")
            except VoxelPromptError:  # TooLargeError or OverBudget: serve it uncached
                self._forget_volume(image_id)
                return
        self._volumes[image_id] = volume
        self._volumes.move_to_end(image_id)
        while len(self._volumes) > self._cached:
            self._forget_volume(next(iter(self._volumes)))

    def _forget_volume(self, image_id: str) -> None:
        self._volumes.pop(image_id, None)
        if self.budget is not None:
            self.budget.release(("volume", image_id))

    def _reclaim(self, needed: int, keep: object) -> None:
        """The memory budget's reclaimer: drop cached volumes, least recently used first."""
        with self._lock:
            for image_id in list(self._volumes):
                if needed <= 0:
                    break
                if ("volume", image_id) != keep:
                    needed -= self._volumes[image_id].array.nbytes
                    self._forget_volume(image_id)

    def _evict(self) -> list[StoredImage]:
        """Drop the oldest images beyond ``max_images`` from the index; returns them (their files
        are deleted by the caller once the index is saved)."""
        gone = []
        while len(self._images) > self.max_images:
            oldest = min(self._images.values(), key=lambda r: r.added)
            self._images.pop(oldest.image_id)
            self._forget_volume(oldest.image_id)
            gone.append(oldest)
        return gone

    def _drop_files(self, record: StoredImage) -> None:
        (self.root / "images" / record.file).unlink(missing_ok=True)
        for label in record.labels.values():
            (self.root / "labels" / label.file).unlink(missing_ok=True)

    def _load_index(self) -> None:
        self._images.update(read_index(self.root))

    def _save_index(self) -> None:
        write_index(self.root, list(self._images.values()))

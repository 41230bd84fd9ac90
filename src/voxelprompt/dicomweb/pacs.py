"""Find, retrieve and store series on a PACS over DICOMweb.

* **QIDO-RS** (:func:`find_series`): series matching DICOM attribute filters, e.g.
  ``"Modality=CT&StudyDate=20240101-20241231&PatientID=123"``.
* **WADO-RS** (:func:`retrieve_series`): every instance of a series, in the transfer syntax the
  PACS stores (``application/dicom; transfer-syntax=*``: a PACS such as Debian's Orthanc cannot
  transcode JPEG 2000), written as files into a folder that
  :func:`voxelprompt.imageio.read_volume` then reads with the same checks as a local DICOM folder
  (missing slices, gantry tilt, several series).
* **STOW-RS** (:func:`store_instances`): a DICOM-SEG (or any instance) stored back.

:class:`PacsClient` is the one client batch (:mod:`voxelprompt.batch.pacs`) and the server
(:mod:`voxelprompt.server.pacs`) use: these calls on one connection, plus a folder of retrieved
series that each series enters once (optionally bounded in size, least recently used out first).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from voxelprompt.dicomweb.connection import DicomWebSource, PacsError, connect, pacs_errors

__all__ = ["PacsClient", "SeriesRef", "find_series", "retrieve_series", "store_instances", "parse_query", "is_uid"]

_UID = re.compile(r"^[0-9]+(\.[0-9]+)+$")
#: QIDO attributes a query may filter on (DICOM keywords).
QUERY_KEYS = (
    "PatientID", "PatientName", "StudyDate", "StudyInstanceUID", "AccessionNumber", "StudyDescription",
    "SeriesInstanceUID", "Modality", "SeriesDescription", "SeriesNumber",
)  # fmt: skip


@dataclass(frozen=True)
class SeriesRef:
    """One series a QIDO search found."""

    study_uid: str
    series_uid: str
    modality: str = ""
    description: str = ""
    patient_id: str = ""
    study_date: str = ""
    instances: int | None = None


def is_uid(text: str) -> bool:
    """Whether ``text`` looks like a DICOM UID (digits and dots, at most 64 characters)."""
    return len(text) <= 64 and bool(_UID.match(text))


def parse_query(query: str | Mapping[str, str]) -> dict[str, str]:
    """QIDO filters from ``"Modality=CT&StudyDate=2024..."`` or a mapping.

    Raises:
        PacsError: an attribute QIDO cannot filter on here, or an empty query.
    """
    pairs = dict(parse_qsl(query, keep_blank_values=False, strict_parsing=False)) if isinstance(query, str) else dict(query)
    unknown = sorted(k for k in pairs if k not in QUERY_KEYS)
    if unknown:
        raise PacsError(f"unknown query attribute {unknown[0]!r}; use {', '.join(QUERY_KEYS)}")
    if not pairs:
        raise PacsError("empty PACS query: give e.g. 'Modality=CT&StudyDate=20240101-20241231'")
    return pairs


def _value(item: Mapping[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value") or [""]
    value = values[0]
    return value.get("Alphabetic", "") if isinstance(value, dict) else str(value)


def find_series(client: Any, query: str | Mapping[str, str]) -> list[SeriesRef]:
    """Series matching ``query`` (QIDO-RS ``/series``), in the PACS's order.

    Raises:
        PacsError: a bad query, refused credentials, an unreachable PACS.
    """
    filters = parse_query(query)
    with pacs_errors(client.source, "searching for series"):
        found = client.search_for_series(search_filters=filters, fields=["NumberOfSeriesRelatedInstances", "SeriesDescription", "PatientID", "StudyDate"])
    refs = []
    for item in found:
        count = _value(item, "00201209")
        refs.append(SeriesRef(
            study_uid=_value(item, "0020000D"), series_uid=_value(item, "0020000E"), modality=_value(item, "00080060"),
            description=_value(item, "0008103E"), patient_id=_value(item, "00100020"), study_date=_value(item, "00080020"),
            instances=int(count) if count.isdigit() else None,
        ))  # fmt: skip
    return refs


def series_study(client: Any, series_uid: str) -> str:
    """The StudyInstanceUID of a series.

    Raises:
        PacsError: no such series on the PACS, or the PACS refused or is unreachable.
    """
    found = find_series(client, {"SeriesInstanceUID": series_uid})
    if not found:
        raise PacsError(f"series {series_uid} is not on the PACS at {client.source.url}")
    return found[0].study_uid


def retrieve_series(client: Any, series_uid: str, folder: str | os.PathLike, study_uid: str | None = None) -> Path:
    """Write every instance of a series into ``folder`` (created), as the PACS stores them.

    The folder appears complete or not at all: instances go to a hidden sibling first, which is
    renamed when the last one is written.

    Returns:
        ``folder``, holding ``<SOPInstanceUID>.dcm`` files.

    Raises:
        PacsError: no such series, no instances, refused credentials, an unreachable PACS.
    """
    from pydicom.filewriter import dcmwrite

    folder = Path(folder)
    study_uid = study_uid or series_study(client, series_uid)
    partial = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.partial")
    partial.mkdir(parents=True)
    try:
        with pacs_errors(client.source, f"retrieving series {series_uid}"):
            instances = client.retrieve_series(study_uid, series_uid, media_types=(("application/dicom", "*"),))
        if not instances:
            raise PacsError(f"series {series_uid} has no instances on the PACS at {client.source.url}")
        for ds in instances:
            dcmwrite(partial / f"{ds.SOPInstanceUID}.dcm", ds, enforce_file_format=True)
        os.replace(partial, folder)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return folder


def store_instances(client: Any, datasets: Sequence[Any]) -> None:
    """Store instances (e.g. a DICOM-SEG) with STOW-RS.

    Raises:
        PacsError: the PACS refused them or is unreachable.
    """
    with pacs_errors(client.source, "storing instances"):
        client.store_instances(list(datasets))


class PacsClient:
    """One PACS over DICOMweb with a folder of retrieved series.

    Args:
        source: the PACS (URL, credentials, timeouts).
        cache: folder holding one sub-folder per retrieved series (created when the first one is).
        max_cache_mb: size the retrieved series may take; beyond it the least recently used go
            (None: unbounded, every series stays).
        folder_name: the sub-folder name of a SeriesInstanceUID (default: the UID itself).

    Raises:
        MissingExtraError: dicomweb-client is not installed (the "pacs" extra).
    """

    def __init__(
        self,
        source: DicomWebSource,
        cache: str | os.PathLike,
        max_cache_mb: float | None = None,
        folder_name: Callable[[str], str] = str,
    ) -> None:
        self.source = source
        self.client = connect(source)
        self.cache = Path(cache)  # created with its first series
        self.max_bytes = None if max_cache_mb is None else int(max_cache_mb * 2**20)
        self.folder_name = folder_name
        self._lock = threading.Lock()
        self._series_locks: dict[str, threading.Lock] = {}

    def find(self, query: str | Mapping[str, str]) -> list[SeriesRef]:
        """Series matching ``query`` (see :func:`find_series`)."""
        return find_series(self.client, query)

    def study_of(self, series_uid: str) -> str:
        """The StudyInstanceUID of a series (see :func:`series_study`)."""
        return series_study(self.client, series_uid)

    def series_folder(self, series_uid: str, study_uid: str | None = None) -> Path:
        """The folder of a retrieved series, retrieved now (WADO-RS) when the cache lacks it.

        Two threads asking for one series retrieve it once; with ``max_cache_mb`` the least
        recently used other series are removed once it is in.

        Raises:
            PacsError: no such series, refused credentials, an unreachable PACS.
        """
        folder = self.cache / self.folder_name(series_uid)
        with self._lock:
            lock = self._series_locks.setdefault(series_uid, threading.Lock())
        with lock:
            if not folder.is_dir():
                self.cache.mkdir(parents=True, exist_ok=True)
                retrieve_series(self.client, series_uid, folder, study_uid)
                if self.max_bytes is not None:
                    self._trim(keep=folder)
            folder.touch()  # recently used
        return folder

    def store(self, datasets: Sequence[Any]) -> None:
        """Store instances (e.g. a DICOM-SEG) with STOW-RS (see :func:`store_instances`)."""
        store_instances(self.client, datasets)

    def _trim(self, keep: Path) -> None:
        folders = sorted((p for p in self.cache.iterdir() if p.is_dir() and p != keep), key=lambda p: p.stat().st_mtime)
        total = sum(_size(p) for p in folders) + _size(keep)
        while folders and total > self.max_bytes:
            oldest = folders.pop(0)
            total -= _size(oldest)
            shutil.rmtree(oldest, ignore_errors=True)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())

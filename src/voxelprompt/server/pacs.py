"""The server's PACS bridge (``voxelprompt serve --dicomweb URL``): an image id that is a
SeriesInstanceUID, as the OHIF plugin sends, is fetched from the PACS with WADO-RS, kept in a
size-bounded cache (least recently used series out first) and added to the image store under that
UID; results can come back as DICOM-SEG or RT-STRUCT referencing that series and be stored on the
PACS with STOW-RS.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voxelprompt.dicomweb import DicomWebSource, PacsClient, is_uid
from voxelprompt.server.datastore import ImageStore
from voxelprompt.types import Volume

__all__ = ["PacsBridge"]


class PacsBridge:
    """Series of one PACS, fetched on demand (through the one :class:`~voxelprompt.dicomweb.PacsClient`).

    Args:
        source: the PACS (URL, credentials, timeouts).
        cache: folder of retrieved series (one sub-folder per series).
        max_cache_mb: retrieved series kept on disk; beyond it the least recently used go.
    """

    def __init__(self, source: DicomWebSource, cache: Path, max_cache_mb: float = 4096) -> None:
        self.pacs = PacsClient(source, cache, max_cache_mb, folder_name=_hashed)
        self.source = source

    def holds(self, image_id: str) -> bool:
        """Whether ``image_id`` can name a series of this PACS (it looks like a UID)."""
        return is_uid(image_id)

    def series_folder(self, series_uid: str) -> Path:
        """The cached series (retrieved now when missing; see :meth:`PacsClient.series_folder`).

        Raises:
            PacsError: no such series, refused credentials, an unreachable PACS.
        """
        return self.pacs.series_folder(series_uid)

    def fetch_into(self, store: ImageStore, series_uid: str) -> None:
        """Retrieve a series and add it to ``store`` under its UID (as NIfTI, on the reader's grid)."""
        from voxelprompt.imageio import read_volume, write_volume

        volume = read_volume(self.series_folder(series_uid))
        with tempfile.TemporaryDirectory(prefix="voxelprompt-pacs-") as tmp:
            path = write_volume(volume, Path(tmp) / "series.nii.gz")
            with open(path, "rb") as handle:
                store.add_image(series_uid, handle, path.name, {"SeriesInstanceUID": series_uid}, provenance="dicomweb")

    def dicom_seg(self, labels: Volume, series_uid: str, label_names: Mapping[str, int], store: bool = False) -> tuple[bytes, dict[str, Any]]:
        """The result as a DICOM-SEG of the series (bytes), stored on the PACS when ``store``.

        Raises:
            InputError: a label map off the series grid (e.g. a tilted series), no structure.
            PacsError: the PACS refused the SEG.
        """
        from voxelprompt.imageio import write_dicom_seg

        return self._derived(write_dicom_seg, labels, series_uid, label_names, store)

    def rtstruct(self, labels: Volume, series_uid: str, label_names: Mapping[str, int], store: bool = False, demo_mark: str | None = None) -> tuple[bytes, dict[str, Any]]:
        """The result as an RT-STRUCT of the series (bytes), stored on the PACS when ``store``.

        Raises:
            InputError: a label map off the series grid (e.g. a tilted series), no structure.
            PacsError: the PACS refused the structure set.
        """
        from voxelprompt.imageio.rtstruct import write_rtstruct

        return self._derived(write_rtstruct, labels, series_uid, label_names, store, demo_mark=demo_mark)

    def _derived(self, write, labels: Volume, series_uid: str, label_names: Mapping[str, int], store: bool, **options: Any) -> tuple[bytes, dict[str, Any]]:
        """Write a derived object of the series with ``write`` (a DICOM-SEG or RT-STRUCT writer), read it back, store it."""
        import pydicom

        folder = self.series_folder(series_uid)
        names = {value: name for name, value in label_names.items()}
        with tempfile.TemporaryDirectory(prefix="voxelprompt-derived-") as tmp:
            written = write(labels, folder, Path(tmp) / "derived.dcm", names, **options)
            data = written.path.read_bytes()
            if store:
                self.pacs.store([pydicom.dcmread(written.path)])
        return data, {"series_uid": written.series_uid, "sop_instance_uid": written.instance_uid, "stored": store}


def _hashed(series_uid: str) -> str:
    """The cache folder name of a series: 32 hex digits of its UID's sha256."""
    return hashlib.sha256(series_uid.encode()).hexdigest()[:32]

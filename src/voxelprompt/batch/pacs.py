"""A cohort on a PACS: ``voxelprompt batch dicomweb+http://HOST/dicom-web --query "Modality=CT"``.

The coordinator searches the PACS (QIDO-RS) or takes the series UIDs given, retrieves each series
once (WADO-RS) into ``OUT_DIR/.pacs/series/<SeriesInstanceUID>/`` and hands them to the run as
DICOM cases whose case id is the SeriesInstanceUID, so the resume manifest is keyed by series UID
and by the retrieved files' content hash, as for local folders. With ``store_dicom_seg`` every
finished case's DICOM-SEG (output kind ``dicom-seg``), with ``store_rtstruct`` its RT-STRUCT (kind
``rtstruct``), is stored back on the PACS with STOW-RS, under the source series' study; the
instances already stored are remembered in ``OUT_DIR/.pacs/stored.json``, so a rerun stores only
the new ones.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.batch.cases import cases_from_folders
from voxelprompt.datasets import Case
from voxelprompt.dicomweb import DicomWebSource, PacsClient, PacsError, is_uid, parse_source
from voxelprompt.dicomweb.connection import SCHEME_PREFIX

__all__ = ["PacsCohort", "is_pacs_input", "pacs_cohort", "pacs_cases", "store_segmentations"]

logger = logging.getLogger(__name__)

PACS_FOLDER = ".pacs"


@dataclass(frozen=True)
class PacsCohort:
    """The series of a PACS to segment.

    Args:
        source: the PACS (URL, credentials, timeouts).
        query: QIDO filters (``"Modality=CT&StudyDate=20240101-20241231"``); or ``series_uids``.
        store_dicom_seg: store each case's DICOM-SEG back on the PACS.
        store_rtstruct: store each case's RT-STRUCT back on the PACS.
    """

    source: DicomWebSource
    query: str | None = None
    series_uids: tuple[str, ...] = ()
    store_dicom_seg: bool = False
    store_rtstruct: bool = False

    def settings(self) -> dict:
        """What the run manifest records of the source (never credentials)."""
        return {"pacs": self.source.url, "query": self.query, "series_uids": list(self.series_uids)}


def is_pacs_input(text: str | os.PathLike) -> bool:
    """Whether an INPUT names a PACS (``dicomweb+http://...``)."""
    return str(text).startswith(SCHEME_PREFIX)


def pacs_cohort(
    url: str,
    query: str | None,
    series_uids: Sequence[str] = (),
    store_dicom_seg: bool = False,
    credentials: str | os.PathLike | None = None,
    store_rtstruct: bool = False,
) -> PacsCohort:
    """A :class:`PacsCohort` from the command line's values.

    Raises:
        MissingExtraError: dicomweb-client is not installed (the "pacs" extra).
        PacsError: a bad URL or credentials file, both or neither of a query and series UIDs, or
            a malformed UID.
    """
    from voxelprompt.dicomweb import parse_query
    from voxelprompt.extras import require

    require("pacs", "a PACS input (dicomweb+http://...)")
    if (query is None) == (not series_uids):
        raise PacsError("a PACS input needs --query FILTERS or --series-uids UID,... (one of them)")
    if query is not None:
        parse_query(query)  # checked before anything connects
    bad = [u for u in series_uids if not is_uid(u)]
    if bad:
        raise PacsError(f"not a DICOM UID: {bad[0]!r}")
    return PacsCohort(parse_source(url, credentials), query, tuple(series_uids), store_dicom_seg, store_rtstruct)


def pacs_cases(cohort: PacsCohort, out_dir: Path) -> list[Case]:
    """Retrieve the cohort's series (those not cached yet) and return them as DICOM cases.

    Raises:
        PacsError: the query matched nothing, a series is missing, refused credentials, an
            unreachable PACS.
    """
    client = PacsClient(cohort.source, out_dir / PACS_FOLDER / "series")
    if cohort.query is not None:
        found = [(s.study_uid, s.series_uid) for s in client.find(cohort.query)]
        if not found:
            raise PacsError(f"the PACS query {cohort.query!r} matched no series at {cohort.source.url}")
    else:
        found = [(client.study_of(uid), uid) for uid in cohort.series_uids]
    folders = {}
    for study_uid, series_uid in found:
        if not (client.cache / series_uid).is_dir():
            logger.info("retrieving series %s from %s", series_uid, cohort.source.url)
        folders[series_uid] = client.series_folder(series_uid, study_uid)
    return cases_from_folders(folders)


def store_segmentations(cohort: PacsCohort, out_dir: Path, case_ids: Sequence[str], seg_name: str) -> list[str]:
    """Store the file ``seg_name`` (a DICOM-SEG or RT-STRUCT) of each finished case not stored
    before; their SOPInstanceUIDs.

    Raises:
        PacsError: the PACS refused a SEG or is unreachable (those stored so far stay recorded).
    """
    import pydicom

    from voxelprompt.imageio import write_text

    record = out_dir / PACS_FOLDER / "stored.json"
    stored = set(json.loads(record.read_text())) if record.exists() else set()
    client = PacsClient(cohort.source, out_dir / PACS_FOLDER / "series")
    new = []
    for case_id in case_ids:
        path = out_dir / case_id / seg_name
        if not path.exists():
            continue
        seg = pydicom.dcmread(path)
        if seg.SOPInstanceUID in stored:
            continue
        client.store([seg])
        stored.add(seg.SOPInstanceUID)
        new.append(seg.SOPInstanceUID)
        write_text(record, json.dumps(sorted(stored), indent=1))
    return new

"""DICOMweb: read studies from and write results to a PACS (QIDO-RS, WADO-RS, STOW-RS), on
``dicomweb-client``. See ``README.md`` in this folder."""

from voxelprompt.dicomweb.connection import DicomWebSource, PacsError, connect, parse_source
from voxelprompt.dicomweb.pacs import PacsClient, SeriesRef, find_series, is_uid, parse_query, retrieve_series, series_study, store_instances

__all__ = [
    "DicomWebSource", "PacsClient", "PacsError", "SeriesRef", "connect", "find_series", "is_uid", "parse_query",
    "parse_source", "retrieve_series", "series_study", "store_instances",
]  # fmt: skip

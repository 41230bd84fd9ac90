"""DICOM writers that reference the source series: DICOM-SEG (highdicom,
:func:`voxelprompt.imageio.dicom_seg.write_dicom_seg`) and RT-STRUCT
(:func:`voxelprompt.imageio.rtstruct.write_rtstruct`), for PACS viewers and planning systems.

With a context's :class:`~voxelprompt.outputs.context.Provenance` (a batch run) UIDs derive from
the input and settings hashes and dates are the run's creation time, so reruns write the same
bytes, and UIDs the source lacks are listed in ``<stem>.derived_uids.json`` beside the file;
without one they derive from the content, as ``voxelprompt segment`` writes them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from voxelprompt.errors import PromptError
from voxelprompt.outputs.context import OutputContext
from voxelprompt.types import Volume

__all__ = ["write_dicom_seg_output", "write_rtstruct_output", "check_rtstruct_grid"]

logger = logging.getLogger(__name__)


def write_dicom_seg_output(context: OutputContext, path: Path) -> list[Path]:
    """The labels as a DICOM-SEG of the context's source series.

    Raises:
        PromptError: nothing was segmented (a DICOM-SEG needs at least one segment).
        InputError: a source that is no DICOM series, or labels off its grid.
    """
    from voxelprompt.imageio.dicom_seg import write_dicom_seg

    options = _reproducible(context, "DICOM-SEG", "segment", "")
    if context.demo_mark:
        options["series_description"] = f"voxelprompt {context.demo_mark}"[:64]
    if context.model and context.provenance is None:
        options["algorithm_name"] = context.model
    written = write_dicom_seg(context.labels, context.source, path, context.label_names, **options)
    return [written.path, *_derived_uids(context, written.derived_source_uids, path, "a DICOM-SEG")]


def write_rtstruct_output(context: OutputContext, path: Path) -> list[Path]:
    """The labels as an RT Structure Set of the context's source series, marked when the demo
    model made them.

    Raises:
        PromptError: nothing was segmented (a structure set needs at least one ROI).
        InputError: a source that is no DICOM series, a tilted series, or labels off its grid.
    """
    from voxelprompt.imageio.rtstruct import write_rtstruct

    options = _reproducible(context, "RT-STRUCT", "structure", " rtstruct")
    if context.model and context.provenance is None:
        options["algorithm_name"] = context.model
    written = write_rtstruct(context.labels, context.source, path, context.label_names, **options, demo_mark=context.demo_mark)
    return [written.path, *_derived_uids(context, written.derived_source_uids, path, "an RT-STRUCT")]


def check_rtstruct_grid(volume: Volume, source: str | Path, series_uid: str | None) -> None:
    """Refuse, before any model work, an image whose labels cannot be an RT-STRUCT of ``source``
    (a gantry-tilted series, another grid).

    Raises:
        InputError: as :func:`voxelprompt.imageio.rtstruct.check_rtstruct_source`.
    """
    from voxelprompt.imageio.rtstruct import check_rtstruct_source

    check_rtstruct_source(volume, source, source_series_uid=series_uid)


def _reproducible(context: OutputContext, kind: str, part: str, seed: str) -> dict:
    """The keyword arguments of a DICOM writer: the source series read and derived missing
    source UIDs; with provenance also UIDs from its hashes (``seed`` tells the kinds apart) and
    its creation time as the content date.

    Raises:
        PromptError: nothing was segmented (``kind`` needs at least one ``part``).
    """
    from datetime import datetime

    from voxelprompt.imageio.dicom_source import derive_uid

    if not any(int(v) for v in context.label_names):
        raise PromptError(f"nothing segmented, so no {kind} (it needs at least one {part})")
    options = {"source_series_uid": context.series_uid, "missing_uids": "derive"}
    if context.provenance is not None:
        p = context.provenance
        uid_seed = (p.tool + seed, p.input_sha256, p.settings_sha256)
        options.update(
            series_uid=derive_uid(*uid_seed, "series"), instance_uid=derive_uid(*uid_seed, "instance"),
            content_datetime=datetime.strptime(p.created, "%Y-%m-%dT%H:%M:%SZ"),
        )  # fmt: skip
    return options


def _derived_uids(context: OutputContext, derived: Sequence, path: Path, kind: str) -> list[Path]:
    """Say which UIDs the source lacked: with provenance recorded in ``<stem>.derived_uids.json``
    (the paths written), else a note on the log (a single run); ``kind``: "an RT-STRUCT"."""
    if not derived:
        return []
    if context.provenance is None:
        logger.warning(
            "note: %s lacks UIDs %s references (%d derived from the files' content); a PACS or planning system "
            "matches it only to a copy of the series carrying them", context.source, kind, len(derived),
        )  # fmt: skip
        return []
    stem = path.name[: -len(".dcm")] if path.name.lower().endswith(".dcm") else path.name
    record = path.with_name(f"{stem}.derived_uids.json")
    record.write_text(json.dumps([dataclasses.asdict(d) for d in derived], indent=1) + "\n", encoding="utf-8")
    return [record]

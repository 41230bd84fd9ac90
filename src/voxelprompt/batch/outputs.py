"""What a cohort run writes per case: one small writer per output kind, and the atomic commit of a
case's folder.

A case's files are written into a hidden staging folder (``OUT_DIR/.partial/``) and the folder is
renamed to ``OUT_DIR/<case_id>`` only when every file is complete, so a case folder is either
absent or whole. ``label_names.json`` (label value -> structure name) is always written beside
the label map. Each kind is one small function here over a writer of :mod:`voxelprompt.imageio`
or :mod:`voxelprompt.statistics`, registered in :data:`OUTPUT_KINDS`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.errors import PromptError
from voxelprompt.imageio.label_names import write_label_names
from voxelprompt.types import Volume

__all__ = [
    "CaseOutput",
    "OutputKind",
    "OUTPUT_KINDS",
    "LABEL_NAMES_FILE",
    "STATISTICS_FILE",
    "check_output_kinds",
    "kinds_unavailable",
    "write_case_outputs",
    "staging_root",
    "clean_leftovers",
    "remove_empty_staging",
]

#: Folder under OUT_DIR where cases are assembled; anything in it is a leftover of a killed run.
STAGING = ".partial"
LABEL_NAMES_FILE = "label_names.json"
DICOM_SEG_FILE = "segmentation.dcm"
RTSTRUCT_FILE = "rtstruct.dcm"
#: A case's statistics table; the coordinator joins them into ``OUT_DIR/statistics.csv``.
STATISTICS_FILE = "statistics.csv"
_TRASH_PREFIX = ".replaced-"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaseOutput:
    """Everything an output writer may need for one case.

    Args:
        case_id: the case's id.
        image: the CT as read, (I, J, K) in on-disk order, voxel -> RAS+ mm affine, HU.
        labels: the merged label map on the image's exact grid.
        label_names: label value -> structure name, for the values ``labels`` holds.
        source: the input path (a file or a DICOM series folder).
        series_uid: the DICOM series read (None: a file or the folder's only series).
        input_sha256: sha256 of the input's bytes.
        settings_sha256: sha256 of the run's settings (tasks, model hashes, options).
        created: the run's creation time, UTC ISO 8601 (for outputs that carry a date).
        demo_model: a task ran the shipped demo model: pictures, statistics, DICOM-SEG and RT-STRUCT say so.
    """

    case_id: str
    image: Volume
    labels: Volume
    label_names: Mapping[int, str]
    source: str
    series_uid: str | None
    input_sha256: str
    settings_sha256: str
    created: str
    demo_model: bool = False

    @property
    def demo_mark(self) -> str | None:
        """The demo model's mark (:data:`~voxelprompt.families.vista3d.inference.default_model.DEMO_MARK`), or None."""
        from voxelprompt.families.vista3d.inference.default_model import DEMO_MARK

        return DEMO_MARK if self.demo_model else None


#: A writer puts its files into the given (staging) folder and returns their names.
Writer = Callable[[CaseOutput, Path], list[str]]


def _label_map(suffix: str) -> Writer:
    def write(out: CaseOutput, folder: Path) -> list[str]:
        from voxelprompt.imageio import write_volume

        name = f"labels{suffix}"
        write_volume(out.labels, folder / name)
        return [name]

    return write


def _preview(out: CaseOutput, folder: Path) -> list[str]:
    """An axial/coronal/sagittal PNG overlay with a legend (:func:`voxelprompt.visualize.overlay_file`)."""
    from voxelprompt.visualize import overlay_file

    title = out.case_id + (f" - {out.demo_mark}" if out.demo_mark else "")
    overlay_file(out.image, out.labels, folder / "preview.png", names=dict(out.label_names), title=title)
    return ["preview.png"]


def _slicer_seg(out: CaseOutput, folder: Path) -> list[str]:
    """A 3D Slicer segmentation with segment names, colours and terminology (slicerio)."""
    from voxelprompt.imageio.slicer_seg import write_slicer_seg

    write_slicer_seg(out.labels, folder / "labels.seg.nrrd", out.label_names)
    return ["labels.seg.nrrd"]


def _statistics(out: CaseOutput, folder: Path) -> list[str]:
    """Per-structure statistics (ml, voxels, HU, bounding boxes, components) as CSV and JSON; the
    coordinator joins the CSVs into ``OUT_DIR/statistics.csv``."""
    from voxelprompt.statistics import structure_statistics, write_statistics_csv, write_statistics_json

    records = structure_statistics(out.labels, out.image, out.label_names)
    write_statistics_csv(records, folder / STATISTICS_FILE)
    write_statistics_json(records, folder / "statistics.json", case=out.case_id, warning=out.demo_mark)
    return [STATISTICS_FILE, "statistics.json"]


def _dicom_seg(out: CaseOutput, folder: Path) -> list[str]:
    """DICOM-SEG (highdicom) referencing the source series (the run gives this kind to DICOM cases
    only, see :data:`OUTPUT_KINDS`). Its UIDs derive from the input and settings hashes and its
    dates are the run's creation time, so reruns write the same bytes; UIDs the source lacks are
    derived from its content and listed in ``segmentation.derived_uids.json``.

    Raises:
        PromptError: nothing was segmented (a DICOM-SEG needs at least one segment).
    """
    from voxelprompt.imageio.dicom_seg import write_dicom_seg

    options = _derived_object_options(out, "DICOM-SEG", "segment", ("voxelprompt batch",))
    written = write_dicom_seg(
        out.labels, out.source, folder / DICOM_SEG_FILE, out.label_names, **options,
        **({"series_description": f"voxelprompt {out.demo_mark}"[:64]} if out.demo_mark else {}),
    )  # fmt: skip
    return [DICOM_SEG_FILE, *_derived_uids(written.derived_source_uids, folder / "segmentation.derived_uids.json")]


def _rtstruct(out: CaseOutput, folder: Path) -> list[str]:
    """RT-STRUCT (:func:`voxelprompt.imageio.rtstruct.write_rtstruct`) of the source series, for
    planning systems (DICOM cases only). Reproducible as the DICOM-SEG is; UIDs the source lacks
    are derived and listed in ``rtstruct.derived_uids.json``.

    Raises:
        PromptError: nothing was segmented (a structure set needs at least one ROI).
    """
    from voxelprompt.imageio.rtstruct import write_rtstruct

    options = _derived_object_options(out, "RT-STRUCT", "structure", ("voxelprompt batch rtstruct",))
    written = write_rtstruct(out.labels, out.source, folder / RTSTRUCT_FILE, out.label_names, **options, demo_mark=out.demo_mark)
    return [RTSTRUCT_FILE, *_derived_uids(written.derived_source_uids, folder / "rtstruct.derived_uids.json")]


def _derived_object_options(out: CaseOutput, kind: str, part: str, seed: tuple[str, ...]) -> dict:
    """What makes a case's DICOM object reproducible: UIDs from the input and settings hashes
    (``seed`` tells the kinds apart), dates the run's creation time, the source series read, and
    the source's missing UIDs derived from its content.

    Raises:
        PromptError: nothing was segmented (``kind`` needs at least one ``part``).
    """
    from datetime import datetime

    from voxelprompt.imageio.dicom_source import derive_uid

    if not any(int(v) for v in out.label_names):
        raise PromptError(f"nothing segmented, so no {kind} (it needs at least one {part})")
    seed = (*seed, out.input_sha256, out.settings_sha256)
    return {
        "series_uid": derive_uid(*seed, "series"), "instance_uid": derive_uid(*seed, "instance"),
        "content_datetime": datetime.strptime(out.created, "%Y-%m-%dT%H:%M:%SZ"), "source_series_uid": out.series_uid,
        "missing_uids": "derive",
    }  # fmt: skip


def _derived_uids(derived_uids: Sequence, path: Path) -> list[str]:
    """Record the UIDs a DICOM output derived for its source (none: nothing written); the names written."""
    if not derived_uids:
        return []
    derived = [dataclasses.asdict(d) for d in derived_uids]
    path.write_text(json.dumps(derived, indent=1) + "\n", encoding="utf-8")
    return [path.name]


@dataclass(frozen=True)
class OutputKind:
    """One ``--output-format`` kind: its writer and the input a case needs to have it.

    Args:
        write: puts the kind's files into the given (staging) folder and returns their names.
        needs_dicom_series: the output references its source DICOM series (DICOM-SEG, RT-STRUCT), so a case
            read from an image file cannot have it.
        extra: the pip extra its writer needs (:mod:`voxelprompt.extras`), and ``imports`` the
            modules of it that the writer imports; None: the core.
    """

    write: Writer
    needs_dicom_series: bool = False
    extra: str | None = None
    imports: tuple[str, ...] = ()

    def unavailable(self, is_dicom: bool) -> str | None:
        """Why a case cannot have this kind (``is_dicom``: its input is a DICOM series); None: it can."""
        if self.needs_dicom_series and not is_dicom:
            return "needs a DICOM source series"
        return None


#: Output kinds (``--output-format``) -> writer and what a case needs for it.
OUTPUT_KINDS: dict[str, OutputKind] = {
    "nifti": OutputKind(_label_map(".nii.gz")),
    "nrrd": OutputKind(_label_map(".nrrd")),
    "seg-nrrd": OutputKind(_slicer_seg),
    "dicom-seg": OutputKind(_dicom_seg, needs_dicom_series=True, extra="pacs", imports=("highdicom",)),
    "rtstruct": OutputKind(_rtstruct, needs_dicom_series=True),
    "stats": OutputKind(_statistics),
    "preview": OutputKind(_preview),
}


def check_output_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """The output kinds, checked, in the order given, without repeats.

    Raises:
        PromptError: an unknown kind, named.
        MissingExtraError: a kind whose writer's pip extra is not installed.
    """
    out: list[str] = []
    for kind in kinds:
        kind = kind.strip().lower()
        if not kind or kind in out:
            continue
        if kind not in OUTPUT_KINDS:
            raise PromptError(f"--output-format {kind!r}: unknown kind; choose from {', '.join(OUTPUT_KINDS)}")
        if OUTPUT_KINDS[kind].extra is not None:
            from voxelprompt.extras import require

            require(OUTPUT_KINDS[kind].extra, f"--output-format {kind}", OUTPUT_KINDS[kind].imports)
        out.append(kind)
    if not out:
        raise PromptError("--output-format: give at least one output kind")
    return tuple(out)


def kinds_unavailable(kinds: Sequence[str], is_dicom: bool) -> dict[str, str]:
    """The kinds of ``kinds`` (checked names) a case cannot have, each with why.

    Args:
        kinds: output kinds, as :func:`check_output_kinds` returns them.
        is_dicom: the case's input is a DICOM series (not an image file).

    Returns:
        kind -> reason (e.g. ``{"dicom-seg": "needs a DICOM source series"}``), in ``kinds`` order.
    """
    reasons = {kind: OUTPUT_KINDS[kind].unavailable(is_dicom) for kind in kinds}
    return {kind: reason for kind, reason in reasons.items() if reason is not None}


def staging_root(out_dir: Path) -> Path:
    return out_dir / STAGING


def write_case_outputs(out: CaseOutput, kinds: Sequence[str], out_dir: Path) -> list[str]:
    """Write a case's outputs and move its folder into place as one step.

    Returns:
        The file names in ``OUT_DIR/<case_id>``.

    Raises:
        Whatever a writer raises; the staging folder is removed then.
    """
    stage = staging_root(out_dir) / f"{out.case_id}.{secrets.token_hex(4)}"
    stage.mkdir(parents=True)
    try:
        names = [LABEL_NAMES_FILE]
        write_label_names(out.label_names, stage / LABEL_NAMES_FILE)
        for kind in kinds:
            names += OUTPUT_KINDS[kind].write(out, stage)
        _commit(stage, out_dir / out.case_id)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return names


def _commit(stage: Path, final: Path) -> None:
    """Put ``stage`` at ``final``: a rename; an existing folder is first renamed aside, then removed."""
    aside = None
    if final.exists():
        aside = final.with_name(f"{_TRASH_PREFIX}{final.name}.{secrets.token_hex(4)}")
        os.replace(final, aside)
    os.replace(stage, final)
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def clean_leftovers(out_dir: Path) -> int:
    """Remove what a killed run left: the staging folder and folders renamed aside. Returns how many."""
    count = 0
    stage = staging_root(out_dir)
    if stage.exists():
        count += sum(1 for _ in stage.iterdir())
        shutil.rmtree(stage, ignore_errors=True)
    for path in out_dir.glob(f"{_TRASH_PREFIX}*"):
        with contextlib.suppress(OSError):
            shutil.rmtree(path)
            count += 1
    for path in out_dir.glob(".*.tmp"):  # write_text's temporaries of the manifest and failures.csv
        with contextlib.suppress(OSError):
            path.unlink()
            count += 1
    return count


def remove_empty_staging(out_dir: Path) -> None:
    """Remove the staging folder when no case is being assembled in it (the end of a run)."""
    with contextlib.suppress(OSError):
        staging_root(out_dir).rmdir()

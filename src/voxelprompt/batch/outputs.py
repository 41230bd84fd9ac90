"""What a cohort run writes per case: the output kinds chosen from the output registry, and the
atomic commit of a case's folder.

A case's files are written into a hidden staging folder (``OUT_DIR/.partial/``) and the folder is
renamed to ``OUT_DIR/<case_id>`` only when every file is complete, so a case folder is either
absent or whole. ``label_names.json`` (label value -> structure name) is always written beside
the label map. The kinds are the output formats of :mod:`voxelprompt.outputs` (one registry for
``segment``, batch and the server); each writes its :attr:`~voxelprompt.outputs.OutputFormat.file_name`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.imageio.label_names import write_label_names
from voxelprompt.outputs import OUTPUT_FORMATS, OutputContext, Provenance, check_output_formats
from voxelprompt.outputs.builtin import DICOM_SEG, RTSTRUCT, STATS
from voxelprompt.types import Volume

__all__ = [
    "CaseOutput",
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
DICOM_SEG_FILE = DICOM_SEG.file_name
RTSTRUCT_FILE = RTSTRUCT.file_name
#: A case's statistics table; the coordinator joins them into ``OUT_DIR/statistics.csv``.
STATISTICS_FILE = STATS.file_name
#: What wrote a case's outputs: the seed of their derived DICOM UIDs.
TOOL = "voxelprompt batch"
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
        """The demo model's mark (:data:`~voxelprompt.inference.protocol.DEMO_MARK`), or None."""
        from voxelprompt.inference.protocol import DEMO_MARK

        return DEMO_MARK if self.demo_model else None

    def context(self) -> OutputContext:
        """What the output writers read (:class:`~voxelprompt.outputs.OutputContext`): reproducible,
        titled with the case id."""
        return OutputContext(
            labels=self.labels, label_names=self.label_names, image=self.image, source=self.source,
            series_uid=self.series_uid, demo_mark=self.demo_mark, title=self.case_id,
            provenance=Provenance(TOOL, self.input_sha256, self.settings_sha256, self.created),
        )  # fmt: skip


def check_output_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """The output kinds (names of :data:`~voxelprompt.outputs.OUTPUT_FORMATS`), checked, in the
    order given, without repeats.

    Raises:
        PromptError: an unknown kind, named; none given; two kinds writing the same file.
        MissingExtraError: a kind whose writer's pip extra is not installed.
    """
    return check_output_formats(kinds)


def kinds_unavailable(kinds: Sequence[str], is_dicom: bool) -> dict[str, str]:
    """The kinds of ``kinds`` (checked names) a case cannot have, each with why.

    Args:
        kinds: output kinds, as :func:`check_output_kinds` returns them.
        is_dicom: the case's input is a DICOM series (not an image file).

    Returns:
        kind -> reason (e.g. ``{"dicom-seg": "needs a DICOM source series"}``), in ``kinds`` order.
    """
    reasons = {kind: OUTPUT_FORMATS[kind].unavailable(dicom_series=is_dicom) for kind in kinds}
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
        context = out.context()
        for kind in kinds:
            fmt = OUTPUT_FORMATS[kind]
            names += [path.name for path in fmt.write(context, stage / fmt.file_name)]
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

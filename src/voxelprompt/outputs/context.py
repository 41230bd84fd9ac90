"""What an output writer is given: one :class:`OutputContext` per result.

Every front door fills the same record: ``voxelprompt segment`` (and :func:`voxelprompt.api.segment`)
for one result, the batch runner for one case, the server for one ``/infer`` reply. A writer reads
what its format declares it needs (:attr:`~voxelprompt.outputs.registry.OutputFormat.needs`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voxelprompt.types import Volume

__all__ = ["OutputContext", "Provenance"]


@dataclass(frozen=True)
class Provenance:
    """What makes an output reproducible byte for byte (a batch run): DICOM UIDs derived from the
    hashes, dates set to the run's creation time, derived source UIDs recorded beside the file.

    Args:
        tool: what wrote it, the seed of derived UIDs (``"voxelprompt batch"``).
        input_sha256: sha256 of the input's bytes.
        settings_sha256: sha256 of the run's settings (tasks, model hashes, options).
        created: the run's creation time, UTC ISO 8601 ``YYYY-MM-DDTHH:MM:SSZ``.
    """

    tool: str
    input_sha256: str
    settings_sha256: str
    created: str


@dataclass(frozen=True)
class OutputContext:
    """Everything an output writer may read about one result.

    Args:
        labels: the label map, (I, J, K) in the input's on-disk order with its voxel -> RAS+ mm
            affine, on the input's exact grid; integer values, 0 = background.
        label_names: label value -> structure name, for the non-zero values ``labels`` holds.
        image: the CT as read (same grid, HU); None where the front door has none.
        source: the input's path, a file or a DICOM series folder; None: an in-memory image.
        series_uid: the DICOM series read when ``source`` holds several.
        model: the model (family or served model entry) that made the labels, for the outputs
            that name their algorithm; None: the writer's default.
        demo_mark: the shipped demo model's mark (it made the labels); outputs that a person
            reads say so.
        title: a short name of the result (the case id, ``"ct.nii.gz: vista3d"``), for pictures
            and tables.
        clicks: input voxels (i, j, k) the user clicked, marked by pictures.
        focus: the input voxel (i, j, k) where pictured slices cross; None: the writer's choice.
        provenance: make the output reproducible (:class:`Provenance`); None: as a single run.
    """

    labels: Volume
    label_names: Mapping[int, str]
    image: Volume | None = None
    source: str | None = None
    series_uid: str | None = None
    model: str | None = None
    demo_mark: str | None = None
    title: str = ""
    clicks: Sequence[Sequence[float]] = field(default_factory=tuple)
    focus: Sequence[float] | None = None
    provenance: Provenance | None = None

    @property
    def dicom_series(self) -> bool:
        """``source`` is a folder (a DICOM series) that DICOM outputs can reference."""
        return self.source is not None and Path(self.source).is_dir()

"""The server's one inference API: loaded models, the image store, interactive sessions and the
compute lock. The web layers (MONAI Label routes, the viewer) only parse, call and serialise, as
SAM 2's demo backend does with its ``InferenceAPI``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from voxelprompt.api import NamedModel
from voxelprompt.errors import InputError, PromptError
from voxelprompt.server.compute import ComputeGate
from voxelprompt.server.datastore import ImageStore, NotFound, StoredImage
from voxelprompt.server.monailabel.tasks import InferPlan, LabelTask, class_name, tasks_for
from voxelprompt.server.sessions import SessionPool
from voxelprompt.types import OBJECT_ID, Segmentation, Volume

if TYPE_CHECKING:
    from voxelprompt.server.pacs import PacsBridge

__all__ = ["InferResult", "SegmentationService"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InferResult:
    """One request's answer.

    Args:
        labels: (I, J, K) label map on the image's exact grid, holding 0 and the values of
            ``label_names``.
        label_names: structure name -> value in ``labels``.
        session_reused: the image was already encoded for this model (a later click).
        seconds: ``{"wait": ..., "infer": ..., "total": ...}`` server-side times.
        notes: facts about how the prompts were answered (for the reply's params).
    """

    labels: Volume
    label_names: dict[str, int]
    session_reused: bool
    seconds: dict[str, float]
    notes: dict[str, Any] = field(default_factory=dict)


class SegmentationService:
    """Everything a request needs, shared by all clients of one server process.

    Args:
        models: the loaded models (each listed under its tasks, :func:`tasks_for`).
        store: uploaded images.
        sessions: interactive sessions by (model, image).
        gate: the compute lock every model call takes.
        pacs: where image ids that are SeriesInstanceUIDs are fetched from (``--dicomweb``).
    """

    def __init__(
        self,
        models: Sequence[NamedModel],
        store: ImageStore,
        sessions: SessionPool,
        gate: ComputeGate,
        pacs: PacsBridge | None = None,
    ) -> None:
        self.models = list(models)
        self.store = store
        self.sessions = sessions
        self.gate = gate
        self.pacs = pacs
        self.tasks: dict[str, LabelTask] = {t.name: t for m in self.models for t in tasks_for(m)}
        self.started = time.time()
        #: Finetuning from the viewer (:class:`~voxelprompt.server.training.TrainingService`); None: off.
        self.training: Any = None

    def task(self, name: str) -> LabelTask:
        """The task called ``name``.

        Raises:
            NotFound: no such model entry.
        """
        task = self.tasks.get(name)
        if task is None:
            raise NotFound(f"unknown model {name!r}; this server has {', '.join(self.tasks)}")
        return task

    def image(self, image_id: str) -> StoredImage:
        """The stored image ``image_id``, fetched from the PACS first when it is a series UID the
        store does not hold yet.

        Raises:
            NotFound: not stored (and no PACS, or not a UID).
            PacsError: the PACS does not have it, refuses or is unreachable.
        """
        try:
            return self.store.image(image_id)
        except NotFound:
            if self.pacs is None or not self.pacs.holds(image_id):
                raise
        self.pacs.fetch_into(self.store, image_id)
        return self.store.image(image_id)

    def upload(self, image_id: str | None, upload: BinaryIO, filename: str | None, info: Mapping[str, Any]) -> StoredImage:
        """Keep a client's image (see :meth:`ImageStore.add_image`); its sessions are closed when
        it replaces an image of other content.

        Raises:
            InputError: what the store refuses, or (with a PACS) an id that is a SeriesInstanceUID:
                those name the PACS's series, which an upload may not shadow.
        """
        if image_id is not None and self.pacs is not None and self.pacs.holds(image_id):
            raise InputError(
                f"image id {image_id[:80]!r} is a SeriesInstanceUID, which names a series of this server's PACS; "
                "upload under another id"
            )
        before = self.store.images_by_id().get(image_id) if image_id is not None else None
        record = self.store.add_image(image_id, upload, filename, dict(info))
        if before is not None and before.sha256 != record.sha256:
            self.sessions.drop_image(record.image_id)  # a replaced image's sessions are stale
        return record

    def dicom_seg(self, result: InferResult, image_id: str, store: bool) -> tuple[bytes, dict[str, Any]]:
        """A result as DICOM-SEG of its PACS series, stored on the PACS when ``store``.

        Raises:
            PromptError: the image did not come from the PACS (no source instances to reference).
        """
        record = self.store.image(image_id)
        if self.pacs is None or record.provenance != "dicomweb":  # the server's record, never the client's params
            raise PromptError("DICOM-SEG output needs an image fetched from the PACS (serve --dicomweb URL; image=SeriesInstanceUID)")
        return self.pacs.dicom_seg(result.labels, image_id, result.label_names, store=store)

    def rtstruct(self, result: InferResult, task_name: str, image_id: str, store: bool) -> tuple[bytes, dict[str, Any]]:
        """A result of model entry ``task_name`` as RT-STRUCT of its PACS series, stored on the PACS
        when ``store``; marked when the demo model made it.

        Raises:
            PromptError: the image did not come from the PACS (no source instances to reference).
        """
        from voxelprompt.families.vista3d.inference.default_model import DEMO_MARK

        record = self.store.image(image_id)
        if self.pacs is None or record.provenance != "dicomweb":
            raise PromptError("RT-STRUCT output needs an image fetched from the PACS (serve --dicomweb URL; image=SeriesInstanceUID)")
        demo = DEMO_MARK if self.task(task_name).model.segmenter.demo else None
        return self.pacs.rtstruct(result.labels, image_id, result.label_names, store=store, demo_mark=demo)

    def infer(self, task_name: str, image_id: str, params: Mapping[str, Any]) -> InferResult:
        """Run one request of a MONAI Label model entry on a stored image.

        Cheap checks (model, image, prompts against the image grid) run before the compute lock
        is taken; the session of this model on this image is opened on the first request and
        reused by later ones.

        Raises:
            NotFound: an unknown model or image.
            PromptError: bad or unanswerable prompts.
            Busy: the compute queue is full.
        """
        started = time.perf_counter()
        task = self.task(task_name)
        record = self.image(image_id)
        volume = self.store.volume(image_id)
        plan = task.plan(params, volume)
        queued = time.perf_counter()
        # An open session hears of this request now, so its background pre-encoding gives way
        # while the request waits for its turn (and finishes a window the request needs).
        known = self.sessions.peek(task.model.name, image_id, record.sha256)
        announce = getattr(known, "foreground", None)
        first = plan.steps[0][0] if plan.steps else None
        with announce(first) if announce is not None else contextlib.nullcontext(), self.gate.turn():
            running = time.perf_counter()
            session, reused = self.sessions.get(
                task.model.name, task.model.segmenter, image_id, record.sha256, lambda: volume,
                task.model.family.viewer_session,
            )  # fmt: skip
            results = [session.segment(prompts) for prompts, _ in plan.steps]
        done = time.perf_counter()
        labels, names = _combine(plan, results, volume, lambda c: class_name(task.model, c))
        notes = dict(plan.notes)
        notes["notes"] = [n for r in results for n in r.notes]
        seconds = {"wait": running - queued, "infer": done - running, "total": time.perf_counter() - started}
        logger.info("infer %s on %r: %.3f s (session %s)", task_name, image_id, seconds["total"], "reused" if reused else "new")
        return InferResult(volume.with_array(labels, source=f"result of {task_name}"), names, reused, seconds, notes)

    def close(self, timeout_s: float = 30.0) -> None:
        """Shut down: refuse later model work (503), let the running request finish (up to
        ``timeout_s``), then close every session, which stops and joins their background threads
        (a thread left inside torch when the interpreter exits aborts the process). A training
        run stops after its current step (its checkpoint resumes it)."""
        if self.training is not None:
            self.training.close()
        self.gate.close(timeout_s)
        self.sessions.close()

    def swap_model(self, model: NamedModel) -> None:
        """Serve ``model`` in place of the loaded model of the same name (a finetuned version):
        requests already running finish on the previous one, later ones get the new entries, and
        sessions of the previous weights are closed.

        Raises:
            NotFound: no loaded model has that name.
        """
        names = [m.name for m in self.models]
        if model.name not in names:
            raise NotFound(f"unknown model {model.name!r}; this server has {', '.join(names)}")
        self.models = [model if m.name == model.name else m for m in self.models]
        self.tasks = {t.name: t for m in self.models for t in tasks_for(m)}  # one assignment: readers see old or new
        self.sessions.drop_model(model.name)
        logger.info("model %s now serves %s", model.name, model.checkpoint)

    def forget_image(self, image_id: str) -> None:
        """Delete an image and close its sessions.

        Raises:
            NotFound: no such image.
        """
        self.store.remove_image(image_id)
        self.sessions.drop_image(image_id)


def _combine(
    plan: InferPlan, results: Sequence[Segmentation], volume: Volume, name: Callable[[int], str]
) -> tuple[np.ndarray, dict[str, int]]:
    """The reply's label map and names (``name``: class id -> name) from the steps' results (see :class:`InferPlan`)."""
    out = np.zeros(volume.shape, dtype=np.uint16)
    names: dict[str, int] = {}
    for (prompts, value), result in zip(plan.steps, results, strict=True):
        labels = np.asarray(result.labels.array)
        if plan.dense:
            lut = np.zeros(int(max(labels.max(initial=0), max(result.classes, default=0))) + 1, dtype=np.uint16)
            for dense, c in enumerate(result.classes, start=1):
                lut[c] = dense
                names[name(c)] = dense
            mapped = lut[labels]
        elif value is not None:
            mapped = np.where(labels != 0, value, 0).astype(np.uint16)
        else:
            mapped = labels.astype(np.uint16)
            if prompts.classes or prompts.everything or prompts.text:
                names.update({name(c): int(c) for c in result.classes})
            else:  # an object from clicks alone
                names["object"] = int(prompts.label_value or OBJECT_ID)
        free = out == 0
        out[free] = mapped[free]
    if plan.names:
        names = dict(plan.names)
    if plan.crop is not None:
        kept = np.zeros_like(out)
        kept[plan.crop] = out[plan.crop]
        out = kept
    return out, names

"""The server's one inference API: loaded models, the image store, interactive sessions and the
compute lock, in voxelprompt's own terms (:class:`~voxelprompt.types.Prompts` on a stored image or
a client's image, the family's capabilities, its class catalog). Protocol adapters (``monailabel/``,
``nninteractive/``, ``itksnap/``, the viewer) only parse, call and serialise, as SAM 2's demo
backend does with its ``InferenceAPI``; nothing here knows a protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from voxelprompt.api import NamedModel
from voxelprompt.errors import InputError, PromptError
from voxelprompt.request import check_request
from voxelprompt.server.classes import ModelClasses
from voxelprompt.server.compute import ComputeGate
from voxelprompt.server.datastore import ImageStore, NotFound, StoredImage
from voxelprompt.server.plan import InferPlan, combine
from voxelprompt.server.sessions import SessionPool
from voxelprompt.types import Prompts, Segmentation, Volume

if TYPE_CHECKING:
    from voxelprompt.server.budget import MemoryBudget
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
        models: the loaded models.
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
        self._taught: dict[str, dict[int, str]] = {}
        #: Bumped whenever the served models change (:meth:`swap_model`): adapters that derive
        #: tables from the models (MONAI Label's entries) rebuild them when it moves.
        self.generation = 0
        self.started = time.time()
        #: Finetuning from the viewer (:class:`~voxelprompt.server.training.TrainingService`); None: off.
        self.training: Any = None

    @property
    def budget(self) -> MemoryBudget | None:
        """The server's memory budget (``--memory-mb``), shared by sessions, leases and training."""
        return self.sessions.budget

    # ---- models ---------------------------------------------------------------------------------

    def model(self, name: str) -> NamedModel:
        """The served model called ``name``.

        Raises:
            NotFound: no such model.
        """
        for model in self.models:
            if model.name == name:
                return model
        raise NotFound(f"unknown model {name!r}; this server has {', '.join(m.name for m in self.models)}")

    def classes(self, model: NamedModel | str) -> ModelClasses:
        """Class names <-> ids of a served model (its family's catalog, the names it was taught)."""
        model = self.model(model) if isinstance(model, str) else model
        return ModelClasses(model, dict(self._taught.get(model.name, {})))

    def swap_model(self, model: NamedModel, taught: Mapping[int, str] | None = None) -> None:
        """Serve ``model`` in place of the loaded model of the same name (a finetuned version):
        requests already running finish on the previous one, later ones get the new one, and
        sessions of the previous weights are closed.

        Args:
            taught: class id -> name of the classes finetuning added to it (none: as loaded).

        Raises:
            NotFound: no loaded model has that name.
        """
        self.model(model.name)
        self.models = [model if m.name == model.name else m for m in self.models]  # one assignment
        self._taught[model.name] = {int(c): str(n) for c, n in (taught or {}).items()}
        self.generation += 1
        self.sessions.drop_model(model.name)
        logger.info("model %s now serves %s", model.name, model.checkpoint)

    # ---- images ---------------------------------------------------------------------------------

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

    def forget_image(self, image_id: str) -> None:
        """Delete an image and close its sessions.

        Raises:
            NotFound: no such image.
        """
        self.store.remove_image(image_id)
        self.sessions.drop_image(image_id)

    def end_session(self, session_id: str) -> Any:
        """End a store session (an image kept for one client) and close its interactive sessions;
        returns its record.

        Raises:
            NotFound: no such session.
        """
        record = self.store.remove_session(session_id)
        self.sessions.drop_image(record.image_id)
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

    def rtstruct(self, result: InferResult, model_name: str, image_id: str, store: bool) -> tuple[bytes, dict[str, Any]]:
        """A result of model ``model_name`` as RT-STRUCT of its PACS series, stored on the PACS
        when ``store``; marked when the demo model made it.

        Raises:
            PromptError: the image did not come from the PACS (no source instances to reference).
        """
        from voxelprompt.inference.protocol import DEMO_MARK

        record = self.store.image(image_id)
        if self.pacs is None or record.provenance != "dicomweb":
            raise PromptError("RT-STRUCT output needs an image fetched from the PACS (serve --dicomweb URL; image=SeriesInstanceUID)")
        demo = DEMO_MARK if self.model(model_name).segmenter.demo else None
        return self.pacs.rtstruct(result.labels, image_id, result.label_names, store=store, demo_mark=demo)

    # ---- requests on stored images --------------------------------------------------------------

    def check(self, model: NamedModel, prompts: Prompts, volume: Volume) -> Prompts:
        """The request's checks (:func:`voxelprompt.request.check_request`: the family's
        capabilities and rules, the image grid, the classes the weights learnt), once, before the
        compute lock; the checked prompts are what the session is given. Classes finetuning taught
        the model skip the family's rules (the released table's rules do not know them); the
        segmenter's own table answers for them.

        Raises:
            PromptError: prompts the family cannot answer, or that do not fit ``volume``.
        """
        return check_request(model.family, prompts, volume, model.segmenter.learnt, taught=self._taught.get(model.name, {}))

    def infer(self, model_name: str, image_id: str, plan: InferPlan | Callable[[Volume], InferPlan]) -> InferResult:
        """Run one request of model ``model_name`` on a stored image.

        Cheap checks (model, image, prompts against the image grid) run before the compute lock
        is taken; the session of this model on this image is opened on the first request and
        reused by later ones.

        Args:
            plan: the prompts and how their labels combine, or a function of the image that
                builds them (a protocol whose fields need the image's grid, e.g. a roi).

        Raises:
            NotFound: an unknown model or image.
            PromptError: bad or unanswerable prompts.
            Busy: the compute queue is full.
        """
        started = time.perf_counter()
        model = self.model(model_name)
        record = self.image(image_id)
        volume = self.store.volume(image_id)
        plan = plan(volume) if callable(plan) else plan
        checked = [self.check(model, prompts, volume) for prompts, _ in plan.steps]
        queued = time.perf_counter()
        # An open session hears of this request now, so its background pre-encoding gives way
        # while the request waits for its turn (and finishes a window the request needs).
        first = plan.steps[0][0] if plan.steps else None
        with self.sessions.announce(model.name, image_id, record.sha256, first), self.gate.turn():
            running = time.perf_counter()
            session, reused = self.sessions.get(
                model.name, model.segmenter, image_id, record.sha256, lambda: volume, model.family.viewer_session
            )
            results = [session.segment(prompts) for prompts in checked]
        done = time.perf_counter()
        labels, names = combine(plan, results, volume.shape, self.classes(model).name)
        notes = dict(plan.notes)
        notes["notes"] = [n for r in results for n in r.notes]
        seconds = {"wait": running - queued, "infer": done - running, "total": time.perf_counter() - started}
        logger.info("infer %s on %r: %.3f s (session %s)", model_name, image_id, seconds["total"], "reused" if reused else "new")
        return InferResult(volume.with_array(labels, source=f"result of {model_name}"), names, reused, seconds, notes)

    # ---- images a protocol's client holds (an nnInteractive lease, an ITK-SNAP session) ---------

    def open_interactive(self, model_name: str, key: str, sha256: str, volume: Callable[[], Volume]) -> None:
        """Pre-process and encode a client's image for model ``model_name`` now (one compute
        turn), so its first click costs only the click's part. ``key`` names the image in the
        session pool (unique per client); ``sha256`` its content.

        Raises:
            Busy: the compute queue is full. OverBudget, TooLargeError: no memory for the session.
        """
        model = self.model(model_name)
        with self.gate.turn():
            self.sessions.get(model.name, model.segmenter, key, sha256, volume, model.family.viewer_session)

    def segment_interactive(
        self, model_name: str, key: str, sha256: str, volume: Callable[[], Volume], prompts: Prompts
    ) -> Segmentation:
        """Segment a client's image (see :meth:`open_interactive`) with ``prompts``: checked once
        against the family and the image, then answered by the image's session in one turn.

        Raises:
            PromptError: prompts the family cannot answer or that do not fit the image.
            Busy: the compute queue is full.
        """
        model = self.model(model_name)
        image = volume()
        prompts = self.check(model, prompts, image)  # cheap checks before the compute lock
        with self.gate.turn():
            session, _ = self.sessions.get(model.name, model.segmenter, key, sha256, lambda: image, model.family.viewer_session)
            return session.segment(prompts)

    def close_interactive(self, key: str) -> None:
        """Close the sessions on a client's image (its client left or sent another image)."""
        self.sessions.drop_image(key)

    # ---- shutdown -------------------------------------------------------------------------------

    def close(self, timeout_s: float = 30.0) -> None:
        """Shut down: refuse later model work (503), let the running request finish (up to
        ``timeout_s``), then close every session, which stops and joins their background threads
        (a thread left inside torch when the interpreter exits aborts the process). A training
        run stops after its current step (its checkpoint resumes it)."""
        if self.training is not None:
            self.training.close()
        self.gate.close(timeout_s)
        self.sessions.close()

"""Training from the viewer: ``POST /train/{model}`` finetunes a served VISTA3D on the labels of
the datastore (:mod:`voxelprompt.families.vista3d.training.teach`) on a background thread, one step per
turn of the compute gate (:meth:`ComputeGate.background_turn`: a step runs only while no request
waits or runs, so a request waits at most one step), then keeps the result as the next version
beside the original and serves it in its place.

Versions: :mod:`voxelprompt.server.versions`. A killed server leaves an unfinished version
without a card; the next start with the same classes resumes it. The run's memory (weights, gradients, AdamW
moments, cached cases) is charged to the server's memory budget.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voxelprompt.errors import InputError, PromptError
from voxelprompt.server.datastore import NotFound
from voxelprompt.server.versions import ModelVersions, load_version, taught_names

if TYPE_CHECKING:
    from voxelprompt.api import NamedModel
    from voxelprompt.server.budget import MemoryBudget
    from voxelprompt.server.service import SegmentationService

__all__ = ["TrainRequest", "TrainingService"]

logger = logging.getLogger(__name__)

_RUNNING = ("SUBMITTED", "RUNNING")


@dataclass(frozen=True)
class TrainRequest:
    """``POST /train/{model}``'s params (MONAI Label's names, and voxelprompt's).

    Args:
        max_epochs: passes over the labelled images (one step per image each); ``steps`` wins.
        steps: optimisation steps.
        learning_rate: peak learning rate (``lr`` too).
        name: a name for the run (kept in the version's card).
        labels: structure names to train (default: every name the saved labels use).
        init_from: new structure name -> the known class its embedding row starts from.
        class_ids: structure name -> a class id the caller fixes.
        scope: ``auto`` (the automatic branch, paper Sec. 6) or ``embedding`` (new rows only:
            existing classes unchanged, slow to learn).
        label_tag: the saved labels to train on.
    """

    max_epochs: int = 20
    steps: int | None = None
    learning_rate: float = 2e-3
    name: str = "train_01"
    labels: tuple[str, ...] = ()
    init_from: dict[str, str] = field(default_factory=dict)
    class_ids: dict[str, int] = field(default_factory=dict)
    scope: str = "auto"
    label_tag: str = "final"

    @classmethod
    def parse(cls, params: dict[str, Any]) -> TrainRequest:
        """Read a request's params; unknown keys (3D Slicer sends its trainer config) are ignored.

        Raises:
            PromptError: a value of the wrong type or range, named.
        """
        def number(key: str, kind: type, low: float) -> Any:
            value = params.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)) or not value >= low:
                raise PromptError(f"{key} must be a number >= {low:g}, got {value!r}"[:200])
            return kind(value)

        def mapping(key: str, kind: type) -> dict:
            value = params.get(key) or {}
            if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, kind) and not isinstance(v, bool) for k, v in value.items()):
                raise PromptError(f"{key} must map structure names to {kind.__name__}s, got {value!r}"[:200])
            return dict(value)

        labels = params.get("labels") or ()
        if isinstance(labels, str):
            labels = [n.strip() for n in labels.split(",") if n.strip()]
        if not isinstance(labels, (list, tuple)) or not all(isinstance(n, str) for n in labels):
            raise PromptError(f"labels must be a list of structure names, got {labels!r}"[:200])
        name = params.get("name", cls.name)
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise PromptError(f"name must be a short string, got {name!r}"[:200])
        scope = params.get("scope", cls.scope)
        if scope not in ("embedding", "auto"):
            raise PromptError(f"scope must be embedding or auto, got {scope!r}"[:200])
        tag = params.get("label_tag", cls.label_tag)
        lr = number("learning_rate", float, 1e-9) or number("lr", float, 1e-9) or cls.learning_rate
        return cls(
            max_epochs=number("max_epochs", int, 1) or cls.max_epochs, steps=number("steps", int, 1), learning_rate=lr,
            name=name.strip(), labels=tuple(labels), init_from=mapping("init_from", str), class_ids=mapping("class_ids", int),
            scope=scope, label_tag=str(tag),
        )  # fmt: skip


class TrainingService:
    """The one training job of a server (MONAI Label runs one at a time), and model versions.

    Args:
        service: the server's inference API (models, store, compute gate).
        root: where versions are kept (``<datastore>/models``).
        budget: the server's memory budget (the run's memory is charged to it).
    """

    def __init__(self, service: SegmentationService, root: Path, budget: MemoryBudget | None = None) -> None:
        self.service = service
        self.root = Path(root)
        self.budget = budget
        self.originals = {m.name: m for m in service.models}
        self.tasks: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- MONAI Label's /train/ --------------------------------------------------------------

    def start(self, model: str, params: dict[str, Any]) -> dict[str, Any]:
        """Start finetuning ``model`` (a ``/info/`` entry or a loaded model's name) in the background.

        Cheap checks run first: the model, the params, the saved labels and their class ids.

        Raises:
            NotFound: unknown model.
            InputError: a model that cannot learn classes, no labels, unknown names, conflicting ids.
            Busy: a run is going on (HTTP 503 via :class:`~voxelprompt.server.compute.Busy`), or
                the memory budget has no room for it.
        """
        from voxelprompt.server.compute import Busy
        from voxelprompt.families.vista3d.training.teach import assign_classes, labelled_images

        named = self._model(model)
        request = TrainRequest.parse(params)
        images = labelled_images(self.service.store.root, request.label_tag)
        present = list(dict.fromkeys(n for item in images for n in item.names.values()))
        missing = [n for n in request.labels if n not in present]
        if missing:
            raise InputError(f"unknown label name {missing[0]!r}: the saved labels name {', '.join(map(repr, present))}")
        known, learnt = self.classes_of(named)
        n_rows = int(named.segmenter.spec.n_classes)
        plan = assign_classes(request.labels or present, known, learnt, n_rows, request.class_ids, request.init_from)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise Busy("a training run is going on; stop it first (DELETE /train/)", 30)
            self._charge(named, images)
            steps = request.steps or request.max_epochs * len(images)
            task = {
                "id": uuid.uuid4().hex, "status": "SUBMITTED", "request": {"model": named.name, **params},
                "start_ts": time.strftime("%Y-%m-%d %H:%M:%S"), "details": collections.deque(maxlen=20),
                "model": named.name, "step": 0, "steps": steps, "classes": plan.ids, "new_classes": list(plan.new),
            }  # fmt: skip
            self.tasks = (self.tasks + [task])[-20:]
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(task, named, request, plan, steps), name="voxelprompt-train", daemon=True)
            self._thread.start()
        return _public(task)

    def status(self, check_if_running: bool = False, all_tasks: bool = False) -> Any:
        """The latest task (MONAI Label's record: id, status, start_ts, end_ts, details), all of them,
        or with ``check_if_running`` the running one.

        Raises:
            NotFound: no task (or, with ``check_if_running``, none running): HTTP 404 as MONAI Label.
        """
        running = [t for t in self.tasks if t["status"] in _RUNNING]
        if check_if_running:
            if not running:
                raise NotFound("no training task is running")
            return _public(running[-1])
        if not self.tasks:
            raise NotFound("no training task found")
        return [_public(t) for t in self.tasks] if all_tasks else _public(self.tasks[-1])

    def stop(self, timeout_s: float = 60.0) -> dict[str, Any] | None:
        """Stop the running task after its current step (its checkpoint resumes it); None when none runs."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return None
        self._stop.set()
        thread.join(timeout_s)
        return _public(self.tasks[-1])

    def train_stats(self) -> dict[str, Any]:
        """``/info/``'s ``train_stats`` (3D Slicer's progress bar reads ``epoch``/``total_epochs``)."""
        out = {}
        for t in self.tasks:
            out[t["model"]] = {
                "epoch": t["step"], "total_epochs": t["steps"], "status": t["status"], "best_metric": t.get("loss"),
                **({"total_time": t["seconds"]} if t["status"] not in _RUNNING and "seconds" in t else {}),
            }  # fmt: skip
        return out

    def trainers(self) -> dict[str, Any]:
        """``/info/``'s ``trainers``: the models that can learn, with the params 3D Slicer shows."""
        config = {"max_epochs": TrainRequest.max_epochs, "learning_rate": TrainRequest.learning_rate, "name": TrainRequest.name, "scope": ["auto", "embedding"]}
        return {m.name: {"description": f"few-shot finetuning of {m.name} on the datastore's labels", "config": config}
                for m in self.service.models if m.family.capabilities.teach}  # fmt: skip

    def close(self) -> None:
        self.stop(timeout_s=30.0)

    # ---- versions ---------------------------------------------------------------------------

    def versions(self, model: str) -> dict[str, Any]:
        """The versions of ``model``: ``{"active": N, "versions": {N: card}}`` (0: as loaded)."""
        versions = ModelVersions(self.root / self._model(model).name)
        return {"active": versions.active(), "versions": {0: {"version": 0, "learnt": {}}, **versions.finished()}}

    def restore(self, model: str, version: int) -> dict[str, Any]:
        """Serve version ``version`` of ``model`` again (0: the model as loaded).

        Raises:
            NotFound: unknown model or version. Busy: a run is going on.
        """
        from voxelprompt.server.compute import Busy

        named = self._model(model)
        if self._thread is not None and self._thread.is_alive():
            raise Busy("a training run is going on; stop it first (DELETE /train/)", 30)
        versions = ModelVersions(self.root / named.name)
        cards = versions.finished()
        if version != 0 and version not in cards:
            raise NotFound(f"model {named.name!r} has no version {version}; it has 0{''.join(f', {v}' for v in cards)}")
        card = cards.get(version)
        self.service.swap_model(load_version(self.originals[named.name], self.root / named.name, card), taught_names(card))
        versions.activate(version)
        return self.versions(named.name)

    def reopen(self) -> None:
        """Serve each model's active version (a restarted server keeps what it learnt)."""
        for name in list(self.originals):
            versions = ModelVersions(self.root / name)
            card = versions.finished().get(versions.active())
            if card is not None:
                self.service.swap_model(load_version(self.originals[name], self.root / name, card), taught_names(card))

    # ---- internals --------------------------------------------------------------------------

    def _model(self, name: str) -> NamedModel:
        loaded = {m.name: m for m in self.service.models}
        named = loaded.get(name)  # the MONAI Label routes give a model's name for its entries' names
        if named is None:
            raise NotFound(f"unknown model {name!r}; this server has {', '.join(loaded)}")
        if not named.family.capabilities.teach:
            raise InputError(f"model {name!r} ({named.family.name}) cannot be taught from the viewer; its family has no teach capability")
        return loaded[named.name]

    def classes_of(self, named: NamedModel) -> tuple[dict[int, str], dict[int, str]]:
        """(id -> name of the classes ``named`` segments automatically, id -> name of those it learnt)."""
        classes = self.service.classes(named)
        return {int(c): classes.name(c) for c in classes.automatic()}, dict(classes.taught)

    def _checkpoint(self, named: NamedModel) -> Path:
        if named.checkpoint is not None:
            return Path(named.checkpoint)
        original = self.originals[named.name]
        if original.checkpoint is not None:
            return Path(original.checkpoint)
        from voxelprompt.families.vista3d.inference.default_model import default_checkpoint

        return default_checkpoint()

    def _charge(self, named: NamedModel, images) -> None:
        """Charge the run to the memory budget: weights, gradients and two AdamW moments in
        float32, and each labelled image with its label (float32 each, the cached cases).

        Raises:
            OverBudget, TooLargeError: no room (HTTP 503 / 413).
        """
        if self.budget is None:
            return
        params = sum(p.numel() for p in named.segmenter.net.parameters())
        voxels = sum(int(np.prod(self.service.store.image(i.image_id).shape)) for i in images)
        self.budget.set(("training", named.name), 16 * params + 8 * voxels, f"training {named.name}")

    def _run(self, task: dict[str, Any], named: NamedModel, request: TrainRequest, plan: Any, steps: int) -> None:
        from voxelprompt.families.vista3d.training.teach import same_run, teach

        started = time.perf_counter()
        versions = ModelVersions(self.root / named.name)
        number, folder = versions.next_folder()
        task["status"], task["version"] = "RUNNING", number
        known, learnt = self.classes_of(named)
        if not same_run(folder / "run", plan, request.scope):  # a killed run of other classes: start afresh
            shutil.rmtree(folder / "run", ignore_errors=True)

        began = [time.perf_counter()]

        def on_step(step: int, total: int, loss: float) -> None:
            seconds = time.perf_counter() - began[0]  # the step's own time, inside its compute turn
            task["max_step_s"] = round(max(task.get("max_step_s", 0.0), seconds), 3)
            task["step"], task["loss"] = step, None if loss != loss else round(float(loss), 5)
            task["details"].append(f"Epoch: {step}/{total}, Iter: {step}/{total} -- train_loss: {loss:.4f}, step_s: {seconds:.3f}")

        @contextlib.contextmanager
        def turn() -> Iterator[bool]:
            """The gate's background turn for one step, noting when the step began."""
            with self.service.gate.background_turn() as go:
                began[0] = time.perf_counter()
                yield go

        try:
            profile = named.segmenter.profile
            run = teach(
                self._checkpoint(named), self.service.store.root, folder / "run", known=known, learnt=learnt,
                tag=request.label_tag, only=request.labels or None, fixed=request.class_ids, related=request.init_from,
                scope=request.scope, steps=steps, lr=request.learning_rate, resume=True, profile=profile,
                turn=turn, stop=self._stop, on_step=on_step,
            )  # fmt: skip
            if run.result.stopped:
                task["status"] = "STOPPED"
                task["details"].append(f"stopped at step {run.result.steps}; POST /train/ again resumes it")
                return
            card = {
                "version": number, "parent": versions.active(), "name": request.name, "steps": run.result.steps,
                "learnt": {str(k): v for k, v in {**learnt, **run.plan.taught()}.items()},
                "everything": sorted(set(known) | set(run.plan.ids.values())), "images": list(run.images),
                "checkpoint": str(Path(run.result.model).relative_to(folder)), "created": time.time(),
            }  # fmt: skip
            new = load_version(self.originals[named.name], self.root / named.name, card)
            versions.finish(card)
            self.service.swap_model(new, taught_names(card))
            versions.activate(number)
            task["status"] = "DONE"
            task["details"].append(f"version {number} serves {named.name}: learnt {', '.join(run.plan.new) or 'no new class'}")
        except Exception as err:  # reported in the task, as MONAI Label does; the server keeps serving
            logger.exception("training %s failed", named.name)
            task["status"] = "ERROR"
            task["details"].append(" ".join(f"{type(err).__name__}: {err}".split())[:300])
        finally:
            task["end_ts"] = time.strftime("%Y-%m-%d %H:%M:%S")
            task["seconds"] = round(time.perf_counter() - started, 1)
            if self.budget is not None:
                self.budget.release(("training", named.name))

def _public(task: dict[str, Any]) -> dict[str, Any]:
    return {**task, "details": list(task["details"])}


"""One case, run where a worker runs it (this process, or a Dask worker process): read the CT,
answer every task with a model loaded once per worker, merge, write the outputs, and return a
small record. Nothing here touches the manifest; the coordinator commits the record.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.batch.cases import Case
from voxelprompt.batch.manifest import CaseRecord, file_sha256
from voxelprompt.batch.tasks import ModelSpec, ResolvedTask
from voxelprompt.inference.merge import merge_labels
from voxelprompt.errors import VoxelPromptError

__all__ = ["CaseJob", "CaseResult", "process_case", "cached_model", "clear_model_cache"]

logger = logging.getLogger(__name__)

# One loaded model per worker process and spec: a Dask worker keeps it between cases.
_MODELS: dict[tuple, object] = {}
_MODELS_LOCK = threading.Lock()


@dataclass(frozen=True)
class CaseJob:
    """What a worker needs for one case (small and picklable: paths, not arrays).

    Args:
        case: the case.
        input_sha256: its content hash (recorded in the result).
        tasks: the resolved tasks, in precedence order.
        kinds: output format names (:data:`voxelprompt.outputs.OUTPUT_FORMATS`).
        out_dir: the shared output folder.
        created, settings_sha256: the run's creation time and settings hash (see
            :class:`voxelprompt.batch.outputs.CaseOutput`).
        torch_threads: intra-op threads of this worker; None: leave torch's setting.
    """

    case: Case
    input_sha256: str
    tasks: tuple[ResolvedTask, ...]
    kinds: tuple[str, ...]
    out_dir: Path
    created: str
    settings_sha256: str
    torch_threads: int | None = None


@dataclass(frozen=True)
class CaseResult:
    """A worker's answer: the case's manifest record (its files, name -> sha256), or a one-line error.

    Args:
        record: the finished case (``outputs`` empty when it failed).
        error: why it failed; None when it finished.
    """

    record: CaseRecord
    error: str | None = None

    @property
    def case_id(self) -> str:
        return self.record.case_id

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, job: CaseJob, error: str, seconds: float = 0.0) -> CaseResult:
        """The result of a case that failed with ``error``."""
        case = job.case
        record = CaseRecord(case.case_id, str(case.path), job.input_sha256, {}, round(seconds, 3), case.series_uid)
        return cls(record, error)


def cached_model(spec: ModelSpec):
    """The model of ``spec``, loaded on first use in this process and kept."""
    from voxelprompt import api

    device = _worker_device(spec.device)
    key = (spec.family, spec.checkpoint, repr(spec.options), device)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = api.load_model(spec.checkpoint, spec.family, device=device, options=spec.options)
        return _MODELS[key]


def clear_model_cache() -> None:
    """Forget the loaded models (tests; freeing memory between runs)."""
    with _MODELS_LOCK:
        _MODELS.clear()


def process_case(job: CaseJob) -> CaseResult:
    """Run one case end to end; every error becomes the result's one-line ``error``.

    The label map of task *n* fills only voxels that tasks 1..n-1 left at 0 (see
    :mod:`voxelprompt.batch.tasks`); it is written with ``label_names.json`` and the other kinds
    into ``out_dir/<case_id>`` as one step (:func:`voxelprompt.batch.outputs.write_case_outputs`).
    """
    start = time.perf_counter()
    case = job.case
    try:
        if case.error is not None:
            raise VoxelPromptError(case.error)
        _set_threads(job.torch_threads)
        names = _run(job)
        folder = job.out_dir / case.case_id
        outputs = {name: file_sha256(folder / name) for name in names}
        seconds = round(time.perf_counter() - start, 3)
        return CaseResult(CaseRecord(case.case_id, str(case.path), job.input_sha256, outputs, seconds, case.series_uid))
    except Exception as err:  # per-case isolation: the run goes on, the error is recorded
        logger.debug("case %s failed", case.case_id, exc_info=True)
        return CaseResult.failed(job, one_line(err), time.perf_counter() - start)


def _run(job: CaseJob) -> list[str]:
    from voxelprompt import api
    from voxelprompt.batch.outputs import CaseOutput, write_case_outputs
    from voxelprompt.types import Volume

    case = job.case
    volume = api.read_ct(case.path, case.series_uid)
    maps, tables, demo = [], [], False
    for task in job.tasks:
        segmenter = cached_model(task.model)
        demo = demo or bool(segmenter.demo)
        outcome = api.segment_outcome(volume, segmenter=segmenter, prompts=task.prompts)  # checked on this case's grid
        maps.append(outcome.result.labels.array)
        tables.append(outcome.names)
    merged, label_names = merge_labels(maps, tables, [t.task.name for t in job.tasks])
    labels = Volume(array=merged, affine=volume.affine, source=f"<{case.case_id}>")
    output = CaseOutput(
        case_id=case.case_id, image=volume, labels=labels, label_names=label_names, source=str(case.path),
        series_uid=case.series_uid, input_sha256=job.input_sha256, settings_sha256=job.settings_sha256, created=job.created,
        demo_model=demo,
    )  # fmt: skip
    return write_case_outputs(output, job.kinds, job.out_dir)


def one_line(err: BaseException) -> str:
    """A one-line message: our own errors as they are, others prefixed by their type."""
    text = " ".join(str(err).split())
    if isinstance(err, VoxelPromptError):
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _worker_device(device: str) -> str:
    """``auto`` on the numbered workers of a local cluster with several GPUs: one GPU per worker
    (worker n takes ``cuda:n % GPUs``); otherwise ``device`` as given."""
    if device != "auto":
        return device
    try:
        from distributed import get_worker

        index = int(get_worker().name)
    except (ImportError, ValueError, TypeError):
        return device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{index % count}" if count > 1 else device


def _set_threads(threads: int | None) -> None:
    if threads is None:
        threads = _dask_worker_threads()
    if threads is None:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _dask_worker_threads() -> int | None:
    """On a Dask worker the coordinator cannot know the cores: share this machine's between the
    worker's task threads."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    return max(1, (os.cpu_count() or 1) // max(1, int(getattr(worker.state, "nthreads", 1))))

"""Running cases on Dask ``distributed`` workers: a local cluster of processes, or an existing
cluster by address. Dask schedules; each worker keeps its own model (see
:func:`voxelprompt.batch.worker.cached_model`) and writes outputs to the shared OUT_DIR.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from voxelprompt.batch.worker import CaseJob, CaseResult, one_line, process_case
from voxelprompt.errors import VoxelPromptError

__all__ = ["dask_client", "run_on_client"]

logger = logging.getLogger(__name__)

# How long to wait for a scheduler given by address before a one-line error.
_CONNECT_TIMEOUT_S = 10


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None, client: Any = None) -> Iterator[Any]:
    """A ``distributed.Client``: the given one, one connected to ``scheduler``, or one of a new
    ``LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)`` on 127.0.0.1 (closed
    on exit).

    Raises:
        VoxelPromptError: Dask is not installed (the "dask" extra), or the scheduler cannot be reached.
    """
    if client is not None:
        yield client
        return
    from voxelprompt.extras import needs

    with needs("dask", "batch --workers/--scheduler (Dask)"):
        from distributed import Client, LocalCluster
    if scheduler is not None:
        try:
            remote = Client(scheduler, timeout=_CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as err:
            raise VoxelPromptError(f"--scheduler {scheduler}: cannot connect ({one_line(err)})") from None
        with remote:
            yield remote
        return
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
        silence_logs=logging.ERROR,
    )  # fmt: skip
    with cluster, Client(cluster) as local:
        yield local


def run_on_client(client: Any, jobs: Sequence[CaseJob]) -> Iterable[CaseResult]:
    """Submit every job and yield results as they complete; a worker that died (or any error the
    task itself did not catch) becomes that case's failure."""
    from distributed import as_completed

    if not jobs:
        return
    run = uuid.uuid4().hex[:8]  # keys unique on a shared scheduler, readable on its dashboard
    futures = {client.submit(process_case, job, pure=False, key=f"voxelprompt-{run}-{job.case.case_id}"): job for job in jobs}
    for future in as_completed(futures):
        job = futures[future]
        try:
            yield future.result()
        except Exception as err:  # KilledWorker, a lost connection: the case failed, the run goes on
            yield CaseResult.failed(job, one_line(err))
        finally:
            future.release()

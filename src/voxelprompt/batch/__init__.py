"""Cohort processing: many CTs with one model per worker, resumable, in process or on Dask workers.

``voxelprompt batch`` is a thin adapter over :func:`run_cohort`; see ``README.md`` beside this file.
"""

from __future__ import annotations

from voxelprompt.batch.cases import Case, discover_cases
from voxelprompt.batch.manifest import Failure, RunManifest
from voxelprompt.batch.outputs import CaseOutput
from voxelprompt.batch.runner import SOME_FAILED_EXIT, CohortResult, run_cohort
from voxelprompt.batch.tasks import Task, load_tasks, merge_labels, parse_task
from voxelprompt.batch.worker import CaseResult

__all__ = [
    "run_cohort",
    "CohortResult",
    "CaseResult",
    "Failure",
    "RunManifest",
    "Case",
    "discover_cases",
    "Task",
    "parse_task",
    "load_tasks",
    "merge_labels",
    "CaseOutput",
    "SOME_FAILED_EXIT",
]

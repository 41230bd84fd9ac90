"""``run_cohort``: segment every case of a cohort, resumably, in this process or on Dask workers.

The coordinator (this function) lists the cases, checks every setting before any work, hashes the
inputs, skips finished cases, hands the rest to an executor and commits each returned record to
the manifest. Executors: in-process (default, no Dask needed), a ``distributed.LocalCluster`` of
``workers`` processes on 127.0.0.1, or an existing cluster by ``scheduler`` address (or a given
``distributed.Client``); Dask does the scheduling, workers write to the shared OUT_DIR.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxelprompt.batch.cases import SERIES_ONLY, Case, discover_cases, hash_files
from voxelprompt.batch.manifest import (
    FAILURES_NAME,
    MANIFEST_NAME,
    Failure,
    RunManifest,
    settings_differ,
    write_failures,
)
from voxelprompt.batch.outputs import (
    DICOM_SEG_FILE,
    RTSTRUCT_FILE,
    STATISTICS_FILE,
    check_output_kinds,
    clean_leftovers,
    kinds_unavailable,
    remove_empty_staging,
)
from voxelprompt.batch.pacs import PacsCohort, pacs_cases, store_segmentations
from voxelprompt.batch.tasks import Task, resolve_task
from voxelprompt.batch.worker import CaseJob, CaseResult, process_case
from voxelprompt.errors import InputError, VoxelPromptError

__all__ = ["CohortResult", "run_cohort", "plan_cohort", "CohortPlan", "SOME_FAILED_EXIT"]

logger = logging.getLogger(__name__)

#: Exit code of ``voxelprompt batch`` when some cases failed (usage errors exit 2, success 0).
SOME_FAILED_EXIT = 1

_LOCK_NAME = ".lock"
STATISTICS_KIND = "stats"
DICOM_SEG_KIND = "dicom-seg"
RTSTRUCT_KIND = "rtstruct"


@dataclass
class CohortResult:
    """What a run did.

    Args:
        out_dir: the output folder.
        done: ids of the cases finished in this run.
        skipped: ids of the cases a previous run had finished (outputs verified).
        failed: the cases that failed in this run.
    """

    out_dir: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when every case is finished, :data:`SOME_FAILED_EXIT` when some failed."""
        return SOME_FAILED_EXIT if self.failed else 0


@dataclass
class CohortPlan:
    """A checked run, before any case runs: the cases to run, those already finished, the manifest."""

    out_dir: Path
    jobs: list[CaseJob]
    skipped: list[str]
    manifest: RunManifest
    total: int
    kinds: tuple[str, ...] = ()


def run_cohort(
    input: str | os.PathLike | PacsCohort,  # noqa: A002 - the INPUT argument
    out_dir: str | os.PathLike,
    *,
    tasks: Sequence[Task],
    output_formats: Sequence[str] = ("nifti",),
    series: str = SERIES_ONLY,
    device: str = "auto",
    overwrite: bool = False,
    workers: int = 0,
    scheduler: str | None = None,
    client: Any = None,
    on_start: Callable[[int, int], None] | None = None,
    on_result: Callable[[CaseResult], None] | None = None,
) -> CohortResult:
    """Segment every case of ``input`` into ``out_dir``; finished cases of an earlier run with the
    same settings are skipped.

    Args:
        input: a folder of NIfTI/NRRD files, a folder of DICOM studies, a datalist JSON or a CSV
            (see :func:`voxelprompt.batch.cases.discover_cases`), or series of a PACS
            (:class:`~voxelprompt.batch.pacs.PacsCohort`: retrieved into ``out_dir/.pacs``, case
            ids their SeriesInstanceUIDs, DICOM-SEGs and RT-STRUCTs stored back when asked).
        out_dir: output folder: ``<case_id>/`` per case, ``manifest.json``, ``failures.csv``.
        tasks: prompt sets in precedence order (earlier wins, see :mod:`voxelprompt.batch.tasks`).
        output_formats: output kinds (names of :data:`voxelprompt.outputs.OUTPUT_FORMATS`).
        series: rule for DICOM folders holding several series (``only``, ``most-slices`` or a UID).
        device: where models run (``auto``, ``cpu``, ``cuda``, ``cuda:N``), on every worker.
        overwrite: start afresh when ``out_dir`` holds a run with other settings.
        workers: N > 0 starts a ``distributed.LocalCluster`` of N single-threaded processes on
            127.0.0.1; 0 runs in this process.
        scheduler: ``tcp://HOST:PORT`` of a running Dask scheduler (``Client(address)``).
        client: an existing ``distributed.Client`` (instead of ``workers`` or ``scheduler``).
        on_start: called with (cases to run, cases skipped) before the first case runs.
        on_result: called with each case's record as the coordinator commits it.

    Returns:
        What was done, skipped and failed.

    Raises:
        VoxelPromptError: everything checked before work (input, tasks, checkpoints, output
            kinds, an output folder of another run without ``overwrite``, a folder another run
            is using, an unreachable scheduler), one line each.
    """
    if sum(bool(x) for x in (workers, scheduler, client)) > 1:
        raise VoxelPromptError("give one of --workers, --scheduler (or a client), not several")
    if workers < 0:
        raise VoxelPromptError(f"--workers must be >= 0, got {workers}")
    if workers or scheduler:
        from voxelprompt.extras import require

        require("dask", "batch --workers/--scheduler (Dask)")
    out = _prepare_out_dir(Path(out_dir))
    with _run_lock(out):
        plan = plan_cohort(input, out, tasks=tasks, output_formats=output_formats, series=series, device=device,
                           overwrite=overwrite, torch_threads=_threads_per_worker(workers))  # fmt: skip
        from voxelprompt.families.vista3d.inference.default_model import is_demo_checkpoint

        if plan.jobs and any(t.task.checkpoint is None and is_demo_checkpoint(t.model.checkpoint) for t in plan.jobs[0].tasks):
            from voxelprompt.api import DEMO_MODEL_WARNING

            logger.warning(DEMO_MODEL_WARNING)  # once every check has passed and there is work
        result = CohortResult(out_dir=out, skipped=list(plan.skipped))
        if on_start is not None:
            on_start(len(plan.jobs), len(plan.skipped))
        failures: dict[str, Failure] = {}  # every unfinished case runs again, so none stand yet
        write_failures(out / FAILURES_NAME, failures.values())
        with _executor(workers, scheduler, client) as execute:
            for case_result in execute(plan.jobs):
                _commit(plan, case_result, result, failures)
                if on_result is not None:
                    on_result(case_result)
        remove_empty_staging(out)
        if STATISTICS_KIND in plan.kinds:
            _join_statistics(plan)
        if isinstance(input, PacsCohort) and input.store_dicom_seg:
            stored = store_segmentations(input, out, [*result.done, *result.skipped], DICOM_SEG_FILE)
            logger.info("stored %d DICOM-SEG(s) on %s", len(stored), input.source.url)
        if isinstance(input, PacsCohort) and input.store_rtstruct:
            stored = store_segmentations(input, out, [*result.done, *result.skipped], RTSTRUCT_FILE)
            logger.info("stored %d RT-STRUCT(s) on %s", len(stored), input.source.url)
    return result


def plan_cohort(
    input: str | os.PathLike,  # noqa: A002
    out: Path,
    *,
    tasks: Sequence[Task],
    output_formats: Sequence[str],
    series: str,
    device: str,
    overwrite: bool,
    torch_threads: int | None = None,
) -> CohortPlan:
    """Every check before work, then the plan (the manifest written with these settings).

    Raises:
        VoxelPromptError: as :func:`run_cohort`.
    """
    from voxelprompt.devices import check_device

    check_device(device)
    if not tasks:
        raise VoxelPromptError("nothing to segment: give --classes, --everything, clicks, a box, a text or --task")
    kinds = check_output_kinds(output_formats)
    pacs = input if isinstance(input, PacsCohort) else None
    if pacs is not None and pacs.store_dicom_seg and DICOM_SEG_KIND not in kinds:
        raise VoxelPromptError("storing DICOM-SEGs on the PACS needs --output-format dicom-seg")
    if pacs is not None and pacs.store_rtstruct and RTSTRUCT_KIND not in kinds:
        raise VoxelPromptError("storing RT-STRUCTs on the PACS needs --output-format rtstruct")
    cases = discover_cases(input, series) if pacs is None else None
    if cases is not None:
        cases = _refuse_unavailable_kinds(cases, kinds, input)
    resolved = tuple(resolve_task(t, device) for t in tasks)
    settings = {"tasks": [t.settings() for t in resolved], "output_formats": list(kinds), "series": series}
    if pacs is not None:
        settings["input"] = pacs.settings()
    manifest = _manifest_for(out, settings, overwrite)
    if pacs is not None:  # retrieved only once the run may use this folder
        cases = pacs_cases(pacs, out)
    removed = clean_leftovers(out)
    if removed:
        logger.info("removed %d leftover(s) of an interrupted run in %s", removed, out)
    manifest.save(out / MANIFEST_NAME)
    jobs, skipped = [], []
    for case in cases:
        digest = _input_hash(case)
        if digest and manifest.is_finished(case.case_id, digest, out / case.case_id):
            skipped.append(case.case_id)
            continue
        jobs.append(
            CaseJob(case=case, input_sha256=digest, tasks=resolved, kinds=kinds, out_dir=out, created=manifest.created,
                    settings_sha256=manifest.settings_sha256, torch_threads=torch_threads)
        )  # fmt: skip
    return CohortPlan(out_dir=out, jobs=jobs, skipped=skipped, manifest=manifest, total=len(cases), kinds=kinds)


def _refuse_unavailable_kinds(cases: list[Case], kinds: tuple[str, ...], input: Any) -> list[Case]:  # noqa: A002
    """Refuse an output kind that no case can have (a usage error, before any work); a case that
    cannot have some kind fails with the reason, without being run (never "done" without it).

    Raises:
        VoxelPromptError: a kind none of ``cases`` can have, with why.
    """
    for kind in kinds:
        lacking = [c for c in cases if kind in kinds_unavailable((kind,), c.is_dicom)]
        if lacking and len(lacking) == len(cases):
            reason = kinds_unavailable((kind,), False)[kind]
            raise VoxelPromptError(
                f"--output-format {kind} {reason}, and none of the {len(cases)} case(s) in {input} is a DICOM series "
                f"(they are image files); drop {kind} or give DICOM series folders"
            )
    out = []
    for case in cases:
        missing = kinds_unavailable(kinds, case.is_dicom)
        if missing and case.error is None:
            why = "; ".join(f"--output-format {k} {r}" for k, r in missing.items())
            case = dataclasses.replace(case, error=f"{why}, and this case is an image file ({case.path.name})")
        out.append(case)
    return out


def _prepare_out_dir(out: Path) -> Path:
    from voxelprompt.imageio import check_output_folder

    return check_output_folder(out)


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """One run per OUT_DIR at a time; the lock dies with its process (also on SIGKILL)."""
    handle = open(out / _LOCK_NAME, "a")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise VoxelPromptError(f"{out}: another voxelprompt batch run is writing into this folder") from None
        yield
    finally:
        handle.close()


def _manifest_for(out: Path, settings: dict, overwrite: bool) -> RunManifest:
    old = RunManifest.load(out / MANIFEST_NAME) if not overwrite else None
    if old is None:
        if not overwrite and any(not p.name.startswith(".") for p in out.iterdir()):
            raise VoxelPromptError(
                f"{out}: folder holds files but no run manifest; give an empty or new -o folder, or --overwrite"
            )
        return RunManifest(settings=settings)
    if old.settings != settings:
        differ = ", ".join(settings_differ(old.settings, settings))
        raise VoxelPromptError(
            f"{out}: holds a run with other settings ({differ}); rerun with --overwrite to replace it, or use another -o"
        )
    return old


def _input_hash(case: Case) -> str:
    if case.error is not None or not case.files:
        return ""
    try:
        return hash_files(case.files, [f.name for f in case.files])
    except InputError:
        return ""  # the worker reports the unreadable input as the case's failure


def _commit(plan: CohortPlan, res: CaseResult, result: CohortResult, failures: dict[str, Failure]) -> None:
    out = plan.out_dir
    if res.ok:
        plan.manifest.cases[res.case_id] = res.record
        plan.manifest.save(out / MANIFEST_NAME)
        result.done.append(res.case_id)
        logger.debug("case %s done in %.1f s", res.case_id, res.record.seconds)
        return
    failures[res.case_id] = Failure(res.case_id, res.record.input, res.error or "failed")
    result.failed.append(failures[res.case_id])
    write_failures(out / FAILURES_NAME, failures.values())
    logger.debug("case %s failed: %s", res.case_id, res.error)


def _join_statistics(plan: CohortPlan) -> None:
    """``OUT_DIR/statistics.csv``: every finished case's table, in case id order, with a ``case`` column."""
    from voxelprompt.measure import join_statistics_csv

    cases = plan.manifest.cases
    tables = {cid: plan.out_dir / cid / STATISTICS_FILE for cid in sorted(cases) if STATISTICS_FILE in cases[cid].outputs}
    join_statistics_csv(tables, plan.out_dir / STATISTICS_FILE)


def _threads_per_worker(workers: int) -> int | None:
    """Local workers share this machine's cores; in process, torch keeps its own setting."""
    if workers <= 0:
        return None
    return max(1, (os.cpu_count() or 1) // workers)


@contextlib.contextmanager
def _executor(workers: int, scheduler: str | None, client: Any):
    if not (workers or scheduler or client):
        yield lambda jobs: (process_case(job) for job in jobs)
        return
    from voxelprompt.batch.dask_executor import dask_client, run_on_client

    with dask_client(workers, scheduler, client) as dask:
        yield lambda jobs: run_on_client(dask, jobs)

"""Scale-out on Dask ``distributed``: ``--workers 2`` (a LocalCluster of processes) and an existing
LocalCluster by scheduler address give the same bytes as the in-process run; only the coordinator
writes the manifest."""

from __future__ import annotations

import pytest
from batch_cohort import CASE_IDS, CORRUPT, output_bytes

from voxelprompt.batch import Task, run_cohort
from voxelprompt.batch.manifest import RunManifest
from voxelprompt.errors import VoxelPromptError

TASKS = [Task(classes=("liver", "spleen"))]
KINDS = ("nifti", "seg-nrrd", "stats")  # DICOM-SEG dates are each run's creation time: equal on reruns only


@pytest.mark.slow
def test_workers_and_a_scheduler_give_the_in_process_bytes(cohort, tmp_path):
    from distributed import LocalCluster

    runs = {}
    runs["in-process"] = run_cohort(cohort, tmp_path / "in_process", tasks=TASKS, output_formats=KINDS, device="cpu")
    runs["workers"] = run_cohort(cohort, tmp_path / "workers", tasks=TASKS, output_formats=KINDS, device="cpu", workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        runs["scheduler"] = run_cohort(
            cohort, tmp_path / "scheduler", tasks=TASKS, output_formats=KINDS, device="cpu", scheduler=cluster.scheduler_address
        )
    for name, result in runs.items():
        assert sorted(result.done) == sorted(CASE_IDS), name
        assert [f.case_id for f in result.failed] == [CORRUPT], name
    reference = output_bytes(tmp_path / "in_process")
    assert len(reference) == 5 * len(CASE_IDS) + 2  # 5 files per case, failures.csv, statistics.csv
    assert output_bytes(tmp_path / "workers") == reference
    assert output_bytes(tmp_path / "scheduler") == reference
    manifests = [RunManifest.load(tmp_path / name / "manifest.json") for name in ("in_process", "workers", "scheduler")]
    assert {m.settings_sha256 for m in manifests} == {manifests[0].settings_sha256}
    assert all({k: r.outputs for k, r in m.cases.items()} == {k: r.outputs for k, r in manifests[0].cases.items()} for m in manifests)


def test_an_unreachable_scheduler_is_a_one_line_error(cohort, tmp_path):
    from voxelprompt.server.launch import free_port

    port = free_port()  # a port nobody listens on
    with pytest.raises(VoxelPromptError, match=f"--scheduler tcp://127.0.0.1:{port}: cannot connect"):
        run_cohort(cohort, tmp_path / "out", tasks=TASKS, device="cpu", scheduler=f"tcp://127.0.0.1:{port}")


def test_workers_and_scheduler_are_exclusive(cohort, tmp_path):
    with pytest.raises(VoxelPromptError, match="not several"):
        run_cohort(cohort, tmp_path / "out", tasks=TASKS, workers=2, scheduler="tcp://127.0.0.1:1")

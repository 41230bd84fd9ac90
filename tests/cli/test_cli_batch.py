"""``voxelprompt batch``: usage errors are one line and exit 2 before any work; exit 1 when a case
failed; a run killed with SIGKILL (after a case, mid-case, mid-write) then rerun gives the bytes of
an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cli_runner import SCRIPT, run, script

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "batch"))
from batch_cohort import CORRUPT, make_cohort, make_phantoms, output_bytes  # noqa: E402

from voxelprompt.batch import Task, run_cohort  # noqa: E402


@pytest.fixture(scope="module")
def one_phantom(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    make_phantoms(folder, n=1)
    return folder


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--classes", "livr"], "unknown class name 'livr'"),
        (["--classes", "liver", "--task", "classes=spleen"], "not both"),
        (["--task", "colour=red"], "unknown key 'colour'"),
        (["--classes", "liver", "--output-format", "gif"], "unknown kind"),
        (["--classes", "liver", "--workers", "-1"], "--workers"),
        (["--classes", "liver", "--device", "tpu"], "unknown device"),
        ([], "nothing to segment"),
    ],
)
def test_usage_errors_are_one_line_exit_2_and_write_nothing(one_phantom, tmp_path, capsys, extra, expected):
    code, out, err = run(["batch", str(one_phantom), "-o", str(tmp_path / "out"), *extra], capsys)
    assert code == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1 and expected in lines[0], err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_a_missing_input_is_one_line_from_the_installed_script(tmp_path):
    done = script("batch", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out"), "--classes", "liver")
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'nowhere'}: input not found"


def test_exit_code_is_0_when_all_finished_and_1_when_a_case_failed(one_phantom, tmp_path, capsys):
    code, out, err = run(["batch", str(one_phantom), "-o", str(tmp_path / "ok"), "--classes", "liver"], capsys)
    assert code == 0, err
    assert "1 done, 0 skipped" in out and "cases" in err  # the progress bar is on stderr
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "phantom_0.nii.gz").write_bytes((one_phantom / "phantom_0.nii.gz").read_bytes())
    (mixed / "broken.nii.gz").write_bytes(b"not a nifti")
    code, out, err = run(["batch", str(mixed), "-o", str(tmp_path / "bad"), "--task", "classes=liver", "-q"], capsys)
    assert code == 1
    assert "1 done" in out and "1 failed" in out and "failed broken:" in err
    code, out, err = run(["batch", str(mixed), "-o", str(tmp_path / "bad"), "--task", "classes=liver", "-q"], capsys)
    assert code == 1 and "1 skipped" in out


def test_an_output_kind_no_case_can_have_is_refused_before_any_work(one_phantom, tmp_path):
    out = tmp_path / "out"
    done = script("batch", str(one_phantom), "-o", str(out), "--classes", "liver", "--output-format", "nifti,dicom-seg")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if not line.startswith("WARNING")]
    assert len(lines) == 1 and "dicom-seg" in lines[0] and "DICOM source series" in lines[0], done.stderr
    assert "loading" not in done.stderr and not (out / "manifest.json").exists()
    assert not [p for p in out.iterdir() if not p.name.startswith(".")]


@pytest.mark.slow  # the 512x512x20 DICOM series: ~30 s on 2 cores
def test_a_case_that_cannot_have_an_output_kind_fails_with_its_reason(one_phantom, tmp_path):
    import shutil

    from shared_paths import shared_file

    shutil.copy(one_phantom / "phantom_0.nii.gz", tmp_path / "phantom_0.nii.gz")
    shutil.copytree(shared_file("data", "totalseg", "example_ct_dicom"), tmp_path / "ct_dicom")
    listed = tmp_path / "cases.csv"
    listed.write_text("image\nphantom_0.nii.gz\nct_dicom\n")
    out = tmp_path / "out"
    done = script("batch", str(listed), "-o", str(out), "--classes", "liver", "--output-format", "nifti,dicom-seg", "-q", timeout=300)
    assert done.returncode == 1, done.stderr
    assert "1 done" in done.stdout and "1 failed" in done.stdout
    assert "failed phantom_0: --output-format dicom-seg needs a DICOM source series" in done.stderr
    failures = (out / "failures.csv").read_text()
    assert "phantom_0" in failures and "DICOM source series" in failures
    assert not (out / "phantom_0").exists()
    assert (out / "ct_dicom" / "segmentation.dcm").is_file()


def _wait(process: subprocess.Popen, ready, timeout: float = 240) -> bool:
    """Poll until ``ready()``; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError("timed out waiting for the batch run")


def _finished(out: Path) -> int:
    try:
        return len(json.loads((out / "manifest.json").read_text())["cases"])
    except (OSError, ValueError, KeyError):
        return 0


def _assembling(out: Path) -> bool:
    stage = out / ".partial"
    return stage.is_dir() and any(stage.iterdir())


def _start(argv: list[str]) -> tuple[subprocess.Popen, threading.Event]:
    """The run, and an event set once it has logged its model load (the next case is computing)."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    loaded = threading.Event()

    def watch() -> None:
        for line in process.stderr:
            if line.startswith("loaded "):
                loaded.set()

    threading.Thread(target=watch, daemon=True).start()
    return process, loaded


def _kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_sigkill_after_a_case_mid_case_and_mid_write_then_rerun_gives_the_uninterrupted_bytes(tmp_path):
    cohort = make_cohort(tmp_path / "cohort")
    reference = tmp_path / "reference"
    kinds = ("nifti", "seg-nrrd", "stats")  # DICOM-SEG dates are the run's: equal on reruns, not across folders
    run_cohort(cohort, reference, tasks=[Task(classes=("liver", "spleen"))], output_formats=kinds, device="cpu")
    out = tmp_path / "out"
    argv = [str(SCRIPT), "batch", str(cohort), "-o", str(out), "--classes", "liver,spleen", "--output-format", ",".join(kinds),
            "--device", "cpu", "-q"]  # fmt: skip
    # 1. right after the first case is recorded
    run, _ = _start(argv)
    assert _wait(run, lambda: _finished(out) >= 1), "the run ended before a case finished"
    _kill(run)
    # 2. mid-case: half a second after the model is loaded, while the next case (the real CT) computes
    finished = _finished(out)
    run, loaded = _start(argv)
    assert _wait(run, loaded.is_set), "the rerun ended before loading its model"
    time.sleep(0.5)
    _kill(run)
    assert _finished(out) == finished, "the case finished before the kill: not a mid-case kill"
    # 3. mid-write: while a case's files are being assembled (else as soon as one more case finished)
    run, _ = _start(argv)
    _wait(run, lambda: _assembling(out) or _finished(out) > finished)
    _kill(run)
    last = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert last.returncode == 1, last.stderr  # the corrupt case
    assert f"failed {CORRUPT}" in last.stderr
    assert output_bytes(out) == output_bytes(reference)
    leftovers = [p for p in out.rglob(".*") if p.name != ".lock"]
    assert leftovers == []

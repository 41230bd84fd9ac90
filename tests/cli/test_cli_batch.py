"""``voxelprompt batch``: usage errors are one line and exit 2 before any work; exit 1 when a case
failed; a run killed with SIGKILL (after a case, and mid-case) then rerun gives the bytes of an
uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


@pytest.mark.slow
def test_sigkill_after_a_case_and_mid_case_then_rerun_gives_the_uninterrupted_bytes(tmp_path):
    cohort = make_cohort(tmp_path / "cohort")
    reference = tmp_path / "reference"
    kinds = ("nifti", "seg-nrrd", "stats")  # DICOM-SEG dates are the run's: equal on reruns, not across folders
    run_cohort(cohort, reference, tasks=[Task(classes=("liver", "spleen"))], output_formats=kinds, device="cpu")
    out = tmp_path / "out"
    argv = [str(SCRIPT), "batch", str(cohort), "-o", str(out), "--classes", "liver,spleen", "--output-format", ",".join(kinds),
            "--device", "cpu", "-q"]  # fmt: skip
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _wait(first, lambda: _finished(out) >= 1), "the run ended before a case finished"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    done_before = _finished(out)
    second = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # mid-case: while a case's files are being written, else as soon as one more case finished
    _wait(second, lambda: _assembling(out) or _finished(out) > done_before)
    os.kill(second.pid, signal.SIGKILL)
    second.wait()
    last = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert last.returncode == 1, last.stderr  # the corrupt case
    assert f"failed {CORRUPT}" in last.stderr
    assert output_bytes(out) == output_bytes(reference)
    leftovers = [p for p in out.rglob(".*") if p.name != ".lock"]
    assert leftovers == []

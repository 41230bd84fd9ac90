"""Results of the shipped demo model are marked wherever they go: the Python API warns once,
a batch run's statistics and DICOM-SEG say so (the viewer's banner: tests/server/test_viewer.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pydicom

from cli_runner import script
from shared_paths import shared_file


def test_load_model_without_a_checkpoint_warns_once():
    code = (
        "import warnings, voxelprompt\n"
        "warnings.simplefilter('default')\n"
        "voxelprompt.load_model(device='cpu')\n"
        "voxelprompt.load_model(device='cpu')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "UserWarning" in line]
    assert len(warnings) == 1 and "DEMO model" in warnings[0] and "not meaningful" in warnings[0], done.stderr


def test_batch_statistics_and_dicom_seg_of_the_demo_model_say_so(tmp_path):
    cohort = tmp_path / "studies"
    shutil.copytree(shared_file("data", "totalseg", "example_ct_dicom"), cohort / "case1")
    out = tmp_path / "out"
    done = script(
        "batch", str(cohort), "-o", str(out), "-c", "demo", "--classes", "liver", "--output-format", "stats,dicom-seg", "-q",
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    statistics = json.loads((out / "case1" / "statistics.json").read_text())
    assert "DEMO model" in statistics["warning"]
    seg = pydicom.dcmread(out / "case1" / "segmentation.dcm", stop_before_pixels=True)
    assert "DEMO model" in seg.SeriesDescription

"""Small things a newcomer meets, from the installed console script: an output path in a folder
that takes no files, a folder of NIfTI files given to ``segment``, Ctrl-C, and statistics digits."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

from cli_runner import SCRIPT, script

from shared_paths import shared_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "batch"))
from batch_cohort import make_phantoms  # noqa: E402


def test_an_output_under_proc_says_it_is_no_place_for_output(tmp_path):
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    done = script("segment", str(ct), "-o", "/proc/x.nii.gz", "--classes", "liver")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: /proc/x.nii.gz: cannot write into folder /proc (it takes no new files: not a place for output)"
    ]


def test_segment_on_a_folder_of_nifti_files_points_to_batch(tmp_path):
    folder = tmp_path / "cts"
    folder.mkdir()
    (folder / "a.nii.gz").write_bytes(shared_file("data", "totalseg", "example_ct_sm.nii.gz").read_bytes())
    done = script("segment", str(folder), "-o", str(tmp_path / "s.nii.gz"), "--classes", "liver")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "a.nii.gz" in done.stderr and f"voxelprompt batch {folder} -o OUT_DIR" in done.stderr


def test_ctrl_c_says_interrupted_exits_130_and_leaves_no_output(tmp_path):
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    out = tmp_path / "out" / "seg.nii.gz"
    process = subprocess.Popen([str(SCRIPT), "segment", str(ct), "-o", str(out), "--everything", "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "loading" not in (line := process.stderr.readline()):
            assert line, "the command ended before it loaded its model"
        time.sleep(2)  # into the model work
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "interrupted: nothing half-written was left behind", err
    assert not out.exists() and not [p for p in out.parent.iterdir()]


def test_statistics_are_written_to_sensible_precision(tmp_path):
    folder = tmp_path / "cts"
    folder.mkdir()
    make_phantoms(folder, n=1)
    out = tmp_path / "out"
    done = script("batch", str(folder), "-o", str(out), "--classes", "liver,spleen", "--output-format", "stats", "-q")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((out / "statistics.csv").open()))
    assert rows
    for row in rows:
        for column, decimals in (("volume_ml", 3), ("hu_mean", 2), ("hu_std", 2), ("hu_p50", 2), ("bbox_ras_min_x", 2)):
            assert len(row[column].partition(".")[2]) <= decimals, (column, row[column])


def test_the_default_output_folders_are_ignored_by_git():
    """The README's command 1 runs `voxelprompt demo voxelprompt-demo` inside the clone, and
    `demo` / `finetune` / the training recipes write to relative folders by default: git ignores
    them all, so a newcomer's clone stays clean."""
    import inspect
    import re

    from voxelprompt.cli.demo_cmd import demo
    from voxelprompt.cli.train_cmd import finetune
    from voxelprompt.families.vista3d.training.recipe import Recipe

    repo = Path(__file__).resolve().parents[2]
    command_1 = re.search(r"voxelprompt demo (\S+)", (repo / "README.md").read_text())
    assert command_1, "the README's command 1 runs no demo"
    folders = {command_1.group(1), str(inspect.signature(demo).parameters["out_dir"].default)}
    folders |= {str(inspect.signature(finetune).parameters["output_dir"].default), Recipe.output_dir}
    for folder in sorted(folders):
        probe = f"{folder}/summary.json"
        done = subprocess.run(["git", "-C", str(repo), "check-ignore", "--no-index", "-q", probe], capture_output=True, text=True)
        assert done.returncode == 0, f"{probe} is not ignored by {repo / '.gitignore'} ({done.stderr.strip()})"

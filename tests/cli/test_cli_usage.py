"""The installed ``voxelprompt`` console script, run as users run it: usage errors are one line and
exit code 2 (whichever copy of click the installed Typer carries), and cheap commands and prompt
errors never import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_runner import script

from shared_paths import shared_file


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "usage: voxelprompt COMMAND"),
        (("--bogus",), "No such option: --bogus"),
        (("segment",), "Missing argument 'INPUT'"),
        (("segment", "ct.nii.gz", "-o", "x.nii.gz", "--frobnicate"), "No such option: --frobnicate"),
        (("segment", "ct.nii.gz", "-o", "x.nii.gz", "--profile", "fastest"), "'fastest' is not one of 'bundle', 'research'"),
        (("segment", "ct.nii.gz", "-o", "x.nii.gz", "--device", "tpu"), "unknown device 'tpu'"),
        (("nonsense-command",), "No such command 'nonsense-command'"),
        (("demo", "--seed", "-3"), "--seed"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, expected):
    done = script(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr


def test_version_and_help_exit_0():
    version = script("--version")
    assert version.returncode == 0 and version.stdout.startswith("voxelprompt ")
    for command in ("--help", "segment --help", "overlay --help", "evaluate --help"):
        done = script(*command.split())
        assert done.returncode == 0 and "Usage: voxelprompt" in done.stdout, done.stderr
        # choices are listed as choices, never as Python types
        assert "<list[" not in done.stdout and "<bool>" not in done.stdout and "<str>" not in done.stdout


def _torch_free(argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter and report whether torch got imported."""
    code = (
        "import sys\nfrom voxelprompt.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code or 0\nelse:\n    code = 0\n"
        "print('torch imported' if 'torch' in sys.modules else 'torch not imported', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)


def test_help_classes_and_prompt_errors_do_not_load_torch(tmp_path):
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    out = str(tmp_path / "seg.nii.gz")
    cases = [
        (["--help"], 0, None),
        (["classes", "--plain"], 0, None),
        (["segment", str(ct), "-o", out, "--classes", "livr"], 2, "did you mean 'liver'"),
        (["segment", str(ct), "-o", out, "--point", "500,1,1"], 2, "outside the volume"),
        (["segment", str(ct), "-o", str(tmp_path / "seg.png"), "--classes", "liver"], 2, "seg.png"),
        (["segment", str(ct), "-o", out, "--new-structure", "--classes", "liver", "--point", "1,1,1"], 2, "new-structure"),
        (["segment", str(ct), "-o", out, "--negative-point", "1,1,1"], 2, "negative clicks alone"),
        (["segment", str(ct), "-o", out, "--classes", "999"], 2, "ids run 1..511"),
        (["segment", str(ct), "-o", out, "--classes", "300"], 2, "no automatic segmentation"),
        (["segment", str(ct), "-o", out, "--classes", "liver", "--everything"], 2, "cannot be combined"),
        (["segment", str(ct), "-o", out, "--classes", "liver", "-c", str(tmp_path / "nope.pt")], 2, "checkpoint file not found"),
        (["segment", str(ct), "-o", str(ct), "--classes", "liver"], 2, "is the input image"),
        (["segment", str(ct), "-o", str(tmp_path), "--classes", "liver"], 2, "is a folder"),
        (["demo", str(ct)], 2, "is a file; give a folder"),
    ]
    for argv, code, message in cases:
        done = _torch_free(argv)
        assert done.returncode == code, done.stderr
        assert "torch not imported" in done.stderr, argv
        if message:
            assert message in done.stderr.splitlines()[0], done.stderr
    assert not (tmp_path / "seg.nii.gz").exists()

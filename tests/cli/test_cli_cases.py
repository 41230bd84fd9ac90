"""Each failure case of ``../shared/cases/README.md`` through the command line, as a user meets it.

Inputs come from ``../shared/cases`` where the case gives a file, else the test builds them. The
library-level checks of each kind are in ``tests/imageio`` and ``tests/inference``; here the
whole command must do the right thing: exit code, one-line message, nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from cli_runner import SCRIPT, run, script

from shared_paths import shared_file

REPO = Path(__file__).resolve().parents[2]


def _error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


# ---- gantry_tilt -------------------------------------------------------------------------------


def test_gantry_tilted_series_is_segmented_on_an_orthogonal_grid_with_a_notice(tiny_checkpoint, tmp_path, capsys):
    series = shared_file("cases", "gantry_tilt", "series")
    out = tmp_path / "seg.nii.gz"
    code, stdout, err = run(["segment", str(series), "-o", str(out), "-c", str(tiny_checkpoint), "--classes", "liver", "-q"], capsys)
    assert code == 0, err
    assert "gantry-tilted by 20.0 degrees" in err
    affine = nib.load(out).affine
    columns = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    np.testing.assert_allclose(columns.T @ columns, np.eye(3), atol=1e-6)  # orthogonal: no shear left
    assert "wrote" in stdout


# ---- click_only ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_click_only_writes_no_marker_and_reports_the_object():
    """The case as reported, with the installed script and the shipped demo model."""
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    out = REPO / "out" / "click_only.nii.gz"  # /out/ is git-ignored
    if out.exists():
        out.unlink()
    done = script("segment", str(ct), "-o", str(out), "--point", "81,58,19", "-q", timeout=600)
    assert done.returncode == 0, done.stderr
    labels = np.asarray(nib.load(out).dataobj)
    assert set(np.unique(labels).tolist()) <= {0, 1}  # never the pipeline's 255 "not predicted"
    assert "DEMO model" in done.stderr  # the shipped model on a real CT says what it is
    assert "  object  " in done.stdout or "the object is empty" in done.stdout
    assert "supported point embedding" in done.stdout and "--new-structure" in done.stdout
    if not (labels == 1).any():
        assert "the object is empty" in done.stdout and "try another click" in done.stdout
    out.unlink()


# ---- two_series -----------------------------------------------------------------------------------


def _two_series(tmp_path: Path) -> tuple[Path, str, str]:
    """The tilted case's files split into two series (the upper ten slices get their own UID)."""
    folder = tmp_path / "two_series"
    folder.mkdir()
    second = "1.2.826.0.1.3680043.8.498.99999"
    first = ""
    for k, path in enumerate(sorted(shared_file("cases", "gantry_tilt", "series").glob("*.dcm"))):
        ds = pydicom.dcmread(path)
        first = str(ds.SeriesInstanceUID)
        if k >= 10:
            ds.SeriesInstanceUID, ds.SeriesDescription = second, "upper half"
        ds.save_as(folder / path.name)
    return folder, first, second


def test_two_series_lists_them_and_series_uid_picks_one(tiny_checkpoint, tmp_path, capsys):
    folder, first, second = _two_series(tmp_path)
    out = tmp_path / "seg.nii.gz"
    argv = ["segment", str(folder), "-o", str(out), "-c", str(tiny_checkpoint), "--classes", "liver", "-q"]
    code, _, err = run(argv, capsys)
    line = _error_line(err)
    assert code == 2 and first in line and second in line and "upper half" in line and "10 slices" in line
    assert "--series-uid" in line and not out.exists()
    code, _, err = run([*argv, "--series-uid", second], capsys)
    assert code == 0, err
    assert nib.load(out).shape[2] == 10
    # every command that reads DICOM takes the option
    for command in ("segment", "segment-segvol", "identify", "supervoxels", "pseudo-masks", "overlay"):
        code, stdout, _ = run([command, "--help"], capsys)
        assert code == 0 and "--series-uid" in stdout, command


# ---- huge_header, empty_axis ---------------------------------------------------------------------------


def _nifti_claiming(path: Path, shape: tuple[int, int, int], data_bytes: int) -> Path:
    header = nib.Nifti1Header()
    header.set_data_dtype(np.int16)
    header.set_data_shape(shape)
    header.set_zooms((1.0, 1.0, 1.0))
    header["vox_offset"] = 352
    with open(path, "wb") as handle:
        handle.write(header.binaryblock + b"\0\0\0\0" + bytes(data_bytes))
    return path


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((20000, 20000, 20000), "header describes 20000x20000x20000 int16 voxels (16.0 TB)"),
        ((64, 64, 0), "header shape (64, 64, 0) has an empty axis"),
    ],
    ids=["huge_header", "empty_axis"],
)
def test_bad_headers_exit_2_before_any_allocation(shape, expected, tiny_checkpoint, tmp_path, capsys):
    path = _nifti_claiming(tmp_path / "bad.nii", shape, 4096)
    out = tmp_path / "seg.nii.gz"
    code, _, err = run(["segment", str(path), "-o", str(out), "-c", str(tiny_checkpoint), "--classes", "liver"], capsys)
    assert code == 2 and expected in _error_line(err) and not out.exists()


# ---- read_only_output, missing_output_folder ----------------------------------------------------------------


def _in_namespace(argv: list[str], *, root: bool, mount_ro: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` in a new user namespace (any user may create one where the kernel allows it)
    with a private mount namespace.

    Args:
        root: be root inside the namespace (it may mount there); else an unmapped user, whom file
            permissions bind even when the real user is root.
        mount_ro: first mount a read-only tmpfs on this folder, seen by ``argv`` alone (needs ``root``).
    """
    if shutil.which("unshare") is None:
        pytest.fail("util-linux unshare is needed (apt-get install util-linux)")
    user = ["--user", "--map-root-user"] if root else ["--user"]
    namespace = ["unshare", *user, "--mount", "--propagation", "private", "--"]
    probe = subprocess.run([*namespace, "true"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"this kernel lets no user create namespaces: {probe.stderr.strip()}")
    if mount_ro is not None:
        shell = 'mount -t tmpfs -o ro tmpfs "$1" || exit 77; shift; exec "$@"'
        namespace += ["sh", "-c", shell, "sh", str(mount_ro)]
    done = subprocess.run([*namespace, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode != 77, f"cannot mount a read-only tmpfs in the namespace: {done.stderr}"
    return done


def test_read_only_output_folder_is_one_line_exit_2(tmp_path):
    """A real read-only file system (a tmpfs mounted read-only in a private mount namespace): for
    every user, root included."""
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    folder = tmp_path / "ro"
    folder.mkdir()
    argv = [str(SCRIPT), "segment", str(ct), "-o", str(folder / "seg.nii.gz"), "--classes", "liver"]
    done = _in_namespace(argv, root=True, mount_ro=folder)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert _error_line(done.stderr) == (
        f"error: {folder / 'seg.nii.gz'}: cannot write into folder {folder} (read-only file system)"
    )
    assert not list(folder.iterdir())  # the mount was private: the real folder is untouched


def test_folder_without_write_permission_is_one_line_exit_2(tmp_path):
    """A folder whose permissions deny writing, run as a user they bind: root's right to override
    them does not reach into a user namespace where it is not root."""
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        argv = [str(SCRIPT), "segment", str(ct), "-o", str(folder / "seg.nii.gz"), "--classes", "liver"]
        done = _in_namespace(argv, root=False)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert _error_line(done.stderr) == (
        f"error: {folder / 'seg.nii.gz'}: cannot write into folder {folder} (permission denied)"
    )
    assert not list(folder.iterdir())


def test_missing_output_folder_is_created(tiny_checkpoint, tmp_path, capsys):
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    out = tmp_path / "new" / "deeper" / "seg.nii.gz"
    code, _, err = run(["segment", str(ct), "-o", str(out), "-c", str(tiny_checkpoint), "--classes", "liver", "-q"], capsys)
    assert code == 0 and out.is_file(), err


def test_output_path_is_checked_before_the_model(tmp_path, capsys):
    """A bad output suffix is reported before the (missing) checkpoint is even looked at."""
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    argv = ["segment", str(ct), "-o", str(tmp_path / "seg.txt"), "-c", str(tmp_path / "missing.pt"), "--classes", "liver"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "seg.txt" in _error_line(err) and "missing.pt" not in err
    (tmp_path / "folder.nii.gz").mkdir()
    argv[3] = str(tmp_path / "folder.nii.gz")
    code, _, err = run(argv, capsys)
    assert code == 2 and "folder.nii.gz" in _error_line(err) and "missing.pt" not in err


# ---- not_hu ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rescaled", "mr-like"])
def test_intensities_that_are_not_hu_get_a_warning(kind, tiny_checkpoint, tmp_path, capsys):
    source = nib.load(shared_file("data", "totalseg", "example_ct_sm.nii.gz"))
    hu = np.asarray(source.dataobj, dtype=np.float32)
    if kind == "rescaled":
        values = (hu - hu.min()) / (hu.max() - hu.min())
    else:  # no air at -1000, no negatives: what an MR looks like to a CT model
        values = np.clip(hu + 1000.0, 0, None) * 1.7
    path = tmp_path / f"{kind}.nii.gz"
    nib.save(nib.Nifti1Image(values.astype(np.float32), source.affine), str(path))
    code, _, err = run(["segment", str(path), "-o", str(tmp_path / "seg.nii.gz"), "-c", str(tiny_checkpoint),
                        "--classes", "liver", "-q"], capsys)  # fmt: skip
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "do not look like CT Hounsfield units" in line]
    assert len(warnings) == 1, err
    code, _, err = run(["segment", str(shared_file("data", "totalseg", "example_ct_sm.nii.gz")), "-o",
                        str(tmp_path / "ok.nii.gz"), "-c", str(tiny_checkpoint), "--classes", "liver", "-q"], capsys)  # fmt: skip
    assert code == 0 and "Hounsfield" not in err


# ---- untrusted_checkpoint ------------------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_untrusted_pickle_checkpoint_is_refused_in_our_words(tmp_path, capsys):
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(2), "extra": _Payload(marker)}, evil)
    ct = shared_file("data", "totalseg", "example_ct_sm.nii.gz")
    code, _, err = run(["segment", str(ct), "-o", str(tmp_path / "seg.nii.gz"), "-c", str(evil), "--classes", "liver"], capsys)
    line = _error_line(err)
    assert code == 2 and "not a plain weights file" in line and "is not loaded" in line
    assert "weights_only" not in err and not marker.exists()


def test_console_script_is_the_one_tested():
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK), f"pip install -e . should put it next to {sys.executable}"

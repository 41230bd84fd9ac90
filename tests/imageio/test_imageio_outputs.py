"""Tests for check_output_path and the writers' folder handling: bad output paths are refused in
one line before any model work, missing folders are created, read-only folders never traceback."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from voxelprompt.errors import InputError
from voxelprompt.imageio import check_output_path, read_volume, write_text, write_volume, writers
from voxelprompt.types import Volume


def _tiny() -> Volume:
    return Volume(array=np.ones((2, 3, 4), np.float32), affine=np.diag([0.5, 0.7, 2.0, 1.0]))


@pytest.mark.parametrize("name", ["seg.nii.gz", "seg.nii", "seg.nrrd", "SEG.NII.GZ"])
def test_good_path_is_returned_and_leaves_nothing(name, tmp_path):
    assert check_output_path(str(tmp_path / name)) == tmp_path / name
    assert not list(tmp_path.iterdir())  # the write probe is removed


def test_missing_folders_are_created(tmp_path):
    target = tmp_path / "new" / "deeper" / "seg.nii.gz"
    assert check_output_path(target) == target
    assert target.parent.is_dir()
    assert not list(target.parent.iterdir())


@pytest.mark.parametrize("name", ["seg.png", "seg", "seg.nii.zip", "seg.nhdr"])
def test_bad_suffix(name, tmp_path):
    with pytest.raises(InputError, match=r"unknown output extension .*; expected \.nii\.gz, \.nii, \.nrrd") as info:
        check_output_path(tmp_path / "new" / name)
    assert name in str(info.value)
    assert not (tmp_path / "new").exists()  # nothing created for a path that is refused anyway


def test_other_suffixes(tmp_path):
    assert check_output_path(tmp_path / "report.json", suffixes=(".json", ".md")) == tmp_path / "report.json"
    with pytest.raises(InputError, match="expected .json, .md"):
        check_output_path(tmp_path / "report.nii.gz", suffixes=(".json", ".md"))


def test_existing_folder_is_refused(tmp_path):
    folder = tmp_path / "out.nii.gz"
    folder.mkdir()
    with pytest.raises(InputError, match="out.nii.gz: is a folder; give a file in it"):
        check_output_path(folder)
    with pytest.raises(InputError, match="is a folder"):
        write_volume(_tiny(), folder)


def test_parent_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "notes").write_text("a file\n")
    with pytest.raises(InputError, match="output folder .*notes is a file, not a folder"):
        check_output_path(tmp_path / "notes" / "seg.nii.gz")
    with pytest.raises(InputError, match="cannot create output folder .*(not a directory)"):
        check_output_path(tmp_path / "notes" / "deeper" / "seg.nii.gz")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_unwritable_folder_is_refused_simulated(code, tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(writers.os, "open", refuse)
    with pytest.raises(InputError) as info:
        check_output_path(tmp_path / "seg.nii.gz")
    reason = os.strerror(code)
    assert str(info.value) == (
        f"{tmp_path / 'seg.nii.gz'}: cannot write into folder {tmp_path} ({reason[0].lower()}{reason[1:]})"
    )


def test_write_on_read_only_folder_never_tracebacks_simulated(tmp_path, monkeypatch):
    # The writer fails before creating its temporary file, and removing that file fails too (as on
    # a read-only file system): the user gets one InputError, not the cleanup's OSError.
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(writers.nib, "save", refuse)
    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(InputError, match=r"cannot write file \(read-only file system\)"):
        write_volume(_tiny(), tmp_path / "seg.nii.gz")
    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(InputError, match=r"summary.json: cannot write file \(read-only file system\)"):
        write_text(tmp_path / "summary.json", "{}\n")


def test_writers_create_missing_folders(tmp_path):
    image = write_volume(_tiny(), tmp_path / "a" / "b" / "seg.nrrd")
    np.testing.assert_array_equal(read_volume(image).array, _tiny().array)
    text = write_text(tmp_path / "c" / "summary.json", "{}\n")
    assert text.read_text() == "{}\n"
    assert [p.name for p in text.parent.iterdir()] == ["summary.json"]


def test_folder_that_cannot_be_created(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(Path, "mkdir", refuse)
    target = tmp_path / "new" / "seg.nii.gz"
    calls = (lambda: check_output_path(target), lambda: write_volume(_tiny(), target), lambda: write_text(target, "x"))
    for call in calls:
        with pytest.raises(InputError, match=r"cannot create output folder .*new \(read-only file system\)"):
            call()


# ---- a real read-only file system --------------------------------------------------------------

_IN_NAMESPACE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from pathlib import Path
    from voxelprompt.errors import InputError
    from voxelprompt.imageio import check_output_path, write_text, write_volume
    from voxelprompt.types import Volume

    folder = Path(sys.argv[1])
    volume = Volume(np.ones((2, 2, 2), np.float32), np.eye(4))
    for call in (
        lambda: check_output_path(folder / "seg.nii.gz"),
        lambda: check_output_path(folder / "new" / "seg.nii.gz"),
        lambda: write_volume(volume, folder / "seg.nii.gz"),
        lambda: write_volume(volume, folder / "seg.nrrd"),
        lambda: write_text(folder / "summary.json", "{}"),
    ):
        try:
            call()
            print("no error")
        except InputError as err:
            print(err)
    """
)


def test_read_only_file_system_for_real(tmp_path):
    """Mount a read-only tmpfs in a private mount namespace (needs root and unshare)."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("no read-only file system: needs root and util-linux unshare to mount one privately")
    folder = tmp_path / "ro"
    folder.mkdir()
    # Exit 77 when the mount itself fails (no CAP_SYS_ADMIN, e.g. an unprivileged container).
    shell = 'mount -t tmpfs -o ro tmpfs "$1" 2>/dev/null || exit 77; exec "$2" -c "$3" "$1"'
    command = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", shell]
    command += ["sh", str(folder), sys.executable, _IN_NAMESPACE]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    if done.returncode == 77 or "unshare failed" in done.stderr:
        pytest.skip(f"cannot mount a read-only file system here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        f"{folder / 'seg.nii.gz'}: cannot write into folder {folder} (read-only file system)",
        f"{folder / 'new' / 'seg.nii.gz'}: cannot create output folder {folder / 'new'} (read-only file system)",
        f"{folder / 'seg.nii.gz'}: cannot write into folder {folder} (read-only file system)",
        f"{folder / 'seg.nrrd'}: cannot write into folder {folder} (read-only file system)",
        f"{folder / 'summary.json'}: cannot write into folder {folder} (read-only file system)",
    ]
    assert not list(folder.iterdir())  # the mount was private: the real folder is untouched

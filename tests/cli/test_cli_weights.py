"""``voxelprompt weights list|fetch|verify|path`` and ``-c NAME``: the installed console script in
a subprocess for what users see (one-line errors, exit 2, offline never connecting), and the
command in-process with a test entry in the registry for full downloads (the real entries'
sizes and digests cannot be served here). Every URL is on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import hashlib

import nibabel as nib
import numpy as np
import pytest
from cli_runner import run, script
from range_server import RangeServer, closed_port

from voxelprompt.weights import WEIGHTS, HashTrust, part_path, weight_path


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A private cache for this test (the subprocess inherits the environment)."""
    monkeypatch.setenv("VOXELPROMPT_HOME", str(tmp_path / "home"))
    for name in ("VOXELPROMPT_OFFLINE", "VOXELPROMPT_WEIGHTS_MIRRORS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def one_line_error(done) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.strip().splitlines() if not line.startswith("retrying ")]  # retry notes
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def test_list_shows_every_checkpoint_and_flags_unknown_hashes(home):
    done = script("weights", "list")
    assert done.returncode == 0, done.stderr
    assert f"cache: {home / 'weights'}" in done.stdout
    for name, weight in WEIGHTS.items():
        assert f"{name}  [{weight.family}]  {weight.file_name}" in done.stdout and weight.urls[0] in done.stdout
    assert "unverified upstream hash" in done.stdout and "no upstream sha256" in done.stdout
    assert done.stdout.count("not downloaded") == len(WEIGHTS)


def test_path_prints_the_cache_location(home):
    done = script("weights", "path", "vista3d-research")
    assert done.returncode == 0 and done.stdout.strip() == str(home / "weights" / "vista3d-research" / "model_monai1.3.pt")
    assert "not downloaded yet" in done.stderr
    assert "unknown weights 'nope'" in one_line_error(script("weights", "path", "nope"))
    assert "usage: voxelprompt weights" in script("weights").stderr and script("weights").returncode == 2


def test_fetch_rejects_bytes_that_do_not_match_the_record(home):
    weight = WEIGHTS["segvol-v1"]
    with RangeServer() as server:
        server.files["/segvol-v1/SegVol_v1.pth"] = b"not the SegVol weights" * 100
        line = one_line_error(script("weights", "fetch", "segvol-v1", "--mirror", server.url, "-q", timeout=60))
    assert "corrupt" in line and f"expected {weight.size_bytes:,}" in line
    assert [r.path for r in server.log] == ["/segvol-v1/SegVol_v1.pth"]
    assert not part_path(weight).exists() and not weight_path(weight).exists()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_offline_fetch_never_connects_and_says_where_to_place_the_file(home, monkeypatch, how):
    weight = WEIGHTS["vista3d-bundle"]
    with RangeServer() as server:
        server.files["/vista3d-bundle/model.pt"] = b"x"
        if how == "env":
            monkeypatch.setenv("VOXELPROMPT_OFFLINE", "1")
        args = ("weights", "fetch", "vista3d-bundle", "--mirror", server.url) + (("--offline",) if how == "flag" else ())
        line = one_line_error(script(*args, timeout=60))
    assert server.log == []
    assert str(weight_path(weight)) in line and weight.urls[0] in line and weight.md5 in line


def test_an_unreachable_mirror_is_a_one_line_error_without_retries(home):
    """Connection refused: retrying cannot help, so no retry; the line names the manual route."""
    url = f"http://127.0.0.1:{closed_port()}"
    done = script("weights", "fetch", "segvol-v1", "--mirror", url, "--retries", "3", "--timeout", "2", timeout=60)
    line = one_line_error(done)
    assert "cannot reach any source of segvol-v1" in line and url.removeprefix("http://") in line and "place it at" in line
    assert "retrying " not in done.stderr


def test_verify_reports_one_line_per_weight_and_fails_on_a_mismatch(home):
    done = script("weights", "verify")
    assert done.returncode == 0 and len(done.stdout.strip().splitlines()) == len(WEIGHTS)
    assert done.stdout.count(": missing: not downloaded") == len(WEIGHTS)
    assert "vista3d-bundle (missing)" in one_line_error(script("weights", "verify", "vista3d-bundle"))
    target = weight_path(WEIGHTS["vista3d-bundle"])
    target.parent.mkdir(parents=True)
    target.write_bytes(b"something else")
    done = script("weights", "verify")
    assert f"vista3d-bundle: mismatch: md5 {hashlib.md5(b'something else').hexdigest()}" in done.stdout
    assert "verification failed for vista3d-bundle (mismatch)" in one_line_error(done)


def test_a_checkpoint_name_that_is_not_fetched_is_a_one_line_error(home, ct_crop_path, tmp_path):
    line = one_line_error(script("segment", str(ct_crop_path), "-o", str(tmp_path / "o.nii.gz"), "-c", "vista3d-bundle"))
    assert "voxelprompt weights fetch vista3d-bundle" in line and not (tmp_path / "o.nii.gz").exists()
    # evaluate repeats -c: each value is resolved
    line = one_line_error(script("evaluate", "-o", str(tmp_path / "eval"), "-c", str(tmp_path / "x.pt"), "-c", "segvol-v1"))
    assert "voxelprompt weights fetch segvol-v1" in line and not (tmp_path / "eval").exists()


def test_fetch_resumes_verifies_and_the_name_loads_as_a_checkpoint(
    home, monkeypatch, tiny_checkpoint, ct_crop_path, tmp_path, capsys, one_thread
):
    data = tiny_checkpoint.read_bytes()
    weight = dataclasses.replace(
        WEIGHTS["vista3d-bundle"], name="test-vista3d", size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
        md5=None, trust=HashTrust.upstream,
    )
    monkeypatch.setitem(WEIGHTS, weight.name, weight)
    half = len(data) // 2
    with RangeServer() as server:
        server.files["/test-vista3d/model.pt"] = data
        server.drop_after["/test-vista3d/model.pt"] = [half]
        argv = ["weights", "fetch", "test-vista3d", "--mirror", server.url, "--retries", "0"]
        code, _, err = run(argv, capsys)
        assert code == 2 and f"{half:,} bytes kept" in err
        code, out, err = run(argv, capsys)  # the rerun asks only for the rest
        assert code == 0, err
    assert [r.range for r in server.log] == [None, f"bytes={half}-"]
    assert f"downloaded {len(data) - half:,} bytes" in out and "sha256 matches" in out
    assert weight_path(weight).read_bytes() == data and not part_path(weight).exists()

    code, out, _ = run(["weights", "verify", "test-vista3d"], capsys)
    assert code == 0 and out.strip() == "test-vista3d: ok: sha256 matches"
    code, out, _ = run(["weights", "fetch", "test-vista3d", "--offline"], capsys)  # cached: fine offline
    assert code == 0 and "already in the cache" in out

    by_name, by_path = tmp_path / "by_name.nii.gz", tmp_path / "by_path.nii.gz"
    for checkpoint, output in (("test-vista3d", by_name), (str(tiny_checkpoint), by_path)):
        code, _, err = run(["segment", str(ct_crop_path), "-o", str(output), "-c", checkpoint, "--classes", "liver", "-q"], capsys)
        assert code == 0, err
    np.testing.assert_array_equal(np.asarray(nib.load(by_name).dataobj), np.asarray(nib.load(by_path).dataobj))

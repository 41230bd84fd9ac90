"""Without -c, commands run the default model: the official VISTA3D weights when cached; else,
without consent (a script: stdin is no terminal), offline or unreachable, the demo model with one
line that says how to get the real weights. Unreachable sources are not retried. The installed
console script, against loopback addresses only."""

from __future__ import annotations

import os
import shutil

import pytest
from cli_runner import script
from range_server import closed_port


@pytest.fixture()
def env(tmp_path) -> dict[str, str]:
    """This environment with an empty weights cache of the test's own."""
    home = tmp_path / "home"
    variables = {k: v for k, v in os.environ.items() if k not in ("VOXELPROMPT_OFFLINE", "VOXELPROMPT_WEIGHTS_MIRRORS", "CI")}
    return {**variables, "VOXELPROMPT_HOME": str(home)}


def _segment(ct, out, env, *extra):
    return script("segment", str(ct), "-o", str(out), "--classes", "liver", "-q", *extra, env=env)


def _demo_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "DEMO model" in line]


def test_a_script_without_weights_gets_the_demo_model_and_one_line_on_the_real_ones(ct_crop_path, tmp_path, env):
    done = _segment(ct_crop_path, tmp_path / "s.nii.gz", env)
    assert done.returncode == 0, done.stderr
    lines = _demo_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "--download" in lines[0] and "voxelprompt weights fetch vista3d-bundle" in lines[0] and "872 MB" in lines[0]


def test_download_without_a_network_falls_back_in_one_line_without_retrying(ct_crop_path, tmp_path, env):
    env["VOXELPROMPT_WEIGHTS_MIRRORS"] = f"http://127.0.0.1:{closed_port()}"  # connection refused
    done = _segment(ct_crop_path, tmp_path / "s.nii.gz", env, "--download")
    assert done.returncode == 0, done.stderr
    lines = _demo_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert "cannot reach" in lines[0] and "place it at" in lines[0] and "6ce45a8edde4400c5d28d5e74d7b61d5" in lines[0]
    assert "retrying" not in done.stderr
    assert (tmp_path / "s.nii.gz").is_file()


def test_offline_says_so_and_names_the_manual_route(ct_crop_path, tmp_path, env):
    done = _segment(ct_crop_path, tmp_path / "s.nii.gz", env, "--offline")
    assert done.returncode == 0, done.stderr
    lines = _demo_lines(done.stderr)
    assert len(lines) == 1 and "offline" in lines[0] and "place it at" in lines[0], done.stderr
    assert "https://" in lines[0] and "voxelprompt weights verify vista3d-bundle" in lines[0]


def test_cached_official_weights_are_the_default(ct_crop_path, tiny_checkpoint, tmp_path, env):
    cached = tmp_path / "home" / "weights" / "vista3d-bundle" / "model.pt"
    cached.parent.mkdir(parents=True)
    shutil.copyfile(tiny_checkpoint, cached)  # stands in for the 872 MB file: what matters is where it lies
    done = _segment(ct_crop_path, tmp_path / "s.nii.gz", env)
    assert done.returncode == 0, done.stderr
    assert not _demo_lines(done.stderr), done.stderr
    assert str(cached) in done.stderr  # the "loaded ..." line names the file


def test_weights_fetch_without_a_network_fails_at_once_with_the_manual_route(env):
    done = script("weights", "fetch", "vista3d-bundle", "--mirror", f"http://127.0.0.1:{closed_port()}", env=env)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "retrying" not in done.stderr, done.stderr
    assert "cannot reach" in lines[0] and "place it at" in lines[0] and "verify vista3d-bundle" in lines[0]

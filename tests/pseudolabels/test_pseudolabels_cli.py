"""``voxelprompt supervoxels`` / ``pseudo-masks``: outputs on the input grid; bad output paths exit 2."""

from __future__ import annotations

import numpy as np
import pytest
from cli_runner import run

from voxelprompt.data import PhantomConfig, make_phantom
from voxelprompt.imageio import read_volume, write_volume


@pytest.fixture(scope="module")
def ct_path(tmp_path_factory):
    # LPS arrays and a non-cubic grid: the output must copy the input's exact geometry.
    image, _ = make_phantom(PhantomConfig(shape=(36, 32, 28), seed=5, orientation="LPS"))
    return write_volume(image, tmp_path_factory.mktemp("ct") / "case.nii.gz")


@pytest.mark.parametrize(
    "command", [["supervoxels", "--preset", "official", "--n-segments", "60"], ["pseudo-masks", "-k", "300"]]
)
def test_cli_writes_ids_on_the_input_grid(command, ct_path, tmp_path, capsys):
    out = tmp_path / "ids.nii.gz"
    code, stdout, stderr = run([command[0], str(ct_path), "-o", str(out), *command[1:]], capsys)
    assert code == 0, stderr
    assert str(out) in stdout
    image, ids = read_volume(ct_path), read_volume(out, dtype=None)
    assert ids.shape == image.shape and np.allclose(ids.affine, image.affine, atol=1e-4)
    assert np.issubdtype(ids.array.dtype, np.integer) and ids.array.max() > 1


def test_supervoxels_cache_dir_is_filled(ct_path, tmp_path, capsys):
    code, _, stderr = run(
        ["supervoxels", str(ct_path), "-o", str(tmp_path / "sv.nrrd"), "--preset", "paper", "--cache-dir", str(tmp_path / "c")],
        capsys,
    )
    assert code == 0, stderr
    assert len(list((tmp_path / "c").glob("case.supervoxels.*.npz"))) == 1


@pytest.mark.parametrize("name", ["ids.png", "a_folder.nii.gz"])
def test_bad_output_path_exits_2_before_work(name, ct_path, tmp_path, capsys):
    out = tmp_path / name
    if name.startswith("a_folder"):
        out.mkdir()
    code, _, stderr = run(["supervoxels", str(ct_path), "-o", str(out)], capsys)
    assert code == 2 and stderr.startswith("error:") and len(stderr.strip().splitlines()) == 1
    assert not out.is_file()


def test_missing_output_folder_is_created(ct_path, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "ids.nii.gz"
    code, _, stderr = run(["pseudo-masks", str(ct_path), "-o", str(out), "-k", "300"], capsys)
    assert code == 0, stderr
    assert out.is_file()


def test_unknown_preset_exits_2(ct_path, tmp_path, capsys):
    code, _, stderr = run(["supervoxels", str(ct_path), "-o", str(tmp_path / "x.nii.gz"), "--preset", "fast"], capsys)
    assert code == 2 and "is not one of 'official', 'paper'" in stderr and not (tmp_path / "x.nii.gz").exists()

"""A model family defined only in a test package (``tests/plugins/thresholds``), installed with pip
and registered through the ``voxelprompt.families`` entry point, driven through the installed
``voxelprompt`` console script (``segment``, ``batch``, ``classes``, ``info``) with no edit to voxelprompt."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from cli_runner import script
from plugin_family import plugin_env

pytestmark = pytest.mark.timeout(600)


def _ct(path):
    """A 40^3 CT in HU, 1.5 mm voxels: soft tissue, two bone blocks, a 2-voxel bone speck, an air pocket."""
    hu = np.full((40, 40, 40), 40.0, np.float32)
    hu[5:15, 5:15, 5:15] = 400.0
    hu[25:35, 5:15, 5:15] = 700.0
    hu[20:30, 20:30, 20:30] = -900.0
    hu[2, 30, 30:32] = 300.0
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    nib.save(nib.Nifti1Image(hu, affine), str(path))
    return hu


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin_ct")
    path = folder / "ct.nii.gz"
    return path, _ct(path)


def _labels(path):
    return np.asarray(nib.load(str(path)).dataobj)


def test_the_family_appears_in_the_command_line(thresholds_plugin):
    done = script("segment", "--help", env=plugin_env(thresholds_plugin))
    assert done.returncode == 0 and "--min-voxels" in done.stdout and "thresholds" in done.stdout
    assert "--min-voxels" not in script("segment", "--help").stdout  # not installed: not there


def test_segment_classes_by_the_family_s_own_names_and_options(thresholds_plugin, ct, tmp_path):
    path, hu = ct
    out = tmp_path / "seg.nii.gz"
    done = script("segment", str(path), "-o", str(out), "--model", "thresholds", "--classes", "bone,air",
                  "--min-voxels", "5", env=plugin_env(thresholds_plugin))  # fmt: skip
    assert done.returncode == 0, done.stderr
    labels = _labels(out)
    bone = (hu >= 200) & (hu <= 3071)
    bone[2, 30, 30:32] = False  # the speck is below --min-voxels
    expected = np.where(bone, 1, np.where(hu <= -500, 2, 0))
    np.testing.assert_array_equal(labels, expected)
    assert json.loads((tmp_path / "seg.label_names.json").read_text()) == {"1": "bone", "2": "air"}
    np.testing.assert_allclose(nib.load(str(out)).affine, nib.load(str(path)).affine)


def test_segment_clicks_pick_a_component_and_foreign_options_are_refused(thresholds_plugin, ct, tmp_path):
    path, hu = ct
    out = tmp_path / "click.nii.gz"
    env = plugin_env(thresholds_plugin)
    done = script("segment", str(path), "-o", str(out), "--model", "thresholds", "--point", "30,10,10", env=env)
    assert done.returncode == 0, done.stderr
    labels = _labels(out)
    assert labels.sum() == 1000 and labels[25:35, 5:15, 5:15].all()  # the clicked block, not the other one
    bad = script("segment", str(path), "-o", str(tmp_path / "x.nii.gz"), "--model", "thresholds", "--classes", "bone",
                 "--engine", "fast", env=env)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
        "error: --engine is not an option of thresholds (its options: --min-voxels)"
    )
    box = script("segment", str(path), "-o", str(tmp_path / "y.nii.gz"), "--model", "thresholds", "--box", "1,1,1,5,5,5", env=env)
    assert box.returncode == 2 and "box prompts need a model family that has them (segvol)" in box.stderr
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "y.nii.gz").exists()


def test_a_checkpoint_is_recognised_by_its_tensors(thresholds_plugin, ct, tmp_path):
    path, hu = ct
    checkpoint = tmp_path / "narrow.pt"
    torch.save({"thresholds.ranges": torch.tensor([[600.0, 3071.0], [-1024.0, -950.0], [-100.0, 199.0]])}, checkpoint)
    env = plugin_env(thresholds_plugin)
    info = script("info", str(checkpoint), env=env)
    assert info.returncode == 0 and "model family: thresholds" in info.stdout and "parameters: 0" in info.stdout
    listed = script("classes", "-c", str(checkpoint), "--plain", env=env)
    assert listed.returncode == 0 and listed.stdout.split("\n")[:3] == ["1\tbone", "2\tair", "3\tsoft tissue"]
    out = tmp_path / "seg.nii.gz"
    done = script("segment", str(path), "-o", str(out), "-c", str(checkpoint), "--classes", "bone", env=env)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(_labels(out), (hu >= 600).astype(np.uint8))  # this checkpoint's range
    # evaluate refuses a flag none of its models has, before reading any dataset.
    bad = script("evaluate", "--datalist", str(tmp_path / "none.json"), "-o", str(tmp_path / "ev"), "-c", str(checkpoint),
                 "--engine", "fast", env=env)  # fmt: skip
    assert bad.returncode == 2 and "--engine is not an option of the models given (thresholds)" in bad.stderr, bad.stderr


def test_batch_runs_the_family_with_its_options(thresholds_plugin, ct, tmp_path):
    path, hu = ct
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "a.nii.gz").write_bytes(path.read_bytes())
    env = plugin_env(thresholds_plugin)
    out = tmp_path / "out"
    bad = script("batch", str(cohort), "-o", str(out), "--task", "model=thresholds;classes=air;roi=8,8,8", timeout=300, env=env)
    assert bad.returncode == 2 and "--roi is not an option of thresholds (its options: --min-voxels)" in bad.stderr
    done = script("batch", str(cohort), "-o", str(out), "--model", "thresholds", "--classes", "bone,air",
                  "--min-voxels", "5", "-q", timeout=300, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    case = out / "a"
    labels = _labels(next(case.glob("*.nii.gz")))
    assert set(np.unique(labels).tolist()) == {0, 1, 2} and labels[hu <= -500].min() == 2
    assert json.loads((case / "label_names.json").read_text()) == {"1": "bone", "2": "air"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert "thresholds" in json.dumps(manifest) and '"min_voxels": 5' in json.dumps(manifest)

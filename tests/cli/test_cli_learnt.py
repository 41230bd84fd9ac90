"""Models declare the classes they learnt: a class prompt for one the loaded model never learnt is
refused in one line (exit 2), or run with --allow-unlearnt and marked; `classes -c MODEL` lists
the model's own set. Run through the installed console script, as users do."""

from __future__ import annotations

import json

import pytest
from cli_runner import script

from voxelprompt.catalog import RELEASED_VISTA3D_CLASSES, vista3d_catalog
from voxelprompt.families.vista3d.inference.default_model import DEMO_DIR


@pytest.fixture(scope="module")
def demo_classes() -> set[int]:
    return {int(c) for c in json.loads((DEMO_DIR / "model.json").read_text())["classes"]}


def test_a_class_the_demo_model_never_learnt_is_refused_in_one_line(ct_crop_path, demo_classes, tmp_path):
    prostate = vista3d_catalog().index("prostate")
    assert prostate not in demo_classes and prostate in RELEASED_VISTA3D_CLASSES  # the architecture knows it
    out = tmp_path / "seg.nii.gz"
    done = script("segment", str(ct_crop_path), "-o", str(out), "-c", "demo", "--classes", "liver,prostate", "-q")
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "prostate" in errors[0] and "never learnt" in errors[0] and "--allow-unlearnt" in errors[0]
    assert "classes -c demo" in errors[0]
    assert not out.exists()


def test_allow_unlearnt_runs_it_and_marks_it(ct_crop_path, tmp_path):
    out = tmp_path / "seg.nii.gz"
    done = script("segment", str(ct_crop_path), "-o", str(out), "-c", "demo", "--classes", "prostate", "-q", "--allow-unlearnt")
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    assert "UNLEARNT" in done.stdout and "prostate" in done.stdout


def test_classes_lists_the_models_own_set(demo_classes):
    demo = script("classes", "-c", "demo", "--plain")
    assert demo.returncode == 0, demo.stderr
    listed = {int(line.split("\t")[0]) for line in demo.stdout.splitlines()}
    assert listed == demo_classes and len(listed) == 35
    table = script("classes", "--plain")
    assert table.returncode == 0, table.stderr
    assert {int(line.split("\t")[0]) for line in table.stdout.splitlines()} == set(RELEASED_VISTA3D_CLASSES)


def test_classes_of_a_released_layout_checkpoint(tiny_checkpoint):
    done = script("classes", "-c", str(tiny_checkpoint), "--plain")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(RELEASED_VISTA3D_CLASSES) == 127


def test_batch_refuses_an_unlearnt_class_before_any_case(ct_crop_path, tmp_path):
    cohort = tmp_path / "cts"
    cohort.mkdir()
    (cohort / "a.nii.gz").write_bytes(ct_crop_path.read_bytes())
    done = script("batch", str(cohort), "-o", str(tmp_path / "out"), "-c", "demo", "--classes", "prostate", "-q")
    assert done.returncode == 2, done.stderr
    assert "never learnt" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "out" / "a").exists()

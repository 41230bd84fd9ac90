"""The evaluation runner: protocols, resumable results, reports, the CLI, datasets and label mappings."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from cli_runner import run as run_cli
from PIL import Image
from shared_paths import shared_file

from voxelprompt.data import PhantomConfig, write_phantom_dataset
from voxelprompt.evaluation import runner as runner_module
from voxelprompt.evaluation.adapters import RegionGrowModel
from voxelprompt.evaluation.datasets import (
    LabelMapping,
    load_dataset,
    load_mapping,
    read_case,
)
from voxelprompt.evaluation.results import COLUMNS
from voxelprompt.evaluation.runner import EvalConfig, evaluate

LIVER, SPLEEN = 1, 3
# 16^3 voxels of 3 mm holding liver and spleen: one 32^3 window at 1.5 mm, so the network runs fast.
SMALL = PhantomConfig(shape=(16, 16, 16), spacing=(3.0, 3.0, 3.0), center=(-30.0, -10.0, 30.0), lesions=False)
ROI = ["--roi", "32", "32", "32"]


@pytest.fixture(scope="module")
def phantom_datalist(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("phantoms"), n=2, config=SMALL, seed0=1)


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _logged_rows(out):
    lines = (out / "results.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if "case_classes" not in entry]


def _valid_png(path):
    with Image.open(path) as image:
        image.verify()
    return True


def test_cli_runs_vista3d_and_the_baseline_under_every_protocol(phantom_datalist, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--baseline", "region-grow", "--datalist", str(phantom_datalist),
            "--mode", "auto,point,auto+point", "--mode", "iterative", "--clicks", "2", "--classes", "spleen",
            *ROI, "--max-cases", "1", "--oracle-best-of", "2", "--output", str(out), "-q"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    rows = _csv(out / "results.csv")
    assert rows and tuple(rows[0]) == COLUMNS
    got = {(r["model"], r["mode"]) for r in rows}
    # The baseline has no automatic mode; everything else runs for both models. Models are named
    # after their family and file, so that a resumed run never mixes them up.
    vista = f"vista3d-{tiny_checkpoint.stem}"
    assert got == {(vista, m) for m in ("auto", "point", "auto+point", "iterative")} | {
        ("region-grow", m) for m in ("point", "iterative")
    }
    assert {r["class_name"] for r in rows} == {"spleen"}
    for model in (vista, "region-grow"):
        steps = [int(r["step"]) for r in rows if r["model"] == model and r["mode"] == "iterative"]
        assert sorted(steps) == [1, 2]
    point = [r for r in rows if r["mode"] == "point"]
    assert all(int(r["clicks"]) >= 1 and 0.0 <= float(r["dice"]) <= 1.0 for r in point)
    table = (out / "summary.md").read_text()
    assert "| spleen (3) |" in table and f"{vista} auto+point" in table and "region-grow iterative best@2" in table
    pngs = sorted(out.rglob("*.png"))
    assert (out / "dice_vs_clicks.png") in pngs and (out / f"box_{vista}_auto.png") in pngs
    assert any(p.name.startswith("worst_region-grow_point") for p in pngs)
    assert all(_valid_png(p) for p in pngs)


def test_iterative_protocol_gives_n_dice_values_and_monotone_best(phantom_datalist, tmp_path):
    dataset = load_dataset(phantom_datalist)
    config = EvalConfig(modes=("iterative",), clicks=5, classes=(LIVER, SPLEEN), progress=False)
    rows = evaluate([RegionGrowModel()], [dataset], tmp_path, config)
    for case in {r.case for r in rows}:
        for class_id in (LIVER, SPLEEN):
            group = sorted((r for r in rows if r.case == case and r.class_id == class_id), key=lambda r: r.step)
            assert [r.step for r in group] == [1, 2, 3, 4, 5]
            best = [r.best_dice for r in group]
            assert best == sorted(best)
            assert best == pytest.approx(np.maximum.accumulate([r.dice for r in group]).tolist())
            assert [r.clicks for r in group] == sorted(r.clicks for r in group) and group[0].clicks == 1


def test_clicks_are_deterministic(phantom_datalist, tmp_path):
    dataset = load_dataset(phantom_datalist)
    config = EvalConfig(modes=("point", "iterative"), clicks=3, classes=(SPLEEN,), progress=False)
    first = evaluate([RegionGrowModel()], [dataset], tmp_path / "a", config)
    second = evaluate([RegionGrowModel()], [dataset], tmp_path / "b", config)
    strip = lambda rows: sorted((dataclasses.replace(r, seconds=0.0) for r in rows), key=repr)  # noqa: E731
    assert strip(first) == strip(second)


def test_a_killed_run_resumes_without_duplicates(phantom_datalist, tmp_path, monkeypatch):
    dataset = load_dataset(phantom_datalist)
    config = EvalConfig(modes=("point", "iterative"), clicks=2, classes=(LIVER, SPLEEN), progress=False)
    reference = tmp_path / "reference"
    evaluate([RegionGrowModel()], [dataset], reference, config)

    original = runner_module._evaluate_case
    calls = []

    def dies_on_second_case(models, dataset, case, *args):
        calls.append(case.name)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        return original(models, dataset, case, *args)

    monkeypatch.setattr(runner_module, "_evaluate_case", dies_on_second_case)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        evaluate([RegionGrowModel()], [dataset], out, config)
    logged = _logged_rows(out)
    assert {r["case"] for r in logged} == {dataset.cases[0].name}
    monkeypatch.setattr(runner_module, "_evaluate_case", original)

    evaluate([RegionGrowModel()], [dataset], out, config)
    keys = [(r["case"], r["class_id"], r["mode"], r["step"]) for r in _logged_rows(out)]
    assert len(keys) == len(set(keys)) == 2 * 2 * (1 + 2)
    assert (out / "summary.md").read_text() == (reference / "summary.md").read_text()
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert drop_time(_csv(out / "results.csv")) == drop_time(_csv(reference / "results.csv"))


def test_a_finished_run_is_not_repeated(phantom_datalist, tmp_path, monkeypatch):
    dataset = load_dataset(phantom_datalist)
    config = EvalConfig(modes=("point",), classes=(SPLEEN,), progress=False)
    evaluate([RegionGrowModel()], [dataset], tmp_path, config)
    monkeypatch.setattr(runner_module, "read_case", lambda *a: pytest.fail("finished cases must not be re-read"))
    rows = evaluate([RegionGrowModel()], [dataset], tmp_path, config)
    assert len(rows) == 2


def test_totalseg_folder_maps_labels_to_vista3d_ids():
    folder = shared_file("data", "totalseg")
    dataset = load_dataset(folder)
    assert dataset.name == "totalseg"
    assert {c.name for c in dataset.cases} == {"example_ct_sm", "example_ct_dicom"}
    names = json.loads((folder / "classes.json").read_text())
    pairs = dict(dataset.mapping.pairs)
    assert len(pairs) == len(names) == 117
    # TotalSegmentator v2: 1 spleen, 2 kidney_right, 5 liver, 52 aorta -> VISTA3D 3, 5, 1, 6.
    assert (pairs[1], pairs[2], pairs[5], pairs[52]) == (3, 5, 1, 6)
    case = next(c for c in dataset.cases if c.name == "example_ct_sm")
    image, labels = read_case(case, dataset.mapping)
    raw = np.asarray(__import__("nibabel").load(str(case.label)).dataobj)
    assert labels.shape == image.shape
    np.testing.assert_array_equal(labels.array == 1, raw == 5)
    np.testing.assert_array_equal(labels.array == 3, raw == 1)


def test_msd_dataset_json_and_vista_mapping_file(tmp_path):
    import nibabel as nib

    labels = np.zeros((8, 8, 8), np.uint8)
    labels[2:4, 2:4, 2:4], labels[5:7, 5:7, 5:7] = 1, 2
    for folder, array in (("imagesTr", labels.astype(np.int16) * 100), ("labelsTr", labels)):
        (tmp_path / folder).mkdir()
        nib.save(nib.Nifti1Image(array, np.eye(4)), str(tmp_path / folder / "liver_0.nii.gz"))
    msd = {"name": "Task03_Liver", "labels": {"0": "background", "1": "liver", "2": "cancer"},
           "training": [{"image": "./imagesTr/liver_0.nii.gz", "label": "./labelsTr/liver_0.nii.gz"}],
           "test": ["./imagesTs/liver_9.nii.gz"]}
    (tmp_path / "dataset.json").write_text(json.dumps(msd))
    dataset = load_dataset(tmp_path)
    assert dataset.name == "Task03_Liver" and len(dataset.cases) == 1
    assert dict(dataset.mapping.pairs) == {1: 1}  # "cancer" has no VISTA3D name: ignored
    mapping_file = tmp_path / "label_mappings.json"
    mapping_file.write_text(json.dumps({"Task03": [[1, 1], [2, 26]]}))
    dataset = load_dataset(tmp_path / "dataset.json", mapping=mapping_file, name="Task03")
    _, mapped = read_case(dataset.cases[0], dataset.mapping)
    assert sorted(np.unique(mapped.array).tolist()) == [0, 1, 26]
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"1": "liver", "2": "hepatic tumor"}))
    assert dict(load_mapping(flat, "any").pairs) == {1: 1, 2: 26}


def test_label_mapping_ignores_unlisted_values():
    mapping = LabelMapping(pairs=((5, 1), (1, 3)))
    np.testing.assert_array_equal(mapping.apply(np.array([0, 1, 2, 5, 9])), [0, 3, 0, 1, 0])


def test_dicom_labels_in_another_orientation_are_aligned():
    folder = shared_file("data", "totalseg")
    dataset = load_dataset(folder)
    case = next(c for c in dataset.cases if c.name == "example_ct_dicom")
    image, labels = read_case(case, dataset.mapping)
    assert labels.shape == image.shape == (512, 512, 20)
    # The LAS label file is flipped along j relative to the DICOM (LPS) grid.
    liver = np.argwhere(labels.array == 1).mean(0)
    world = image.voxel_to_world(liver[None])[0]
    import nibabel as nib

    seg = nib.load(str(case.label))
    raw = np.argwhere(np.asarray(seg.dataobj) == 5).mean(0)
    np.testing.assert_allclose(world, (seg.affine @ [*raw, 1])[:3], atol=1.0)


def test_bad_options_are_user_errors(phantom_datalist, tmp_path, capsys):
    code, _, err = run_cli(["evaluate", "--datalist", str(phantom_datalist), "--output", str(tmp_path)], capsys)
    assert code == 2 and "nothing to evaluate" in err
    code, _, err = run_cli(["evaluate", "--baseline", "region-grow", "--datalist", str(phantom_datalist),
                            "--output", str(tmp_path), "--mode", "everything"], capsys)
    assert code == 2 and "unknown mode" in err
    code, _, err = run_cli(["evaluate", "--baseline", "region-grow", "--datalist", str(tmp_path / "missing.json"),
                            "--output", str(tmp_path)], capsys)
    assert code == 2 and "not found" in err


def test_vista3d_windows_map_to_input_boxes_that_cover_the_volume(ct_crop_path, tiny_net, tiny_spec):
    from voxelprompt.families.vista3d.evaluation import Vista3DEvalModel
    from voxelprompt.evaluation.clicks import patch_center_clicks
    from voxelprompt.imageio import read_volume
    from voxelprompt.families.vista3d.inference.profiles import get_profile
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

    segmenter = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("bundle").with_roi((32, 32, 32)))
    model = Vista3DEvalModel(segmenter)
    image = read_volume(ct_crop_path)
    model.prepare(image)  # pre-processing only: no network call
    boxes = model.patch_boxes()
    assert len(boxes) > 1
    covered = np.zeros(image.shape, bool)
    for box in boxes:
        covered[box] = True
        # A 32-voxel window at 1.5 mm spans 16 voxels of 3 mm (fewer where the volume ends).
        assert all(0 < s.stop - s.start <= 17 for s in box)
    assert covered.all()
    gt = np.zeros(image.shape, bool)
    gt[5:30, 8:35, 4:16] = True
    for box, click in zip(boxes, patch_center_clicks(gt, boxes)):
        if click is not None:
            assert gt[click.coord] and all(s.start <= c < s.stop for c, s in zip(click.coord, box))
    assert model.windows == 0

"""Zero-shot (novel) objects: label values with no VISTA3D class, evaluated with clicks only (VISTA3D Sec. 5)."""

from __future__ import annotations

import csv
import json
import logging

import nibabel as nib
import numpy as np
import pytest
from cli_runner import run as run_cli
from cli_runner import script

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.data import PhantomConfig, write_phantom_dataset
from voxelprompt.evaluation.adapters import RegionGrowModel
from voxelprompt.families.segvol.evaluation import SegVolEvalModel
from voxelprompt.families.vista3d.evaluation import Vista3DEvalModel
from voxelprompt.evaluation.datasets import LabelMapping, load_dataset, load_mapping
from voxelprompt.evaluation.novel import is_novel, novel_id
from voxelprompt.evaluation.runner import EvalConfig, evaluate

LIVER = 1
#: The phantom's spleen, relabelled to a value whose name VISTA3D does not know.
MASS_VALUE, MASS_NAME = 2, "splenic mass"
MASS = novel_id(MASS_VALUE)
SMALL = PhantomConfig(shape=(16, 16, 16), spacing=(3.0, 3.0, 3.0), center=(-30.0, -10.0, 30.0), lesions=False)
ROI = ["--roi", "32", "32", "32"]

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks (tests/conftest.py)


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    """One phantom case whose labels are named: liver (a VISTA3D class) and a mass (no class)."""
    folder = tmp_path_factory.mktemp("zeroshot")
    phantoms = json.loads(write_phantom_dataset(folder, n=1, config=SMALL, seed0=1).read_text())
    entry = phantoms["training"][0]
    label_path = folder / entry["label"]
    label = nib.load(str(label_path))
    values = np.asarray(label.dataobj).astype(np.uint8)
    assert (values == 3).any()  # the spleen becomes the novel object
    values = np.where(values == 3, MASS_VALUE, values).astype(np.uint8)
    nib.save(nib.Nifti1Image(values, label.affine), str(label_path))
    names = {"0": "background", str(LIVER): "liver", str(MASS_VALUE): MASS_NAME}
    path = folder / "named.json"
    path.write_text(json.dumps({"name": "named", "labels": names, "validation": [entry]}))
    return path


@pytest.fixture(scope="module")
def dataset(datalist):
    return load_dataset(datalist)


def _csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_label_values_without_a_class_map_to_novel_objects(dataset, tmp_path):
    assert dict(dataset.mapping.pairs) == {LIVER: LIVER} and dataset.mapping.novel == (MASS_VALUE,)
    assert is_novel(MASS) and MASS > vista3d_catalog().index("liver") and dataset.mapping.name(MASS) == MASS_NAME
    labels = np.array([0, 1, 2, 6])  # 6 (aorta's value) is not named: ignored
    np.testing.assert_array_equal(dataset.mapping.apply(labels), [0, LIVER, MASS, 0])
    # Identity (labels hold VISTA3D ids): unnamed ids and ids past the model's classes are novel.
    identity = load_dataset(write_phantom_dataset(tmp_path / "p", n=1, config=SMALL)).mapping
    np.testing.assert_array_equal(identity.apply(np.array([0, 3, 16, 200])), [0, 3, novel_id(16), novel_id(200)])
    # A mapping file marks a value novel with null; unlisted values stay ignored.
    file = tmp_path / "map.json"
    file.write_text(json.dumps({"ds": [[1, "liver"], [2, None]]}))
    mapping = load_mapping(file, "ds")
    np.testing.assert_array_equal(mapping.apply(np.array([0, 1, 2, 3])), [0, LIVER, novel_id(2), 0])
    assert LabelMapping(pairs=((1, 1),)).apply(np.array([2])).tolist() == [0]


class RecordingNet:
    """Records the ``prompt_class`` of every network call (a forward pre-hook on VISTA3D)."""

    def __init__(self, net):
        self.prompt_classes: list[int] = []
        self.handle = net.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        if kwargs.get("prompt_class") is not None:
            self.prompt_classes += [int(c) for c in kwargs["prompt_class"].flatten()]


def test_vista3d_evaluates_novel_objects_with_its_zero_shot_class_id(dataset, tiny_net, tiny_spec, tmp_path, caplog):
    from voxelprompt.families.vista3d.inference.profiles import get_profile
    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter

    segmenter = Vista3DSegmenter(tiny_net, tiny_spec, profile=get_profile("bundle").with_roi((32, 32, 32)))
    spy = RecordingNet(segmenter.net)
    config = EvalConfig(modes=("auto", "point", "iterative"), clicks=3, progress=False)
    try:
        with caplog.at_level(logging.INFO, logger="voxelprompt"):
            rows = evaluate([Vista3DEvalModel(segmenter)], [dataset], tmp_path, config)
    finally:
        spy.handle.remove()
    novel = [r for r in rows if r.zero_shot]
    # The novel object runs the click protocols only; the liver everything, as a class.
    assert {(r.mode, r.class_id, r.class_name) for r in novel} == {(m, MASS, MASS_NAME) for m in ("point", "iterative")}
    assert {r.mode for r in rows if r.class_id == LIVER and not r.zero_shot} == {"auto", "point", "iterative"}
    assert sorted(r.step for r in novel if r.mode == "iterative") == [1, 2, 3]
    assert all(0.0 <= r.dice <= 1.0 and r.reference_voxels > 0 for r in novel)
    # The network saw the novel object's id as its prompt class: above the last supported class.
    assert set(spy.prompt_classes) == {LIVER, MASS} and MASS > tiny_spec.last_supported
    assert f"{MASS_NAME} (value {MASS_VALUE})" in caplog.text and "evaluated as zero-shot" in caplog.text

    table = (tmp_path / "summary.md").read_text()
    zero_shot = table[table.index("## Zero-shot (novel objects)"):]
    assert f"| {MASS_NAME} ({MASS_VALUE}) |" in zero_shot and "vista3d iterative@1" in zero_shot
    assert "vista3d iterative@3" in zero_shot and "vista3d point" in zero_shot
    assert MASS_NAME not in table[: table.index("## Zero-shot")] and "| liver (1) |" in table
    csv_rows = _csv(tmp_path / "results.csv")
    assert {r["zero_shot"] for r in csv_rows if int(r["class_id"]) == MASS} == {"True"}
    assert {r["zero_shot"] for r in csv_rows if int(r["class_id"]) == LIVER} == {"False"}
    logged = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {e["zero_shot"] for e in logged if e.get("class_id") == MASS} == {True}
    assert (tmp_path / "dice_vs_clicks_zero_shot.png").exists() and (tmp_path / "box_zero-shot_vista3d_iterative.png").exists()


class RecordingSegVol(SegVolEvalModel):
    """Records the object of every call and the :class:`~voxelprompt.types.Prompts` SegVol's session received."""

    def __init__(self, segmenter):
        super().__init__(segmenter)
        self.calls = []

    def prepare(self, image):
        super().prepare(image)
        segment = self._session.segment

        def recording(prompts):
            self.calls.append((self._object, prompts))
            return segment(prompts)

        self._session.segment = recording

    def prompted(self, class_id, text, box=None, points=None):
        self._object = class_id
        return super().prompted(class_id, text, box, points)


def test_segvol_gets_points_without_text_for_novel_objects(dataset, tmp_path):
    from inference.segvol.segvol_fixtures import build_tiny_segvol

    from voxelprompt.families.segvol.inference import SegVolSegmenter

    model = RecordingSegVol(SegVolSegmenter(build_tiny_segvol(), mode="zoom-out"))
    config = EvalConfig(modes=("box+text", "points7", "iterative"), clicks=2, progress=False)
    rows = evaluate([model], [dataset], tmp_path, config)
    assert {(r.mode, r.zero_shot) for r in rows if r.class_id == MASS} == {("points7", True), ("iterative", True)}
    assert {r.mode for r in rows if r.class_id == LIVER} == {"box+text", "points7", "iterative"}
    # SegVol received the novel object's clicks alone: no text, no class, no box.
    novel_prompts = [p for object_id, p in model.calls if object_id == MASS]
    assert novel_prompts and all(p.text is None and not p.classes and p.box is None and len(p.points) for p in novel_prompts)
    assert {p.text for object_id, p in model.calls if object_id == LIVER} == {"liver"}
    # correction5 reaches novel objects only when it starts from points (its box start needs a class name).
    start_points = evaluate([model], [dataset], tmp_path / "p7", EvalConfig(modes=("correction5",), correction_start="points7", progress=False))
    assert any(r.class_id == MASS for r in start_points)
    start_box = evaluate([model], [dataset], tmp_path / "box", EvalConfig(modes=("correction5",), progress=False))
    assert not any(r.zero_shot for r in start_box)


def test_class_prompt_only_or_switched_off_ignores_novel_objects_and_says_so(dataset, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="voxelprompt"):
        rows = evaluate([RegionGrowModel()], [dataset], tmp_path / "off", EvalConfig(modes=("point",), zero_shot=False, progress=False))
    assert rows and not any(r.zero_shot for r in rows) and "zero-shot evaluation is off" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="voxelprompt"):
        rows = evaluate([RegionGrowModel()], [dataset], tmp_path / "auto", EvalConfig(modes=("auto",), progress=False))
    assert not rows and "prompt classes" in caplog.text and MASS_NAME in caplog.text
    # Clicks for novel objects next to class prompts for classes: zero_shot_modes.
    config = EvalConfig(modes=("auto",), zero_shot_modes=("iterative",), clicks=2, progress=False)
    rows = evaluate([RegionGrowModel()], [dataset], tmp_path / "mixed", config)
    assert {(r.mode, r.class_id) for r in rows} == {("iterative", MASS)}
    with pytest.raises(Exception, match="not a click protocol"):
        EvalConfig(zero_shot_modes=("auto",))


def test_cli_script_evaluates_novel_objects_by_default(datalist, tiny_checkpoint, tmp_path):
    """The installed console script, without --mode: liver automatic, the mass with iterative clicks."""
    out = tmp_path / "eval"
    done = script("evaluate", "--checkpoint", str(tiny_checkpoint), "--datalist", str(datalist), *ROI, "--clicks", "2",
                  "--output", str(out), "-q", "--device", "cpu", timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "evaluated as zero-shot (novel) objects" in done.stderr and MASS_NAME in done.stderr
    rows = _csv(out / "results.csv")
    got = {(r["class_name"], r["mode"], r["zero_shot"]) for r in rows}
    assert got == {("liver", "auto", "False"), (MASS_NAME, "iterative", "True")}
    assert "## Zero-shot (novel objects)" in (out / "summary.md").read_text()


def test_cli_classes_name_novel_objects_and_no_zero_shot_drops_them(datalist, tmp_path, capsys):
    base = ["evaluate", "--baseline", "region-grow", "--datalist", str(datalist), "--mode", "point", "-q"]
    code, _, err = run_cli([*base, "--classes", MASS_NAME, "--output", str(tmp_path / "on")], capsys)
    assert code == 0, err
    assert {(r["class_name"], r["zero_shot"]) for r in _csv(tmp_path / "on" / "results.csv")} == {(MASS_NAME, "True")}
    code, _, err = run_cli([*base, "--no-zero-shot", "--output", str(tmp_path / "off")], capsys)
    assert code == 0, err
    assert {r["class_name"] for r in _csv(tmp_path / "off" / "results.csv")} == {"liver"}
    assert "zero-shot evaluation is off" in err
    code, _, err = run_cli([*base, "--classes", "no such thing", "--output", str(tmp_path / "bad")], capsys)
    assert code == 2 and "no such thing" in err

"""SegVol protocols of the evaluation runner (box+text, points7, correction5) with a tiny random SegVol."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from cli_runner import run as run_cli
from inference.segvol.segvol_fixtures import build_tiny_segvol

from voxelprompt.catalog import vista3d_catalog
from voxelprompt.data import PhantomConfig, write_phantom_dataset
from voxelprompt.evaluation import runner as runner_module
from voxelprompt.evaluation.adapters import RegionGrowModel
from voxelprompt.families.segvol.evaluation import SegVolEvalModel
from voxelprompt.evaluation.datasets import load_dataset
from voxelprompt.evaluation.runner import CORRECTION_STEPS, EvalConfig, evaluate
from voxelprompt.families.segvol.inference import SegVolSegmenter

LIVER, SPLEEN = 1, 3
SMALL = PhantomConfig(shape=(16, 16, 16), spacing=(3.0, 3.0, 3.0), center=(-30.0, -10.0, 30.0), lesions=False)
SEGVOL_MODES = ("box+text", "points7", "correction5")


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks (tests/conftest.py)


@pytest.fixture(scope="module")
def datalist(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("phantoms"), n=1, config=SMALL, seed0=1)


@pytest.fixture(scope="module")
def dataset(datalist):
    return load_dataset(datalist)


@pytest.fixture(scope="module")
def segmenter():
    return SegVolSegmenter(build_tiny_segvol(), mode="zoom")


class RecordingSegVol(SegVolEvalModel):
    """Keeps the prompts of every call, to check what the protocols send."""

    def __init__(self, segmenter):
        super().__init__(segmenter)
        self.calls = []

    def prompted(self, class_id, text, box=None, points=None):
        self.calls.append((class_id, text, box, points))
        return super().prompted(class_id, text, box, points)


def _strip(rows):
    return sorted((dataclasses.replace(r, seconds=0.0) for r in rows), key=repr)


def test_segvol_protocols_rows_prompts_and_determinism(dataset, segmenter, tmp_path):
    config = EvalConfig(modes=(*SEGVOL_MODES, "point"), classes=(LIVER, SPLEEN), seed=3, progress=False)
    model = RecordingSegVol(segmenter)
    rows = evaluate([model, RegionGrowModel()], [dataset], tmp_path / "a", config)
    # The baseline runs no SegVol mode and SegVol no per-window mode.
    assert {(r.model, r.mode) for r in rows} == {("segvol", m) for m in SEGVOL_MODES} | {("region-grow", "point")}
    segvol = [r for r in rows if r.model == "segvol"]
    assert all(np.isfinite(r.dice) and 0.0 <= r.dice <= 1.0 and np.isfinite(r.nsd) for r in segvol)
    for class_id in (LIVER, SPLEEN):
        single = {r.mode: r for r in segvol if r.class_id == class_id and r.mode != "correction5"}
        assert single["box+text"].step == 1 and single["box+text"].clicks == 0
        assert single["points7"].clicks == 7
        group = sorted((r for r in segvol if r.class_id == class_id and r.mode == "correction5"), key=lambda r: r.step)
        assert [r.step for r in group] == list(range(CORRECTION_STEPS + 1))
        best = [r.best_dice for r in group]
        assert best == sorted(best) and best == pytest.approx(np.maximum.accumulate([r.dice for r in group]).tolist())
        assert group[0].dice == single["box+text"].dice  # starts from the box+text result
        assert [r.clicks for r in group] == sorted(r.clicks for r in group) and group[-1].clicks <= CORRECTION_STEPS

    # Prompts: the catalog name as text, the exact box, 4 positive + 3 negative points.
    catalog = vista3d_catalog()
    assert {text for _, text, _, _ in model.calls} == {catalog.name(LIVER), catalog.name(SPLEEN)}
    boxes = [box for _, _, box, points in model.calls if box is not None and points is None]
    assert len(boxes) == 2 * 2  # box+text and the start of correction5, per class
    seven = [points for _, _, box, points in model.calls if box is None]
    assert seven and all(len(p) == 7 and int(p.labels.sum()) == 4 for p in seven)
    corrections = [points for _, _, box, points in model.calls if box is not None and points is not None]
    assert corrections and all(1 <= len(p) <= CORRECTION_STEPS for p in corrections)

    table = (tmp_path / "a" / "summary.md").read_text()
    assert "segvol box+text" in table and "segvol points7" in table and f"segvol correction5 best@{CORRECTION_STEPS}" in table
    assert (tmp_path / "a" / "dice_vs_clicks.png").exists()

    again = evaluate([SegVolEvalModel(segmenter), RegionGrowModel()], [dataset], tmp_path / "b", config)
    assert _strip(again) == _strip(rows)
    # Another seed draws other points (the box is the same).
    other = RecordingSegVol(segmenter)
    evaluate([other], [dataset], tmp_path / "c", dataclasses.replace(config, modes=("points7",)))
    reseeded = RecordingSegVol(segmenter)
    evaluate([reseeded], [dataset], tmp_path / "d", dataclasses.replace(config, modes=("points7",), seed=4))
    coords = lambda m: [p.coords.tolist() for _, _, _, p in m.calls]
    assert coords(other) == [p.coords.tolist() for p in seven] and coords(reseeded) != coords(other)


def test_correction_can_start_from_points7(dataset, segmenter, tmp_path):
    config = EvalConfig(
        modes=("points7", "correction5", "iterative"), clicks=2, classes=(SPLEEN,), correction_start="points7", progress=False
    )
    rows = evaluate([SegVolEvalModel(segmenter)], [dataset], tmp_path, config)
    iterative = sorted((r for r in rows if r.mode == "iterative"), key=lambda r: r.step)
    assert [r.step for r in iterative] == [1, 2] and iterative[0].clicks == 1  # VISTA3D's clicks, plus text
    points7 = [r for r in rows if r.mode == "points7"]
    group = sorted((r for r in rows if r.mode == "correction5"), key=lambda r: r.step)
    assert len(points7) == 1 and len(group) == CORRECTION_STEPS + 1
    assert group[0].dice == points7[0].dice and group[0].clicks == 7  # the same seeded points
    assert all(7 <= r.clicks <= 7 + CORRECTION_STEPS for r in group)
    with pytest.raises(Exception, match="correction_start"):
        EvalConfig(modes=("correction5",), correction_start="text")


def test_cli_segvol_model(datalist, tmp_path, capsys):
    """A real (tiny) SegVol checkpoint through the CLI: recognised as SegVol, run at --segvol-mode."""
    import torch

    from voxelprompt.families.segvol.network.builder import tiny_segvol

    checkpoint = tmp_path / "segvol_tiny.pth"
    torch.save(tiny_segvol(seed=0).state_dict(), checkpoint)
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--datalist", str(datalist), "--classes", "spleen",
            "--mode", "box+text,correction5", "--segvol-mode", "zoom-out", "--output", str(out), "-q", "--device", "cpu"]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["model"], r["mode"]) for r in rows} == {("segvol-segvol_tiny", "box+text"), ("segvol-segvol_tiny", "correction5")}
    assert sorted(int(r["step"]) for r in rows if r["mode"] == "correction5") == list(range(CORRECTION_STEPS + 1))
    assert all(np.isfinite(float(r["dice"])) for r in rows)
    assert runner_module.MODES[-3:] == SEGVOL_MODES

"""``voxelprompt evaluate`` drives a family defined only in a test package (``voxelprompt-thresholds``,
installed by pip into a temporary folder and found through the ``voxelprompt.families`` entry
point): its checkpoints are recognised from their tensors, its evaluation adapter runs the
``auto`` and ``iterative`` protocols, and evaluate's own scoring writes the results."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import torch
from cli_runner import script
from plugin_family import plugin_env

BONE, AIR = 1, 2  # label values = the thresholds family's class ids (identity mapping)
CLICKS = 3


def _dataset(folder):
    """A 40 x 36 x 24 CT in HU (soft tissue at 40 HU) with a 700 HU bone block labelled 1 and a
    -900 HU air pocket labelled 2; a datalist JSON with one labelled ``testing`` entry."""
    ct = np.full((40, 36, 24), 40.0, dtype=np.float32)
    labels = np.zeros(ct.shape, dtype=np.uint8)
    bone, air = np.s_[4:14, 5:15, 3:13], np.s_[22:34, 20:30, 8:18]
    ct[bone], labels[bone] = 700.0, BONE
    ct[air], labels[air] = -900.0, AIR
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    nib.save(nib.Nifti1Image(ct, affine), folder / "case1.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), folder / "case1_seg.nii.gz")
    datalist = folder / "datalist.json"
    datalist.write_text(json.dumps({"name": "hu", "testing": [{"image": "case1.nii.gz", "label": "case1_seg.nii.gz"}]}))
    return datalist, int((labels == BONE).sum()), int((labels == AIR).sum())


def _checkpoint(path, bone_low: float):
    """A thresholds checkpoint: (3, 2) HU ranges of bone, air and soft tissue."""
    ranges = torch.tensor([[bone_low, 3071.0], [-1024.0, -500.0], [-100.0, 199.0]], dtype=torch.float32)
    torch.save({"thresholds.ranges": ranges}, path)
    return path


def test_evaluate_runs_a_plugin_family_with_auto_and_iterative(tmp_path, thresholds_plugin):
    datalist, bone_voxels, air_voxels = _dataset(tmp_path)
    good = _checkpoint(tmp_path / "hu.pt", 200.0)
    # Bone starts at 800 HU here: the 700 HU block is not bone for this checkpoint.
    narrow = _checkpoint(tmp_path / "narrow.pt", 800.0)
    out = tmp_path / "results"
    done = script(
        "evaluate", "--datalist", str(datalist), "--output", str(out), "--checkpoint", str(good),
        "--checkpoint", str(narrow), "--mode", "auto,iterative", "--clicks", str(CLICKS), "--device", "cpu", "--quiet",
        env=plugin_env(thresholds_plugin), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "summary.md").is_file()
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_key = {(r["model"], r["mode"], int(r["class_id"]), int(r["step"])): r for r in rows}
    assert {r["model"] for r in rows} == {"thresholds-hu", "thresholds-narrow"}
    assert {r["dataset"] for r in rows} == {"hu"} and {r["case"] for r in rows} == {"case1"}
    # Only the labelled classes are scored, by both protocols, the iterative one at every click.
    assert {int(r["class_id"]) for r in rows} == {BONE, AIR}
    # Named by the family's own class table, not VISTA3D's (whose 1 and 2 are liver and kidney).
    assert {(int(r["class_id"]), r["class_name"]) for r in rows} == {(BONE, "bone"), (AIR, "air")}
    expected = {("auto", 0)} | {("iterative", step) for step in range(1, CLICKS + 1)}
    for model in ("thresholds-hu", "thresholds-narrow"):
        for class_id in (BONE, AIR):
            assert {(m, s) for (name, m, c, s) in by_key if name == model and c == class_id} == expected

    reference = {BONE: bone_voxels, AIR: air_voxels}
    for (model, mode, class_id, step), row in by_key.items():
        assert int(row["reference_voxels"]) == reference[class_id]
        if model == "thresholds-narrow" and class_id == BONE:
            continue
        assert float(row["dice"]) > 0.999, row
        assert int(row["predicted_voxels"]) == reference[class_id], row
    # The checkpoint's ranges are what ran: the narrow bone range finds no bone in either protocol.
    for mode, step in expected:
        row = by_key[("thresholds-narrow", mode, BONE, step)]
        assert float(row["dice"]) == 0.0 and int(row["predicted_voxels"]) == 0, row
    assert "thresholds-hu" in (out / "summary.md").read_text()

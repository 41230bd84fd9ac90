"""The shipped demo model and ``voxelprompt demo``: real outputs of the trained weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxelprompt.data import PhantomConfig, make_phantom
from voxelprompt.demo import LESION_CLASS, ORGAN_CLASSES
from voxelprompt.evaluation.metrics import dice
from voxelprompt.families.vista3d.inference.default_model import DEMO_DIR, default_card, default_checkpoint, default_profile
from voxelprompt.families.vista3d.network import load_vista3d


def test_shipped_model_matches_its_card() -> None:
    card = default_card()
    path = default_checkpoint()
    assert path.stat().st_size <= 25e6
    net, spec = load_vista3d(path)
    assert spec.width == card["width"]
    assert sum(p.numel() for p in net.state_dict().values()) == card["parameters"]
    assert next(net.parameters()).dtype.is_floating_point and next(net.parameters()).dtype.itemsize == 4
    profile = default_profile()
    assert profile.spacing == tuple(card["spacing"]) and profile.roi_size == tuple(card["roi"])
    assert set(profile.everything) == set(card["classes"]) and LESION_CLASS not in profile.everything
    assert (DEMO_DIR / "MODEL_CARD.md").is_file()


@pytest.mark.slow
def test_segment_without_checkpoint_uses_the_demo_model(tmp_path, capsys) -> None:
    """Automatic liver and left upper lung lobe on an unseen phantom: trained weights, not noise
    (random weights score ~0; the model card's held-out Dice: liver 0.42, lobe 0.64)."""
    from cli_runner import run

    image, truth = make_phantom(PhantomConfig(shape=(96, 96, 144), seed=4321))
    from voxelprompt.imageio import write_volume

    ct = write_volume(image, tmp_path / "ct.nii.gz")
    code, out, err = run(["segment", str(ct), "-o", str(tmp_path / "seg.nii.gz"), "--classes", "liver,28", "-q"], capsys)
    assert code == 0, err
    import nibabel as nib

    labels = np.asarray(nib.load(str(tmp_path / "seg.nii.gz")).dataobj)
    gt = np.asarray(truth.array)
    assert labels.shape == gt.shape
    assert dice(labels == 1, (gt == 1) | (gt == LESION_CLASS)) > 0.2
    assert dice(labels == 28, gt == 28) > 0.3


@pytest.mark.slow
def test_demo_command_writes_files_and_scores_the_trained_model(tmp_path, capsys) -> None:
    from cli_runner import run

    out_dir = tmp_path / "demo"
    code, out, err = run(["demo", str(out_dir), "--seed", "3001"], capsys)
    assert code == 0, err
    for name in ("image", "ground_truth", "everything", "lesion_click", "everything_edited"):
        assert (out_dir / f"{name}.nii.gz").is_file()
    png = out_dir / "overlays.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out_dir / "summary.json").read_text())
    assert len(summary["organ_dice"]) >= len(ORGAN_CLASSES) - 2
    assert summary["mean_organ_dice"] > 0.2  # held-out mean 0.50 (model card); random weights ~0
    edit = summary["click_edit"]
    # The edit must not lower Dice. At this seed it edits the worst organ, which the demo model
    # misses (gallbladder, Dice 0.00 -> 0.00), so this cannot catch a lowering edit: see
    # test_demo_click_edit_lowers_no_found_organ for the edit on organs the model does find.
    assert edit["dice_after"] >= edit["dice_before"]
    assert ("did not improve" in summary["verdicts"]["click_edit"]) == (edit["dice_after"] <= edit["dice_before"])
    assert "mean organ Dice" in out
    # the click edit is answered by the interactive session: only the clicked window runs
    assert summary["windows"]["everything"] > 1 and summary["windows"]["click_edit"] <= 1
    # every feature gets a plain verdict, and a feature that scores 0 is called a failure
    verdicts = summary["verdicts"]
    assert set(verdicts) == {"everything", "lesion_click", "click_edit"}
    for key, score in (("lesion_click", summary["lesion_click"]["dice"]), ("click_edit", edit["dice_after"])):
        assert ("FAILED" in verdicts[key]) == (score == 0), verdicts[key]
        assert verdicts[key] in out


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="the shipped demo model's corrective click lowers Dice (measured at seed 3001: spleen "
    "0.484 -> 0.000, right lung upper lobe 0.672 -> 0.605); its MODEL_CARD.md: corrective clicks often make it worse",
)
def test_demo_click_edit_lowers_no_found_organ(one_thread) -> None:
    """``voxelprompt demo``'s edit (one corrective click, Algorithm 1, from the shown everything
    result) applied to every organ the demo model finds on the demo's phantom: none may get worse."""
    from voxelprompt import api
    from voxelprompt.evaluation.clicks import correction_click
    from voxelprompt.types import Points, PointSpace, Prompts

    seed = 3001
    image, truth = make_phantom(PhantomConfig(shape=(128, 128, 192), seed=seed))
    gt = np.asarray(truth.array)
    session = api.load_model(default_checkpoint(), device="cpu").open_session(image, edit_shown=True)
    pred = np.asarray(session.segment(Prompts(everything=True)).labels.array)
    found, lowered = [], []
    for organ in ORGAN_CLASSES:
        target = gt == organ
        before = dice(pred == organ, target)
        fix = correction_click(pred == organ, target, rng=seed, strategy="center")
        if not target.any() or before == 0 or fix is None:
            continue
        click = Points(np.asarray([fix.coord], np.float64), np.asarray([fix.label]), PointSpace.VOXEL)
        answer = np.asarray(session.segment(Prompts(classes=(organ,), points=click)).labels.array)
        edited = np.where(pred == organ, 0, pred)
        edited[answer == organ] = organ
        after = dice(edited == organ, target)
        found.append(organ)
        if after < before:
            lowered.append(f"{organ}: {before:.3f} -> {after:.3f}")
    assert len(found) >= 10  # the model finds most organs: the check covers them
    assert not lowered, f"the click edit lowered Dice: {', '.join(lowered)}"

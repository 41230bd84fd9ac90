"""SegVol training: SimMIM masking and loss, Algorithm 1's prompts and loss, the shared loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from voxelprompt.errors import InputError
from voxelprompt.families.segvol.network import SEGVOL_REGISTRY
from voxelprompt.training import load_recipe
from voxelprompt.families.segvol.training import SegVolRecipe, SegVolTrainer, SimMIM, random_patch_mask
from voxelprompt.families.segvol.training.prompts import COMBINATIONS, object_prompt, pseudo_target
from voxelprompt.families.segvol.training.recipe import build_pretrain, build_supervised


def _recipe(mode: str, datalist: Path, out: Path, **changes) -> SegVolRecipe:
    build = build_pretrain if mode == "pretrain" else build_supervised
    fields = {
        "model": "segvol_tiny",
        "steps": 4,
        "output_dir": str(out),
        "checkpoint_every": 100,
        "device": "cpu",
        "data": {"datalists": [str(datalist)]},
        "pseudo": {"k": 200.0, "min_size": 20, "min_fraction": 1e-3},
        "optim": {"lr": 1e-3},
    }
    fields.update(changes)
    return build(**fields)


# --- SimMIM ----------------------------------------------------------------------------------


def test_random_patch_mask_has_the_ratio_in_whole_units() -> None:
    mask = random_patch_mask((4, 8, 8), 0.6, (1, 2, 2), np.random.default_rng(0))
    assert mask.shape == (4, 8, 8)
    units = mask.reshape(4, 1, 4, 2, 4, 2)
    assert bool((units.all(axis=(1, 3, 5)) == units.any(axis=(1, 3, 5))).all())  # whole units only
    assert int(units.any(axis=(1, 3, 5)).sum()) == round(0.6 * 64)
    with pytest.raises(ValueError, match="divide"):
        random_patch_mask((4, 8, 8), 0.6, (3, 1, 1), np.random.default_rng(0))


def test_simmim_loss_is_the_mean_absolute_error_of_masked_voxels() -> None:
    net = SEGVOL_REGISTRY["segvol_tiny"]()
    simmim = SimMIM(net.image_encoder)
    image = torch.rand(1, 1, 8, 32, 32)
    mask = torch.zeros(2, 2, 2, dtype=torch.bool)
    mask[0, 1, 0] = True  # one patch: voxels d 0-3, h 16-31, w 0-15
    loss = simmim(image, mask)
    prediction = simmim.reconstruct(image, mask[None])
    expected = (prediction - image).abs()[..., 0:4, 16:32, 0:16].mean()
    torch.testing.assert_close(loss, expected)
    # The mask token really replaces the masked patch: its content does not reach the encoder.
    changed = image.clone()
    changed[..., 0:4, 16:32, 0:16] = 0.0
    torch.testing.assert_close(simmim.reconstruct(changed, mask[None]), prediction)


# --- prompts ---------------------------------------------------------------------------------


def test_object_prompt_points_and_box_come_from_the_mask() -> None:
    mask = np.zeros((8, 32, 32), dtype=bool)
    mask[2:6, 10:20, 5:15] = True
    prompt = object_prompt(mask, np.random.default_rng(1))
    labels = prompt.labels.numpy()
    assert labels.shape == (21,) and labels[0] == 1
    coords = prompt.points.numpy().astype(int)
    assert all(mask[tuple(c)] for c in coords[labels == 1])
    assert not any(mask[tuple(c)] for c in coords[labels == 0])
    assert prompt.box.tolist() == [2, 10, 5, 5, 19, 14]
    assert len(COMBINATIONS) == 6 and len(set(COMBINATIONS)) == 6


def test_pseudo_box_target_takes_masks_lying_inside_the_box() -> None:
    pseudo = np.zeros((8, 32, 32), dtype=np.int32)
    pseudo[1:7, 4:28, 4:28] = 1  # large mask
    pseudo[3:5, 10:14, 10:14] = 2  # small mask inside 1's box
    pseudo[0:8, 0:2, 0:2] = 3  # outside
    for seed in range(20):
        target, _ = pseudo_target(pseudo, np.random.default_rng(seed), use_box=True)
        if target[1, 4, 4]:  # mask 1 was drawn: mask 2 lies inside its box and joins
            assert target[3, 10, 10] and not target[0, 0, 0]
            break
    else:
        pytest.fail("mask 1 never drawn")
    points_target, _ = pseudo_target(pseudo, np.random.default_rng(seed), use_box=False)
    assert len(np.unique(pseudo[points_target])) == 1  # a point target is one mask


# --- training --------------------------------------------------------------------------------


def test_pretrain_loss_decreases_and_the_encoder_loads_into_segvol(phantom_datalist, tmp_path) -> None:
    recipe = _recipe("pretrain", phantom_datalist, tmp_path / "pre", steps=40, mask_ratio=0.5)
    trainer = SegVolTrainer(recipe, progress=False)
    result = trainer.fit()
    assert np.mean(result.losses[-8:]) < 0.7 * np.mean(result.losses[:4])
    supervised = _recipe("supervised", phantom_datalist, tmp_path / "sup", init=str(result.model))
    loaded = SegVolTrainer(supervised, progress=False).segvol
    for name, value in trainer.segvol.image_encoder.state_dict().items():
        torch.testing.assert_close(loaded.image_encoder.state_dict()[name], value)


def test_supervised_loop_uses_six_combinations_and_weighs_pseudo_masks(phantom_datalist, tmp_path, monkeypatch) -> None:
    recipe = _recipe("supervised", phantom_datalist, tmp_path / "a", steps=1)
    trainer = SegVolTrainer(recipe, progress=False)
    calls: list[dict] = []
    decode = trainer.segvol.decode

    def spy(embedding, **kwargs):
        calls.append({k: v is not None for k, v in kwargs.items()})
        return decode(embedding, **kwargs)

    monkeypatch.setattr(trainer.segvol, "decode", spy)
    trainer.train_step()
    gt_calls = calls[:6]
    names = (("text", "text_embedding"), ("box", "boxes"), ("points", "points"))
    kinds = {tuple(sorted(k for k, arg in names if c[arg])) for c in gt_calls}
    assert kinds == {tuple(sorted(k)) for k in COMBINATIONS}
    assert len(calls) == 6 + recipe.pseudo_rounds
    assert not any(c.get("text_embedding") for c in calls[6:])  # pseudo masks have no text
    parts = trainer.last_losses
    assert parts["pseudo"] > 0
    assert all(p.grad is None for p in trainer.segvol.text_encoder.parameters())
    # The returned loss is l_gt + 0.1 l_pseudo.
    again = SegVolTrainer(recipe, progress=False)
    loss = again._supervised_loss()
    torch.testing.assert_close(
        float(loss.detach()), again.last_losses["gt"] + 0.1 * again.last_losses["pseudo"], rtol=1e-5, atol=1e-5
    )


def test_supervised_loss_decreases_text_encoder_stays_frozen(phantom_datalist, tmp_path) -> None:
    recipe = _recipe("supervised", phantom_datalist, tmp_path / "s", steps=30, pseudo_rounds=2)
    trainer = SegVolTrainer(recipe, progress=False)
    text_before = {k: v.clone() for k, v in trainer.segvol.text_encoder.state_dict().items()}
    result = trainer.fit()
    assert np.mean(result.losses[-6:]) < np.mean(result.losses[:6])
    for name, value in trainer.segvol.text_encoder.state_dict().items():
        torch.testing.assert_close(value, text_before[name])
    assert result.model is not None and result.model.is_file()


def test_segvol_resume_repeats_the_uninterrupted_run(phantom_datalist, tmp_path) -> None:
    """4 steps straight == 2 steps, a restart from the checkpoint, 2 more."""
    straight = _recipe("supervised", phantom_datalist, tmp_path / "a", steps=4, pseudo_rounds=2)
    full = SegVolTrainer(straight, progress=False)
    full.fit()
    interrupted = _recipe("supervised", phantom_datalist, tmp_path / "b", steps=4, pseudo_rounds=2)
    partial = SegVolTrainer(interrupted, progress=False)
    while partial.step < 2:
        partial.losses.append(partial.train_step())
    partial.save_checkpoint()
    del partial
    torch.manual_seed(123)  # a different global RNG state; resume must not depend on it
    resumed = SegVolTrainer(interrupted, progress=False)
    resumed.fit(resume=True)
    assert resumed.losses == full.losses
    for name, value in full.segvol.state_dict().items():
        assert torch.equal(resumed.segvol.state_dict()[name], value), name


def test_segvol_recipe_files_and_errors(phantom_datalist, tmp_path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"family": "segvol", "base": "segvol-pretrain", "model": "segvol_tiny",
                                "data": {"datalists": [str(phantom_datalist)]}, "mask_unit": [1, 2, 2]}))  # fmt: skip
    recipe = load_recipe(path)
    assert isinstance(recipe, SegVolRecipe) and recipe.mode == "pretrain" and recipe.mask_unit == (1, 2, 2)
    assert isinstance(load_recipe("segvol-supervised"), SegVolRecipe)
    path.write_text(json.dumps({"family": "segvol", "model": "segvol_huge"}))
    with pytest.raises(InputError, match="segvol_huge"):
        load_recipe(path)
    path.write_text(json.dumps({"family": "nnunet"}))
    with pytest.raises(InputError, match="nnunet"):
        load_recipe(path)


def test_train_cli_runs_a_segvol_recipe(phantom_datalist, tmp_path, capsys) -> None:
    from cli_runner import run

    path = tmp_path / "pre.json"
    path.write_text(json.dumps({"family": "segvol", "base": "segvol-pretrain", "model": "segvol_tiny", "steps": 2,
                                "device": "cpu", "data": {"datalists": [str(phantom_datalist)]}}))  # fmt: skip
    code, out, _ = run(["train", str(path), "--output-dir", str(tmp_path / "run"), "-q"], capsys)
    assert code == 0, out
    assert (tmp_path / "run" / "model.pt").is_file() and "steps: 2" in out

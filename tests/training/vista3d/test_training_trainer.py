"""The training loop: loss goes down per stage, stage 3 freezing, exact resume, DDP, validation."""

from __future__ import annotations

import socket

import numpy as np
import pytest
import torch
from training_recipes import tiny_recipe
from monai.utils import set_determinism

from voxelprompt.families.vista3d.training.trainer import Trainer, case_weights


def _run(recipe, **kwargs):
    set_determinism(seed=recipe.seed)
    trainer = Trainer(recipe, progress=False, **kwargs)
    return trainer, trainer.fit()


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_stage1_point_branch_with_supervoxels_loss_goes_down(phantom_datalist_sv, tmp_path, monkeypatch):
    from voxelprompt.families.vista3d.training import prompts

    zero_shot_ids = []
    sample = prompts.sample_prompts

    def spy(*args, **kwargs):
        batch = sample(*args, **kwargs)
        zero_shot_ids.extend(c for c in batch.prompt_class[:, 0].tolist() if c > prompts.ZERO_SHOT_BASE)
        return batch

    monkeypatch.setattr("voxelprompt.families.vista3d.training.trainer.sample_prompts", spy)
    data = {"max_cases": 1, "label_set": [1, 3, 5, 6, 14], "supervoxels": True}
    recipe = tiny_recipe("stage1", phantom_datalist_sv, tmp_path, steps=8, data=data, optim={"lr": 3e-3}, val_every=0)
    assert recipe.prompts.zero_shot_source == "supervoxel"
    _, result = _run(recipe)
    assert zero_shot_ids  # supervoxel objects were trained with the zero-shot embedding
    first, last = np.mean(result.losses[:2]), np.mean(result.losses[-2:])
    assert last < 0.85 * first, result.losses
    # Validation of the point branch: one centre click per class of the validation case.
    assert set(result.val_dice) == {1, 3, 5, 6, 14}
    assert all(0.0 <= v <= 1.0 for v in result.val_dice.values())


def test_stage3_trains_the_auto_branch_with_the_encoder_frozen(phantom_datalist, tmp_path):
    recipe = tiny_recipe("stage3", phantom_datalist, tmp_path, steps=8, data={"max_cases": 1}, optim={"lr": 3e-3})
    set_determinism(seed=0)
    trainer = Trainer(recipe, progress=False)
    before = _snapshot(trainer.net)
    result = trainer.fit()
    changed = _changed(before, _snapshot(trainer.net))
    first, last = np.mean(result.losses[:2]), np.mean(result.losses[-2:])
    assert last < 0.85 * first, result.losses
    assert not any(k.startswith(("image_encoder.encoder.", "image_encoder.up_layers.", "point_head.")) for k in changed)
    assert any(k.startswith("class_head.") for k in changed)
    assert any(k.startswith("image_encoder.up_layers_auto.") for k in changed)
    assert (tmp_path / "model.pt").is_file() and (tmp_path / "checkpoint.pt").is_file()


def test_resume_continues_exactly(phantom_datalist, tmp_path):
    """4 steps straight == 2 steps, a fresh process-like restart from the checkpoint, 2 more."""
    prompts = {"iterations": 2, "max_foreground": 2}
    straight = tiny_recipe("stage2", phantom_datalist, tmp_path / "a", steps=4, prompts=prompts)
    trainer_a, result_a = _run(straight)

    first = tiny_recipe("stage2", phantom_datalist, tmp_path / "b", steps=4, checkpoint_every=2, prompts=prompts)
    set_determinism(seed=0)
    partial = Trainer(first, progress=False)
    while partial.step < 2:
        partial.losses.append(partial.train_step())
    partial.save_checkpoint()
    del partial
    set_determinism(seed=123)  # a different global RNG state; resume must not depend on it
    trainer_b = Trainer(first, progress=False)
    result_b = trainer_b.fit(resume=True)

    assert result_b.steps == 4
    assert result_a.losses == result_b.losses
    a, b = _snapshot(trainer_a.net), _snapshot(trainer_b.net)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_on_cpu_with_gloo_and_validation_dice(phantom_datalist, tmp_path, monkeypatch):
    from torch.nn.parallel import DistributedDataParallel

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    recipe = tiny_recipe("stage4", phantom_datalist, tmp_path, steps=1, val_every=0, data={"label_set": [1, 3, 5, 6]})
    trainer, result = _run(recipe, distributed=True)
    assert isinstance(trainer.model, DistributedDataParallel)
    assert np.isfinite(result.losses).all() and not torch.distributed.is_initialized()
    assert set(result.val_dice) == {1, 3, 5, 6}
    assert all(0.0 <= v <= 1.0 for v in result.val_dice.values())


def test_case_weights():
    names = ["a", "a", "a", "b"]
    assert np.allclose(case_weights(names, "case"), 0.25)
    assert np.allclose(case_weights(names, "uniform"), [1 / 6, 1 / 6, 1 / 6, 0.5])
    # weighted: every dataset alike times its weight (a: 1, b: 3), shared by its cases
    assert np.allclose(case_weights(names, "weighted", {"b": 3.0}), [1 / 12, 1 / 12, 1 / 12, 0.75])
    with pytest.raises(ValueError):
        case_weights(names, "other")


def _spy_prompts(monkeypatch) -> list[tuple[list[int], list[int]]]:
    """Record (label set, prompted class ids) of every prompt draw of the trainer."""
    from voxelprompt.families.vista3d.training import prompts

    calls = []

    def spy(labels, label_set, *args, **kwargs):
        batch = prompts.sample_prompts(labels, label_set, *args, **kwargs)
        calls.append((list(label_set), [] if batch is None else batch.prompt_class[:, 0].tolist()))
        return batch

    monkeypatch.setattr("voxelprompt.families.vista3d.training.trainer.sample_prompts", spy)
    return calls


def test_stage1_on_unlabeled_images_trains_zero_shot_objects_only(phantom_partial, tmp_path, monkeypatch):
    from voxelprompt.families.vista3d.training.prompts import ZERO_SHOT_BASE

    calls = _spy_prompts(monkeypatch)
    data = {"supervoxels": True, "label_set": [1, 3, 5, 6, 14]}
    prompts = {"iterations": 1}
    recipe = tiny_recipe("stage1", phantom_partial["unlabeled"], tmp_path, steps=2, data=data, prompts=prompts)
    _, result = _run(recipe)
    classes = [c for _, drawn in calls for c in drawn]
    assert classes and all(c > ZERO_SHOT_BASE for c in classes)  # nothing from the all-zero labels
    assert all(label_set == [] for label_set, _ in calls)
    assert np.isfinite([x for x in result.losses if not np.isnan(x)]).all() and result.steps == 2


def test_pseudo_classes_join_the_label_set_the_auto_branch_samples(phantom_partial, tmp_path, monkeypatch):
    calls = _spy_prompts(monkeypatch)
    data = {"label_mappings": {"partial": [[1, 1]]}, "pseudo_label_exclude": {"partial": [14]}}
    recipe = tiny_recipe("stage3", phantom_partial["partial"], tmp_path, steps=2, data=data)
    _run(recipe)
    label_set, drawn = calls[0]
    assert 1 in label_set and len(label_set) > 3 and 14 not in label_set  # liver + the kept pseudo classes
    assert any(c != 1 for c in drawn) and 14 not in drawn

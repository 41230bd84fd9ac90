"""Prompt sampling: class prompts, special point labels, zero-shot objects, iterative clicks."""

from __future__ import annotations

import random

import pytest
import torch

from voxelprompt.families.vista3d.training.prompts import (
    ZERO_SHOT_BASE,
    PromptConfig,
    next_clicks,
    object_mask,
    sample_prompts,
)


def _labels() -> torch.Tensor:
    lab = torch.zeros(1, 1, 24, 24, 24, dtype=torch.int32)
    lab[0, 0, 2:12, 2:12, 2:12] = 1  # liver
    lab[0, 0, 5:8, 5:8, 5:8] = 26  # hepatic tumour inside it (special, merged into liver)
    lab[0, 0, 14:20, 14:20, 14:20] = 3  # spleen
    return lab


def test_object_mask_applies_official_merges():
    lab = _labels()[0, 0]
    liver = object_mask(lab, 1)
    assert bool(liver[6, 6, 6]) and int(liver.sum()) == 1000
    assert int(object_mask(lab, 26).sum()) == 27


def test_point_branch_prompts_have_clicks_inside_their_objects():
    random.seed(0)
    lab = _labels()
    batch = sample_prompts(lab, [1, 3, 26, 5], PromptConfig(branch="point", max_foreground=4))
    assert batch.class_vector is None and batch.point_coords is not None
    assert sorted(batch.prompt_class[:, 0].tolist()) == [1, 3, 26]
    for b, cls in enumerate(batch.prompt_class[:, 0].tolist()):
        target = batch.targets[b, 0] > 0
        assert torch.equal(target, object_mask(lab[0, 0], cls))
        for xyz, value in zip(batch.point_coords[b].long(), batch.point_labels[b].tolist()):
            if value == -1:
                continue
            positive = value in (1, 3)
            assert bool(target[tuple(xyz)]) == positive
            # Ambiguous ("special") classes use labels 2/3, others 0/1.
            assert (value in (2, 3)) == (cls == 26)


def test_auto_branch_prompts_include_background_classes():
    random.seed(1)
    batch = sample_prompts(_labels(), [1, 3, 5, 6, 7], PromptConfig(branch="auto", max_foreground=32, max_background=2))
    assert batch.point_coords is None and batch.class_vector is not None
    classes = batch.class_vector[:, 0].tolist()
    assert {1, 3} <= set(classes) and len(classes) == 4
    for b, cls in enumerate(classes):
        assert bool(batch.targets[b].any()) == (cls in (1, 3))


def test_zero_shot_objects_from_supervoxels_use_ids_above_512():
    lab = _labels()
    sv = torch.zeros_like(lab)
    sv[0, 0, :, :, :12] = 1
    sv[0, 0, :, :, 12:] = 2
    config = PromptConfig(branch="point", zero_shot_source="supervoxel", max_zero_shot=2)
    seen = set()
    for seed in range(10):
        random.seed(seed)
        batch = sample_prompts(lab, [1, 3], config, supervoxels=sv)
        for b, cls in enumerate(batch.prompt_class[:, 0].tolist()):
            if cls > ZERO_SHOT_BASE:
                seen.add(cls)
                assert batch.targets[b].sum() >= 8
                assert set(batch.point_labels[b].tolist()) <= {-1.0, 0.0, 1.0}
    assert seen and min(seen) > 132


def test_no_foreground_means_no_point_prompts():
    empty = torch.zeros(1, 1, 16, 16, 16, dtype=torch.int32)
    assert sample_prompts(empty, [1, 3], PromptConfig(branch="point")) is None


@pytest.mark.parametrize("cls,pos,neg", [(3, 1.0, 0.0), (26, 3.0, 2.0)])
def test_next_clicks_land_in_false_negative_and_false_positive_regions(cls, pos, neg):
    random.seed(0)
    target = torch.zeros(1, 1, 20, 20, 20)
    target[0, 0, 2:10, 2:10, 2:10] = 1
    probs = torch.zeros_like(target)
    probs[0, 0, 2:10, 2:10, 2:6] = 0.9  # half the object found: FN in z 6..9
    probs[0, 0, 12:18, 12:18, 12:18] = 0.9  # a false positive blob
    coords, labels = next_clicks(probs, target, torch.zeros(1, 1, 3), torch.ones(1, 1), torch.tensor([[cls]]))
    assert coords.shape == (1, 3, 3) and labels.tolist() == [[1.0, pos, neg]]
    fn = (target[0, 0] > 0) & (probs[0, 0] < 0.5)
    fp = (target[0, 0] == 0) & (probs[0, 0] > 0.5)
    assert bool(fn[tuple(coords[0, 1].long())]) and bool(fp[tuple(coords[0, 2].long())])


def test_next_clicks_pad_when_the_prediction_is_right():
    target = torch.zeros(1, 1, 12, 12, 12)
    target[0, 0, 3:9, 3:9, 3:9] = 1
    _, labels = next_clicks(target.clone(), target, torch.zeros(1, 1, 3), torch.ones(1, 1), torch.tensor([[1]]))
    assert labels[0, 1:].tolist() == [-1.0, -1.0]

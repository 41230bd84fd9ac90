"""The easy interactive task (voxelprompt.data.blobs) and the stage-1 prompts drawn from it."""

from __future__ import annotations

import json
import random

import nibabel as nib
import numpy as np
import torch

from voxelprompt.data.blobs import BlobConfig, make_blob_case, write_blob_dataset
from voxelprompt.families.vista3d.training.prompts import ZERO_SHOT_BASE, PromptConfig, sample_prompts


def test_blob_case_has_labelled_and_zero_shot_objects_that_differ_by_contrast():
    config = BlobConfig(shape=(48, 48, 48), objects=(4, 4), seed=3)
    image, labels, objects, affine = make_blob_case(config)
    assert image.shape == labels.shape == objects.shape == (48, 48, 48)
    assert np.allclose(np.diag(affine)[:3], config.spacing)
    assert set(np.unique(labels)) - {0} <= set(config.classes) and labels.any()
    assert objects.any() and not (objects.astype(bool) & labels.astype(bool)).any()
    background = image[(labels == 0) & (objects == 0)]
    for mask in [labels == v for v in np.unique(labels) if v] + [objects == v for v in np.unique(objects) if v]:
        gap = abs(float(image[mask].mean()) - float(background.mean()))
        assert gap > 0.5 * config.contrast_hu[0]


def test_stage1_prompts_on_a_blob_case_click_inside_their_targets():
    image, labels, objects, _ = make_blob_case(BlobConfig(shape=(32, 32, 32), objects=(4, 4), seed=5))
    lab = torch.from_numpy(labels.astype(np.int32))[None, None]
    sv = torch.from_numpy(objects.astype(np.int32))[None, None]
    random.seed(0)
    config = PromptConfig(branch="point", zero_shot_source="supervoxel", max_zero_shot=2)
    seen_zero_shot = False
    for _ in range(10):
        prompts = sample_prompts(lab, [1, 3, 4, 5, 6], config, supervoxels=sv, image=torch.from_numpy(image)[None, None])
        assert prompts is not None
        for b in range(len(prompts)):
            target = prompts.targets[b, 0] > 0
            cls = int(prompts.prompt_class[b, 0])
            if cls > ZERO_SHOT_BASE:
                seen_zero_shot = True
            else:
                assert torch.equal(target, lab[0, 0] == cls)  # the loss sees the object the class names
            for (x, y, z), value in zip(prompts.point_coords[b].long().tolist(), prompts.point_labels[b].tolist()):
                if value == 1:
                    assert bool(target[x, y, z])  # positive clicks in the patch frame, inside the target
                elif value == 0:
                    assert not bool(target[x, y, z])
    assert seen_zero_shot


def test_write_blob_dataset_is_a_stage1_datalist(tmp_path):
    path = write_blob_dataset(tmp_path, 2, BlobConfig(shape=(32, 32, 32)), seed0=7)
    entries = json.loads(path.read_text())["training"]
    assert len(entries) == 2 and {"image", "label", "supervoxel"} <= set(entries[0])
    image = nib.load(str(tmp_path / entries[0]["image"]))
    again, *_ = make_blob_case(BlobConfig(shape=(32, 32, 32), seed=7))
    assert np.allclose(np.asarray(image.dataobj), again)

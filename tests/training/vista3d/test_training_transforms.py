"""Training transforms: patch geometry, intensity window, and per-dataset label remapping."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from voxelprompt.training.datalist import load_datalist
from voxelprompt.families.vista3d.training.transforms import (
    PatchConfig,
    label_set_of,
    read_label_mappings,
    train_transforms,
    val_transforms,
)

PATCH = PatchConfig(roi=(32, 32, 32), spacing=(10.0, 10.0, 10.0))


@pytest.mark.parametrize("crop", ["classes", "random"])
def test_training_patch(phantom_datalist, crop):
    case = load_datalist(phantom_datalist).training[0]
    tf = train_transforms(PatchConfig(roi=(32, 32, 32), spacing=(10.0, 10.0, 10.0), crop=crop))
    tf.set_random_state(seed=0)
    out = tf(case.as_dict())
    sample = out[0] if isinstance(out, list) else out
    assert tuple(sample["image"].shape) == (1, 32, 32, 32)
    assert tuple(sample["label"].shape) == (1, 32, 32, 32)
    assert sample["label"].dtype == torch.int32
    image = torch.as_tensor(sample["image"])
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert int(torch.as_tensor(sample["label"]).max()) > 0


def test_label_remapping_to_global_ids(tmp_path):
    """A dataset's local ids 1, 2 become global 3 (spleen) and 5 (liver... any target) via Relabeld."""
    image = np.full((20, 20, 20), -1000, np.int16)
    image[4:16, 4:16, 4:16] = 40
    label = np.zeros((20, 20, 20), np.uint8)
    label[5:9, 5:15, 5:15] = 1
    label[10:14, 5:15, 5:15] = 2
    label[15, 5:15, 5:15] = 7  # not in the mapping: left as is, and outside the label set
    affine = np.diag([10.0, 10.0, 10.0, 1.0])
    (tmp_path / "im").mkdir()
    nib.save(nib.Nifti1Image(image, affine), str(tmp_path / "im" / "a.nii.gz"))
    nib.save(nib.Nifti1Image(label, affine), str(tmp_path / "im" / "a_seg.nii.gz"))
    (tmp_path / "list.json").write_text(
        json.dumps({"training": [{"image": "im/a.nii.gz", "label": "im/a_seg.nii.gz", "dataset": "toy"}]})
    )
    mappings = read_label_mappings({"toy": [[1, 3], [2, 5]]})
    case = load_datalist(tmp_path / "list.json").training[0]
    out = val_transforms(PATCH, mappings)(case.as_dict())
    values = set(torch.unique(torch.as_tensor(out["label"])).tolist())
    assert {3, 5} <= values and not {1, 2} & values
    assert label_set_of("toy", mappings, default=range(1, 133)) == [3, 5]
    assert label_set_of("other", mappings, default=[1, 2]) == [1, 2]


def test_official_label_mappings_file():
    from shared_paths import shared_file

    mappings = read_label_mappings(shared_file("fixtures", "vista3d", "label_mappings.json"))
    assert (2, 5) in mappings["FLARE22"]
    assert 5 in label_set_of("FLARE22", mappings, default=())


def test_patch_config_rejects_bad_roi():
    with pytest.raises(ValueError, match="multiples of 16"):
        PatchConfig(roi=(30, 32, 32))

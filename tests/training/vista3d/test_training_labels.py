"""Label maps of training cases: unlabeled images get an empty map, pseudo labels fill the manual
labels' background except for the dataset's own classes and excluded ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from voxelprompt.training.datalist import load_datalist
from voxelprompt.families.vista3d.training.labels import (
    LABELED_KEY,
    PSEUDO_CLASSES_KEY,
    EmptyLabeld,
    MergePseudoLabeld,
    merge_pseudo_labels,
)
from voxelprompt.families.vista3d.training.transforms import PatchConfig, train_transforms

# Patches as big as the padded volume, so the "random" crop keeps everything.
WHOLE = PatchConfig(roi=(32, 32, 32), spacing=(20.0, 20.0, 20.0), crop="random")


def test_merge_keeps_manual_classes_and_fills_background_with_the_rest():
    gen = torch.Generator().manual_seed(0)
    manual = torch.randint(0, 3, (1, 6, 6, 6), generator=gen)  # dataset annotates 1 and 2
    pseudo = torch.randint(0, 6, (1, 6, 6, 6), generator=gen)  # the labeller knows 1..5
    merged = merge_pseudo_labels(manual, pseudo, manual_classes=[1, 2], exclude=[5])
    for m, p, out in zip(manual.flatten().tolist(), pseudo.flatten().tolist(), merged.flatten().tolist()):
        if m > 0:
            assert out == m  # a manual voxel always wins
        elif p in (3, 4):
            assert out == p  # a class the dataset does not annotate fills its background
        else:
            assert out == 0  # the dataset's own classes (its background is true) and excluded ones
    assert {3, 4} <= set(merged.unique().tolist()) and 5 not in merged.unique().tolist()
    with pytest.raises(ValueError, match="shape"):
        merge_pseudo_labels(manual, pseudo[..., :3], [1])


def test_merge_transform_records_the_kept_pseudo_classes():
    manual = torch.zeros(1, 4, 4, 4, dtype=torch.int16)
    manual[0, 0] = 1
    pseudo = torch.zeros(1, 4, 4, 4)
    pseudo[0, 0], pseudo[0, 1], pseudo[0, 2], pseudo[0, 3, 0] = 1, 3, 7, 9
    merge = MergePseudoLabeld(lambda dataset, labeled: [1] if labeled else [], {"ds": [7], "*": [9]})
    out = merge({"label": manual, "pseudo_label": pseudo, "dataset_name": "ds"})
    assert "pseudo_label" not in out and out[PSEUDO_CLASSES_KEY] == (3,)
    assert out["label"].dtype == torch.int16
    other = merge({"label": manual, "pseudo_label": pseudo, "dataset_name": "other"})
    assert other[PSEUDO_CLASSES_KEY] == (3, 7)  # "ds"'s exclusion does not apply, "*"'s does
    unlabeled = merge({"label": manual * 0, "pseudo_label": pseudo, "dataset_name": "x", LABELED_KEY: False})
    assert unlabeled[PSEUDO_CLASSES_KEY] == (1, 3, 7)  # an unlabeled case annotates nothing itself
    untouched = merge({"label": manual, "dataset_name": "ds"})
    assert torch.equal(untouched["label"], manual) and PSEUDO_CLASSES_KEY not in untouched


def test_empty_label_on_the_image_grid():
    image = torch.rand(1, 5, 6, 7)
    out = EmptyLabeld()({"image": image})
    assert out["label"].shape == image.shape and not out["label"].any() and out[LABELED_KEY] is False
    labelled = EmptyLabeld()({"image": image, "label": torch.ones(1, 5, 6, 7)})
    assert LABELED_KEY not in labelled and labelled["label"].all()


def _whole(tf, case) -> dict:
    tf.set_random_state(seed=0)
    out = tf(case.as_dict())
    return out[0] if isinstance(out, list) else out


def test_training_transforms_merge_pseudo_labels_after_relabel(phantom_partial):
    """Oracle: the same pipeline run on the manual label alone and on the pseudo label alone."""
    case = load_datalist(phantom_partial["partial"]).training[0]
    mappings = {"partial": [[1, 1]]}  # the dataset annotates the liver only
    merge = MergePseudoLabeld(lambda ds, labeled: [1] if labeled else [], {"partial": [14]})
    merged = _whole(train_transforms(WHOLE, mappings, pseudo_labels=merge), case)
    plain = train_transforms(WHOLE, mappings)
    manual = np.asarray(_whole(plain, case)["label"])
    pseudo = np.asarray(_whole(plain, dataclasses.replace(case, label=case.pseudo_label, pseudo_label=None))["label"])
    keep = (manual == 0) & (pseudo != 1) & (pseudo != 14)
    expected = np.where(keep, pseudo, manual)
    assert np.array_equal(np.asarray(merged["label"]), expected)
    assert ((pseudo == 1) & (manual == 0)).any()  # the pseudo liver the manual label leaves out is dropped
    assert set(merged[PSEUDO_CLASSES_KEY]) == set(np.unique(pseudo[keep]).tolist()) - {0}
    assert 14 not in merged[PSEUDO_CLASSES_KEY] and len(merged[PSEUDO_CLASSES_KEY]) > 2
    # Without the merge, the pseudo label is dropped and the manual label is all there is.
    assert np.array_equal(manual, np.asarray(_whole(train_transforms(WHOLE, mappings), case)["label"]))


def test_training_transforms_give_an_unlabeled_image_an_empty_label(phantom_partial):
    case = load_datalist(phantom_partial["unlabeled"], require_label=False).training[0]
    out = _whole(train_transforms(WHOLE, supervoxels=True), case)
    assert out[LABELED_KEY] is False and not torch.as_tensor(out["label"]).any()
    assert out["label"].shape == out["image"].shape == out["supervoxel"].shape

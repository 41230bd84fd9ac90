"""Few-shot finetuning: a new class id gets trained in the class embedding, the encoder stays."""

from __future__ import annotations

import pytest
import torch

from voxelprompt.errors import InputError
from voxelprompt.families.vista3d.network import Vista3DSpec, load_vista3d, random_vista3d, save_vista3d
from voxelprompt.families.vista3d.training.finetune import add_classes, finetune, finetune_recipe

NEW_ID = 140


@pytest.fixture()
def tiny_checkpoint_path(tmp_path):
    return save_vista3d(random_vista3d(Vista3DSpec(width=8), seed=0), tmp_path / "start.pt")


def test_finetune_adds_a_class(phantom_datalist, tiny_checkpoint_path, tmp_path):
    before, _ = load_vista3d(tiny_checkpoint_path)
    result = finetune(
        tiny_checkpoint_path,
        phantom_datalist,
        {1: NEW_ID},  # the phantom's liver becomes a "new" class
        init_from={NEW_ID: 1},
        n_cases=1,
        steps=3,
        output_dir=tmp_path / "ft",
        progress=False,
        patch={"roi": [32, 32, 32], "spacing": [10.0, 10.0, 10.0]},
        optim={"lr": 1e-3},
        val_every=-1,
    )
    after, _ = load_vista3d(result.model)
    rows_before = before.class_head.class_embeddings.weight
    rows_after = after.class_head.class_embeddings.weight
    assert not torch.equal(rows_before[NEW_ID], rows_after[NEW_ID])
    assert torch.equal(rows_before[7], rows_after[7])  # never prompted
    enc_b, enc_a = before.image_encoder.encoder.state_dict(), after.image_encoder.encoder.state_dict()
    assert all(torch.equal(enc_b[k], enc_a[k]) for k in enc_b)


def test_finetune_recipe_and_bad_ids(phantom_datalist, tiny_checkpoint_path, tmp_path):
    r = finetune_recipe(tiny_checkpoint_path, phantom_datalist, {1: NEW_ID, 3: 3}, n_cases=5, steps=10)
    assert r.data.label_set == (3, NEW_ID) and r.data.max_cases == 5 and r.freeze == "point"
    assert r.data.label_mappings["phantom"] == [(1, NEW_ID), (3, 3)]
    net, _ = load_vista3d(tiny_checkpoint_path)
    with pytest.raises(InputError, match="outside the model's class embedding"):
        add_classes(net, {600: 1})
    with pytest.raises(InputError, match="at least one class"):
        finetune_recipe(tiny_checkpoint_path, phantom_datalist, {})

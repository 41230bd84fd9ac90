"""Training cases of a recipe: unlabeled images by stage, synthetic datalists, dataset sampling."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from training_recipes import tiny_recipe

from voxelprompt.errors import InputError
from voxelprompt.families.vista3d.training.cases import case_probabilities, case_weights, training_cases, validation_cases
from voxelprompt.families.vista3d.training.recipe import DataConfig, SyntheticDatalist


def _recipe(stage, datalist, tmp_path, **data):
    return tiny_recipe(stage, datalist, tmp_path, data=data)


def test_stage1_trains_on_unlabeled_images_with_supervoxels(phantom_partial, tmp_path):
    cases = training_cases(_recipe("stage1", phantom_partial["unlabeled"], tmp_path, supervoxels=True))
    assert len(cases) == 2 and all(c.label is None and c.supervoxel is not None for c in cases)


@pytest.mark.parametrize(
    "stage,data,match",
    [
        ("stage2", {}, r"training\[0\]: has no label, and stage 2 \(point branch, no zero-shot objects\)"),
        ("stage3", {}, r"training\[0\]: has no label, and stage 3 \(auto branch"),
        ("stage1", {"supervoxels": False}, r"training\[0\]: has no label and the recipe does not load supervoxels"),
    ],
)
def test_stages_that_need_labels_refuse_unlabeled_images(phantom_partial, tmp_path, caplog, stage, data, match):
    recipe = _recipe(stage, phantom_partial["unlabeled"], tmp_path, **data)
    with pytest.raises(InputError, match=match):
        training_cases(recipe)
    skipping = _recipe(stage, phantom_partial["unlabeled"], tmp_path, skip_bad=True, **data)
    with caplog.at_level(logging.WARNING, logger="voxelprompt.families.vista3d.training.cases"):
        with pytest.raises(InputError, match="no usable training case"):
            training_cases(skipping)
    assert "training[1]" in caplog.text


def test_a_pseudo_label_stands_in_for_a_missing_label(phantom_partial, tmp_path):
    data = json.loads(phantom_partial["partial"].read_text())
    for entry in data["training"]:
        entry.pop("label")
    path = phantom_partial["partial"].parent / "pseudo_only.json"  # entry paths stay relative
    path.write_text(json.dumps(data))
    assert len(training_cases(_recipe("stage3", path, tmp_path))) == 2
    with pytest.raises(InputError, match="has no label"):
        training_cases(_recipe("stage3", path, tmp_path, pseudo_labels=False))


def test_validation_entries_need_labels(phantom_partial, tmp_path):
    data = json.loads(phantom_partial["unlabeled"].read_text())
    data["validation"][0].pop("label")
    path = phantom_partial["unlabeled"].parent / "unlabeled_val.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"validation\[0\]: a validation entry needs a 'label'"):
        validation_cases(_recipe("stage1", path, tmp_path, supervoxels=True))


def test_synthetic_datalists_join_under_their_own_name_and_weight(phantom_datalist, tmp_path):
    synthetic = [{"path": str(phantom_datalist), "dataset": "maisi", "weight": 2.0}]
    recipe = _recipe("stage4", phantom_datalist, tmp_path, synthetic_datalists=synthetic)
    assert recipe.data.synthetic_datalists == (SyntheticDatalist(str(phantom_datalist), "maisi", 2.0),)
    cases = training_cases(recipe)
    assert [c.dataset for c in cases] == ["phantom", "phantom", "maisi", "maisi"]
    p = case_probabilities(cases, recipe.data)  # stage 4: every dataset alike, "maisi" twice as likely
    assert np.isclose(p[2:].sum(), 2 * p[:2].sum()) and np.isclose(p[2], p[3])


def test_weighted_sampling_defaults_to_every_dataset_alike():
    names = ["big"] * 640 + ["small"] * 20
    p = case_weights(names, "weighted")
    # The official stage 2 table gives each case 100 / (its dataset's case count).
    assert np.isclose(p[0] / p[-1], (100 / 640) / (100 / 20))
    assert np.isclose(p[:640].sum(), 0.5) and not np.allclose(p, case_weights(names, "case"))
    shares = case_weights(names, "weighted", {"small": 3.0})
    assert np.isclose(shares[640:].sum(), 0.75)
    assert np.allclose(case_weights(["a", "a", "b"], "case", {"b": 2.0}), [0.25, 0.25, 0.5])
    with pytest.raises(InputError, match="not all 0"):
        case_weights(["a"], "weighted", {"a": 0.0})
    with pytest.raises(ValueError):
        case_weights(names, "other")


@pytest.mark.parametrize(
    "sampling,weights,names,message",
    [
        ("weighted", {"typo": 2.0}, ["a", "b"], "dataset_weights name no training dataset: ['typo']"),
        ("weighted", {}, ["a", "a"], "weighted sampling over one dataset (a)"),
        ("uniform", {"a": 2.0}, ["a", "b"], "dataset_weights are ignored with dataset_sampling='uniform'"),
    ],
)
def test_sampling_tables_that_do_nothing_warn(caplog, sampling, weights, names, message):
    from voxelprompt.training.datalist import Case

    cases = [Case(image=None, label=None, dataset=n) for n in names]  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="voxelprompt.families.vista3d.training.cases"):
        p = case_probabilities(cases, DataConfig(dataset_sampling=sampling, dataset_weights=weights))
    assert message in caplog.text and np.isclose(p.sum(), 1.0)

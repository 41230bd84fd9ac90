"""Tiny phantom datasets and recipes for the training tests (width 8, 32^3 patches at 10 mm)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def phantom_datalist(tmp_path_factory) -> Path:
    """Three small phantom cases (two training, one validation) and their datalist."""
    from voxelprompt.data import PhantomConfig, write_phantom_dataset

    config = PhantomConfig(shape=(32, 32, 40), spacing=(12.5, 12.5, 16.0), noise_hu=5.0)
    return write_phantom_dataset(tmp_path_factory.mktemp("phantoms"), n=3, config=config, n_validation=1)


@pytest.fixture(scope="session")
def phantom_datalist_sv(phantom_datalist) -> Path:
    """The same cases with block "supervoxels" (8^3 voxel cubes) under the ``supervoxel`` key."""
    import json

    import nibabel as nib
    import numpy as np

    root = phantom_datalist.parent
    data = json.loads(phantom_datalist.read_text())
    (root / "supervoxels").mkdir(exist_ok=True)
    for entry in data["training"] + data["validation"]:
        image = nib.load(str(root / entry["image"]))
        i, j, k = np.indices(image.shape)
        blocks = (i // 8) * 100 + (j // 8) * 10 + (k // 8) + 1
        name = Path(entry["image"]).name
        nib.save(nib.Nifti1Image(blocks.astype(np.int32), image.affine), str(root / "supervoxels" / name))
        entry["supervoxel"] = f"supervoxels/{name}"
    path = root / "datalist_sv.json"
    path.write_text(json.dumps(data))
    return path


def tiny_recipe(stage: str, datalist: Path, output_dir: Path, **overrides):
    """A registry stage shrunk to seconds: width 8, 32^3 patches at 10 mm, no validation."""
    from voxelprompt.training import RECIPE_REGISTRY

    fields = {
        "width": 8,
        "steps": 4,
        "output_dir": str(output_dir),
        "val_every": -1,
        "checkpoint_every": 100,
        "data": {"datalists": [str(datalist)], "supervoxels": False},
        "patch": {"roi": [32, 32, 32], "spacing": [10.0, 10.0, 10.0]},
        "prompts": {"iterations": 2},
        "optim": {"lr": 1e-3},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(fields.get(key), dict):
            fields[key] = {**fields[key], **value}
        else:
            fields[key] = value
    return RECIPE_REGISTRY[stage](**fields)

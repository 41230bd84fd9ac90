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


@pytest.fixture(scope="session")
def phantom_partial(phantom_datalist_sv) -> dict[str, Path]:
    """Datalists beside the phantoms for the data pipeline tests (training cases of ``datalist_sv``):

    * ``partial``: a manual label of the liver (1) only, cut to the lower half of the first axis,
      and the whole phantom label as ``pseudo_label`` (global ids); dataset ``partial``.
    * ``unlabeled``: image and supervoxels, no label; dataset ``unlabeled``.
    Both keep the labelled validation case.
    """
    import json

    import nibabel as nib
    import numpy as np

    root = phantom_datalist_sv.parent
    data = json.loads(phantom_datalist_sv.read_text())
    (root / "manual").mkdir(exist_ok=True)
    partial, unlabeled = [], []
    for entry in data["training"]:
        label = nib.load(str(root / entry["label"]))
        liver = (np.asarray(label.dataobj) == 1).astype(np.uint8)
        liver[liver.shape[0] // 2 :] = 0
        name = Path(entry["label"]).name
        nib.save(nib.Nifti1Image(liver, label.affine), str(root / "manual" / name))
        partial.append({**entry, "label": f"manual/{name}", "pseudo_label": entry["label"], "dataset": "partial"})
        unlabeled.append({"image": entry["image"], "supervoxel": entry["supervoxel"], "dataset": "unlabeled"})
    out = {}
    for key, training in (("partial", partial), ("unlabeled", unlabeled)):
        out[key] = root / f"datalist_{key}.json"
        out[key].write_text(json.dumps({"training": training, "validation": data["validation"]}))
    return out

"""SegVol parity: with the fixture's stand-in weights, our network reproduces the reference logits.

The fixture (``../shared/fixtures/segvol_parity``) holds the reference model's state_dict names,
a generator for deterministic weights, prompts and subsampled logits; see its README.
"""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import numpy as np
import pytest
import torch

from shared_paths import SHARED, shared_file
from voxelprompt.families.segvol.network import SEGVOL_REGISTRY, SegVol, load_state_dict_strict, normalize_state_dict

FIXTURE = SHARED / "fixtures" / "segvol_parity"
TOLERANCE = 1e-3  # max |logit difference|; float32 round-off gives ~1e-5


def _cases() -> dict[str, dict]:
    if not FIXTURE.is_dir():
        return {}
    return json.loads((FIXTURE / "cases.json").read_text())["cases"]


CASES = _cases()
TEXT_CASES = [name for name, case in CASES.items() if "text" in case]


def test_parity_fixture_is_present():
    """The parametrised cases below come from the fixture: without it they would silently vanish."""
    for name in ("cases.json", "expected.npz", "state_dict_keys.txt", "weights.py"):
        shared_file("fixtures", "segvol_parity", name)
    assert CASES and TEXT_CASES


def _weights_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("segvol_parity_weights", FIXTURE / "weights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def manifest() -> list[tuple[str, tuple[int, ...]]]:
    return _weights_module().read_manifest(FIXTURE / "state_dict_keys.txt")


@pytest.fixture(scope="module")
def model() -> SegVol:
    """SegVol v1 carrying the fixture's weights (built once per module: 180.9 M parameters)."""
    salt = json.loads((FIXTURE / "cases.json").read_text())["salt"]
    state = {name: torch.from_numpy(array) for name, array in _weights_module().state_dict(salt).items()}
    net = SEGVOL_REGISTRY["segvol_v1"]()
    load_state_dict_strict(net, normalize_state_dict(state, "parity fixture"), source="parity fixture")
    return net


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FIXTURE / "expected.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def image_embedding(model: SegVol, expected: dict[str, np.ndarray]) -> torch.Tensor:
    image = torch.from_numpy(expected["image"])[None, None]  # (1, 1, D, H, W)
    with torch.inference_mode():
        return model.encode_image(image)


def test_state_dict_matches_reference_names_and_shapes(model: SegVol, manifest: list) -> None:
    ours = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    assert ours == dict(manifest)


@pytest.mark.parametrize("case", TEXT_CASES)
def test_tokenizer_matches_reference_ids(model: SegVol, case: str) -> None:
    input_ids, attention_mask = model.tokenizer(CASES[case]["text"])
    assert input_ids.tolist() == CASES[case]["input_ids"]
    assert bool(attention_mask.all())


@pytest.mark.parametrize("case", list(CASES))
def test_logits_match_reference(
    model: SegVol, image_embedding: torch.Tensor, expected: dict[str, np.ndarray], case: str
) -> None:
    prompts = CASES[case]
    kwargs: dict[str, torch.Tensor] = {}
    with torch.inference_mode():
        if "text" in prompts:
            kwargs["text_embedding"] = model.encode_text(prompts["text"])
        if "boxes" in prompts:
            kwargs["boxes"] = torch.tensor(prompts["boxes"], dtype=torch.float32)
        if "points" in prompts:
            kwargs["points"] = torch.tensor(prompts["points"], dtype=torch.float32)
            kwargs["point_labels"] = torch.tensor(prompts["point_labels"], dtype=torch.float32)
        logits = model.decode(image_embedding, **kwargs)

    assert logits.shape == (1, 1, *expected["image"].shape)
    reference = expected[f"{case}__logits_sub4"]
    ours = logits[0, 0, :, ::4, ::4].numpy()
    assert ours.shape == reference.shape
    diff = float(np.abs(ours - reference).max())
    assert diff < TOLERANCE, f"{case}: max |diff| {diff:.3g}"
    # The full-resolution summary statistics too (they cover the voxels the subsample skips).
    assert float(logits.mean()) == pytest.approx(prompts["logits_full_mean"], abs=1e-4)
    assert float(logits.std()) == pytest.approx(prompts["logits_full_std"], abs=1e-4)
    assert float((logits > 0).float().mean()) == pytest.approx(prompts["fraction_positive"], abs=1e-4)

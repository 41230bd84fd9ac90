"""Every registered model family, as the registry describes it: a tiny network of its design, its
checkpoint round trip, recognition, and load_model -> open_session -> several prompts, with session
results equal to one-shot results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxelprompt.api import load_model, resolve_family
from voxelprompt.errors import CheckpointError, PromptError, VoxelPromptError
from voxelprompt.families import FAMILIES, Capabilities, check_capabilities, family_of_keys, get_family, import_target
from voxelprompt.imageio import read_volume
from voxelprompt.inference.protocol import Segmenter, Session
from voxelprompt.models.checkpoint_io import checkpoint_keys
from voxelprompt.types import Box, Points, Prompts

CLICK, OTHER, NEGATIVE = (20.0, 20.0, 10.0), (24.0, 16.0, 10.0), (6.0, 6.0, 4.0)


def prompt_sequence(caps: Capabilities) -> list[Prompts]:
    """Prompts a family answers, built from its capabilities alone (never from its name)."""
    steps: list[Prompts] = []
    if caps.classes:
        steps.append(Prompts(classes=(1, 3)))
    if caps.points:
        steps.append(Prompts(points=Points.from_lists([CLICK])))
        steps.append(Prompts(points=Points.from_lists([CLICK, OTHER], [NEGATIVE] if caps.negative_points else [])))
    if caps.classes and caps.points:
        steps.append(Prompts(classes=(3,), points=Points.from_lists([CLICK])))
    if caps.box:
        steps.append(Prompts(box=Box((8.0, 8.0, 4.0), (30.0, 30.0, 14.0))))
    if caps.box and caps.points:
        steps.append(Prompts(box=Box((8.0, 8.0, 4.0), (30.0, 30.0, 14.0)), points=Points.from_lists([CLICK])))
    if caps.text:
        steps.append(Prompts(text="spleen"))
    return steps


@pytest.fixture(params=list(FAMILIES))
def family_checkpoint(request, tmp_path):
    family = FAMILIES[request.param]
    net = import_target(family.tiny_model)(seed=0)
    path = tmp_path / f"{family.name}_tiny.pt"
    torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, path)
    return family, net, path


def test_registry_entries_are_complete():
    for name, family in FAMILIES.items():
        assert family.name == name and family.capabilities.protocols and family.description
        for target in (family.loader, family.eval_adapter, family.recipes, family.recipe_type, family.trainer,
                       family.prompt_check, family.tiny_model):  # fmt: skip
            assert import_target(target) is not None, target
        family.make_options()  # defaults are valid
        assert family.default_checkpoint is not None or family.missing_checkpoint


def test_checkpoint_round_trip_recognition_and_strict_loading(family_checkpoint, one_thread):
    family, net, path = family_checkpoint
    assert family_of_keys(checkpoint_keys(path)) is family
    assert resolve_family(path) is family
    model = load_model(path, device="cpu")
    assert isinstance(model, Segmenter) and model.family == family.name
    ours, theirs = model.network.state_dict(), net.state_dict()
    assert list(ours) == list(theirs)
    for name, tensor in ours.items():
        assert torch.equal(tensor.cpu(), theirs[name].cpu()), name
    # strict loading: a checkpoint missing a tensor or with one of another shape is refused
    state = torch.load(path, weights_only=True)
    first = next(iter(state))
    torch.save({k: v for k, v in state.items() if k != first}, path.with_name("missing.pt"))
    torch.save({**state, first: torch.zeros(1)}, path.with_name("reshaped.pt"))
    for broken in ("missing.pt", "reshaped.pt"):
        with pytest.raises(CheckpointError, match=rf"{broken}: not a "):  # names the file and what it is not
            load_model(path.with_name(broken), family.name, device="cpu")
    # another family's name for this checkpoint is refused, naming the right one
    for other in FAMILIES.values():
        if other is not family:
            with pytest.raises(CheckpointError, match=f"is a {family.name} checkpoint, not {other.name}"):
                load_model(path, other.name, device="cpu")


def test_session_answers_equal_one_shot_answers(family_checkpoint, ct_crop_path, one_thread):
    family, _, path = family_checkpoint
    model = load_model(path, device="cpu")
    volume = read_volume(ct_crop_path)
    session = model.open_session(volume, memory_budget_mb=512)
    assert isinstance(session, Session)
    steps = prompt_sequence(family.capabilities)
    assert len(steps) >= 3
    for prompts in steps:
        check_capabilities(prompts, family)
        ours = session.segment(prompts)
        ref = model.segment(volume, prompts)
        np.testing.assert_array_equal(ours.labels.array, ref.labels.array, err_msg=f"{family.name}: {prompts}")
        np.testing.assert_array_equal(ours.labels.affine, volume.affine)
        assert set(np.unique(ours.labels.array).tolist()) <= {0, *ref.classes}
    prepared = model.prepare(volume)
    np.testing.assert_array_equal(model.segment_prepared(prepared, steps[-1]).labels.array, ref.labels.array)


def test_capabilities_refuse_what_a_family_cannot_do():
    for family in FAMILIES.values():
        caps = family.capabilities
        if not caps.box:
            with pytest.raises(PromptError, match="box prompts need a model family that has them"):
                check_capabilities(Prompts(box=Box((0, 0, 0), (1, 1, 1))), family)
        if not caps.classes:
            with pytest.raises(PromptError, match="class prompts need a model family that has them"):
                check_capabilities(Prompts(classes=(1, 3)), family)
            if caps.text:  # one class id is read as its catalog name
                check_capabilities(Prompts(classes=(1,)), family)
        if not caps.everything:
            with pytest.raises(PromptError, match="everything prompts need a model family that has them"):
                check_capabilities(Prompts(everything=True), family)
    assert get_family("VISTA3D") is FAMILIES["vista3d"]
    with pytest.raises(VoxelPromptError, match="unknown model family 'sam'; choose "):
        get_family("sam")

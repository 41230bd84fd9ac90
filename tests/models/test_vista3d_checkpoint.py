from __future__ import annotations

import torch
import pytest

from shared_paths import shared_file
from voxelprompt.errors import CheckpointError
from voxelprompt.families.vista3d.network import Vista3DSpec, build_vista3d, load_vista3d, random_vista3d


def _manifest():
    rows = {}
    for line in shared_file("fixtures", "vista3d", "vista3d132_keys.txt").read_text().splitlines():
        name, shape = line.split(" ", 1)
        rows[name] = tuple(int(s) for s in shape.strip("() ").split(",") if s.strip())
    return rows


def test_full_size_architecture_matches_the_bundle_checkpoint_keys():
    expected = _manifest()
    net = build_vista3d(Vista3DSpec(width=48))
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected
    assert sum(p.numel() for p in net.parameters()) == 217_964_982


def _same_weights(a: torch.nn.Module, b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, b[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("wrap", ["bare", "state_dict", "model", "module_prefix"])
def test_bundle_layouts_load_strictly(tmp_path, tiny_net, wrap):
    state = tiny_net.state_dict()
    obj = {
        "bare": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state},
        "module_prefix": {f"module.{k}": v for k, v in state.items()},
    }[wrap]
    torch.save(obj, tmp_path / "m.pt")
    net, spec = load_vista3d(tmp_path / "m.pt")
    assert spec.width == 8 and spec.n_classes == 512
    assert _same_weights(net, state)


def test_research_layout_loads_strictly(tmp_path, tiny_net):
    state = tiny_net.state_dict()
    research = {k.replace(".mlp.linear1.", ".mlp.lin1.").replace(".mlp.linear2.", ".mlp.lin2."): v for k, v in state.items()}
    assert any(".mlp.lin1." in k for k in research)
    research["weight_mapper.0.weight"] = torch.zeros(3, 3)
    research["point_head.output_add_hypernetworks_mlps.layers.0.weight"] = torch.zeros(8, 8)
    torch.save(research, tmp_path / "model_monai1.3.pt")
    net, _ = load_vista3d(tmp_path / "model_monai1.3.pt")
    assert _same_weights(net, state)


@pytest.mark.parametrize("width", [8, 16])
def test_width_is_read_off_the_tensor_shapes(tmp_path, width):
    net = random_vista3d(Vista3DSpec(width=width), seed=1)
    torch.save(net.state_dict(), tmp_path / "m.pt")
    loaded, spec = load_vista3d(tmp_path / "m.pt")
    assert spec.width == width
    assert _same_weights(loaded, net.state_dict())


def test_missing_and_extra_tensors_are_named(tmp_path, tiny_net):
    state = dict(tiny_net.state_dict())
    state.pop("point_head.mask_tokens.weight")
    state["extra.layer.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"1 missing \(e\.g\. point_head\.mask_tokens\.weight\).*1 unexpected"):
        load_vista3d(tmp_path / "bad.pt")


def test_wrong_shape_is_reported(tmp_path, tiny_net):
    state = dict(tiny_net.state_dict())
    state["point_head.mask_tokens.weight"] = torch.zeros(1, 9)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_vista3d(tmp_path / "bad.pt")


def test_other_architecture_is_rejected(tmp_path):
    from monai.networks.nets import UNet

    torch.save(UNet(3, 1, 2, (4, 8), (2,)).state_dict(), tmp_path / "unet.pt")
    with pytest.raises(CheckpointError, match="not a VISTA3D checkpoint"):
        load_vista3d(tmp_path / "unet.pt")


def test_unreadable_and_missing_files(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_vista3d(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_vista3d(tmp_path / "absent.pt")

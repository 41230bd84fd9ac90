"""The network prepared for training learns what MONAI's module learns: same loss, same gradients."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from monai.losses import DiceCELoss
from torch import nn

from voxelprompt.families.vista3d.network import Vista3DSpec, build_vista3d
from voxelprompt.training.layout import InstanceNorm3dAsGroupNorm, prepare_for_training, unprepare

SIZE = 32


def _prompts(kind: str) -> tuple[dict, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    if kind == "point":  # stages 1-2: clicks on 2 labelled objects and 1 zero-shot object
        kwargs = {
            "point_coords": torch.randint(0, SIZE, (3, 2, 3), generator=g).float(),
            "point_labels": torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0]]),
            "prompt_class": torch.tensor([[1], [6], [134]]),
        }
        n = 3
    else:  # stages 3-4: class prompts
        kwargs = {"class_vector": torch.tensor([[1], [3], [6], [14]])}
        n = 4
    return kwargs, (torch.rand(n, 1, SIZE, SIZE, SIZE, generator=g) > 0.6).float()


def _loss_and_grads(net: nn.Module, x: torch.Tensor, kind: str) -> tuple[float, dict[str, torch.Tensor]]:
    kwargs, targets = _prompts(kind)
    loss_fn = DiceCELoss(sigmoid=True, squared_pred=True, include_background=False, smooth_nr=0.0, smooth_dr=1e-5)
    net.zero_grad(set_to_none=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="single channel prediction")
        loss = loss_fn(net(input_images=x, **kwargs).float(), targets)
    loss.backward()
    return float(loss), {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", ["point", "auto"])
def test_prepared_network_has_monai_gradients(kind):
    torch.manual_seed(0)
    monai_net = build_vista3d(Vista3DSpec(width=8)).train()
    prepared = prepare_for_training(copy.deepcopy(monai_net))
    assert not any(isinstance(m, nn.InstanceNorm3d) for m in prepared.modules())
    assert any(isinstance(m, InstanceNorm3dAsGroupNorm) for m in prepared.modules())
    assert prepared.state_dict().keys() == monai_net.state_dict().keys()
    x = torch.randn(1, 1, SIZE, SIZE, SIZE, generator=torch.Generator().manual_seed(1))

    ref_loss, ref = _loss_and_grads(monai_net, x, kind)
    loss, got = _loss_and_grads(prepared, x.to(memory_format=torch.channels_last_3d), kind)

    assert loss == pytest.approx(ref_loss, rel=1e-4)
    assert got.keys() == ref.keys() and len(ref) > 50  # the whole trained branch has gradients
    for name, g in ref.items():
        scale = float(g.abs().max()) + 1e-12
        assert float((got[name] - g).abs().max()) <= 2e-3 * scale + 1e-7, name


def test_unprepare_restores_monai_modules_and_outputs():
    torch.manual_seed(0)
    monai_net = build_vista3d(Vista3DSpec(width=8)).eval()
    back = unprepare(prepare_for_training(copy.deepcopy(monai_net)))
    assert sum(isinstance(m, nn.InstanceNorm3d) for m in back.modules()) == sum(
        isinstance(m, nn.InstanceNorm3d) for m in monai_net.modules()
    )
    x = torch.randn(1, 1, SIZE, SIZE, SIZE)
    with torch.no_grad():
        a = monai_net(input_images=x, class_vector=torch.tensor([[1], [3]]))
        b = back(input_images=x, class_vector=torch.tensor([[1], [3]]))
    torch.testing.assert_close(a, b)


def test_fused_adamw_steps_like_the_loop_version():
    torch.manual_seed(0)
    params = [torch.randn(16, 8, 3, 3, 3, requires_grad=True), torch.randn(8, requires_grad=True)]
    twins = [p.detach().clone().requires_grad_() for p in params]
    fused = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-5, fused=True)
    loop = torch.optim.AdamW(twins, lr=1e-3, weight_decay=1e-5, foreach=False)
    for _ in range(5):
        for group, opt in ((params, fused), (twins, loop)):
            opt.zero_grad()
            sum((p**2).sum() for p in group).backward()
            opt.step()
    for a, b in zip(params, twins):
        torch.testing.assert_close(a, b)

"""One VISTA3D training step on CPU: MONAI's module as the trainer used to run it vs the prepared one.

Usage: python benchmarks/training_step.py [--width 16] [--size 64] [--repeats 3] [--engine-width 48]

A step is what ``Trainer.train_step`` does per click round: forward, the official DiceCE loss,
backward and one AdamW update, for
  * ``point``: 6 objects (4 classes + 2 zero-shot), 3 clicks each (stages 1-2),
  * ``auto``: 20 class prompts (16 present + 4 absent, stages 3-4).
Variants, measured side by side (rounds interleave them, so load from other processes spreads
over all; each reports its best round):
  * ``MONAI``: the network as MONAI builds it (contiguous, stock instance norm), AdamW's default
    for-loop implementation;
  * ``prepared``: :func:`voxelprompt.training.layout.prepare_for_training` (channels-last, instance
    norm as one fused group-norm kernel) and the fused AdamW.
FLOPs are counted by ``torch.utils.flop_counter`` (convolutions and matmuls, forward and backward).
The inference engine's rate is measured in the same run: the prepared inference network
(``engine.layout.prepare_network``) computing class features of one window under
``inference_mode``, at the training width and at ``--engine-width`` (the released model's 48).
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import torch
from monai.losses import DiceCELoss
from torch.utils.flop_counter import FlopCounterMode

from voxelprompt.families.vista3d.inference.engine.layout import prepare_network, to_layout
from voxelprompt.families.vista3d.network import Vista3DSpec, build_vista3d
from voxelprompt.training.layout import prepare_for_training


def prompts(kind: str, size: int) -> tuple[dict, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    if kind == "point":
        n = 6
        kwargs = {
            "point_coords": torch.randint(0, size, (n, 3, 3), generator=g).float(),
            "point_labels": torch.tensor([[1.0, 1.0, 0.0]] * n),
            "prompt_class": torch.tensor([[1], [3], [5], [6], [134], [135]]),
        }
    else:
        n = 20
        kwargs = {"class_vector": torch.arange(1, n + 1)[:, None]}
    targets = (torch.rand(n, 1, size, size, size, generator=g) > 0.7).float()
    return kwargs, targets


class Step:
    """One training step of a network copy; ``run()`` returns the loss."""

    def __init__(self, net: torch.nn.Module, prepared: bool, kind: str, size: int) -> None:
        self.net = prepare_for_training(net) if prepared else net
        self.kwargs, self.targets = prompts(kind, size)
        x = torch.randn(1, 1, size, size, size, generator=torch.Generator().manual_seed(0))
        self.x = to_layout(x, prepared)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-4, fused=True if prepared else None)
        self.loss = DiceCELoss(sigmoid=True, squared_pred=True, include_background=False, smooth_nr=0.0, smooth_dr=1e-5)

    def run(self) -> float:
        self.opt.zero_grad(set_to_none=True)
        logits = self.net(input_images=self.x, **self.kwargs)
        loss = self.loss(logits.float(), self.targets)
        loss.backward()
        self.opt.step()
        return float(loss)


def best_seconds(fns: dict, repeats: int) -> dict[str, float]:
    best = {name: float("inf") for name in fns}
    for name, fn in fns.items():  # warm-up (oneDNN primitive creation)
        fn()
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def gflop(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def engine_case(width: int, size: int):
    net = prepare_network(build_vista3d(Vista3DSpec(width=width)).eval())
    x = to_layout(torch.randn(1, 1, size, size, size), True)

    def run():
        with torch.inference_mode():
            return net.image_encoder(x, with_point=False, with_label=True)[1]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine-width", type=int, default=48)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="single channel prediction")
    torch.manual_seed(0)
    base = build_vista3d(Vista3DSpec(width=args.width)).train()
    cases = {}
    for kind in ("point", "auto"):
        for prepared in (False, True):
            cases[f"{kind:<5} {'prepared' if prepared else 'MONAI':<8}"] = Step(copy.deepcopy(base), prepared, kind, args.size).run
    cases[f"engine w{args.width}"] = engine_case(args.width, args.size)
    if args.engine_width != args.width:
        cases[f"engine w{args.engine_width}"] = engine_case(args.engine_width, args.size)
    flops = {name: gflop(fn) for name, fn in cases.items()}
    seconds = best_seconds(cases, args.repeats)
    print(f"width {args.width}, patch {args.size}^3, {torch.get_num_threads()} threads, best of {args.repeats}")
    print(f"{'case':<16} {'s':>7} {'GFLOP':>7} {'GFLOP/s':>8}")
    for name in cases:
        print(f"{name:<16} {seconds[name]:7.2f} {flops[name]:7.1f} {flops[name] / seconds[name]:8.1f}")
    engine = max(flops[n] / seconds[n] for n in cases if n.startswith("engine"))
    for kind in ("point", "auto"):
        monai, prep = (f"{kind:<5} {v:<8}" for v in ("MONAI", "prepared"))
        print(
            f"{kind}: prepared/MONAI speed-up {seconds[monai] / seconds[prep]:.2f}x; prepared at "
            f"{flops[prep] / seconds[prep] / engine:.0%} of the engine's best GFLOP/s"
        )


if __name__ == "__main__":
    main()

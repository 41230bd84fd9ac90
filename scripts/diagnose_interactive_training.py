"""Diagnose VISTA3D's interactive (point) branch training on the easy task (voxelprompt.data.blobs).

    python scripts/diagnose_interactive_training.py overfit --widths 8 16 32 --updates 80
    python scripts/diagnose_interactive_training.py train --width 32 --steps 400 --eval-every 40

``overfit``: one case, one labelled object, one click at its centre (the voxel farthest from its
border); a fresh network of each width gets ``--updates`` AdamW updates of the official loss
(MONAI ``DiceCELoss``, sigmoid, squared) on exactly that prompt. It separates capacity and
optimisation from the data path: a width that cannot fit one example will not fit a dataset.

``train``: the real stage-1 :class:`~voxelprompt.families.vista3d.training.trainer.Trainer` (patches,
sampled clicks, supervoxel zero-shot objects, iterative rounds) on ``--cases`` training cases, and
every ``--eval-every`` steps the one-click Dice on ``--held-out`` unseen cases: labelled objects
with their class id (supported embedding), unlabelled ones with a zero-shot id (> 132), each
clicked at its centre, in a window of the patch size around the click.

Prints one JSON object per line (``{"mode", "width", "step", "dice", ...}``); asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from voxelprompt.data.blobs import BlobConfig, make_blob_case, write_blob_dataset
from voxelprompt.families.vista3d.training.prompts import ZERO_SHOT_BASE

ZERO_SHOT_ID = ZERO_SHOT_BASE + 1


def _centre(mask: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(i) for i in np.unravel_index(np.argmax(ndimage.distance_transform_edt(mask)), mask.shape))


def _scaled(image: np.ndarray) -> torch.Tensor:
    """The training transforms' intensity step (HU window to [0, 1]), as a [1, 1, X, Y, Z] tensor."""
    from voxelprompt.families.vista3d.inference.profiles import HU_MAX, HU_MIN

    return torch.from_numpy(np.clip((image - HU_MIN) / (HU_MAX - HU_MIN), 0.0, 1.0).astype(np.float32))[None, None]


def _click_dice(net, image: torch.Tensor, mask: np.ndarray, class_id: int, roi: int) -> float:
    """One positive click at the object's centre, in a ``roi``^3 window around it; Dice over the volume."""
    c = np.asarray(_centre(mask))
    lo = np.clip(c - roi // 2, 0, np.asarray(mask.shape) - roi)
    window = tuple(slice(int(a), int(a) + roi) for a in lo)
    with torch.no_grad():
        logits = net(
            input_images=image[(slice(None), slice(None), *window)],
            point_coords=torch.tensor([[(c - lo).tolist()]], dtype=torch.float),
            point_labels=torch.tensor([[1.0]]),
            prompt_class=torch.tensor([[class_id]]),
        )
    pred = np.zeros(mask.shape, bool)
    pred[window] = logits[0, 0].numpy() > 0
    return float(2 * (pred & mask).sum() / max(1, pred.sum() + mask.sum()))


def overfit(args) -> None:
    from monai.losses import DiceCELoss

    from voxelprompt.families.vista3d.network import Vista3DSpec, build_vista3d

    size = args.size
    image, labels, _, _ = make_blob_case(BlobConfig(shape=(size,) * 3, objects=(1, 1), seed=args.seed))
    cls = int(labels.max())
    mask = labels == cls
    x = _scaled(image)
    click = torch.tensor([[_centre(mask)]], dtype=torch.float)
    target = torch.from_numpy(mask)[None, None].float()
    loss_fn = DiceCELoss(sigmoid=True, squared_pred=True, smooth_nr=0.0, smooth_dr=1e-5)
    for width in args.widths:
        torch.manual_seed(args.seed)
        net = build_vista3d(Vista3DSpec(width=width))
        net.set_auto_grad(auto_freeze=True, point_freeze=False)
        net.train()
        opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=args.lr)
        start = time.perf_counter()
        for update in range(1, args.updates + 1):
            logits = net(input_images=x, point_coords=click, point_labels=torch.tensor([[1.0]]), prompt_class=torch.tensor([[cls]]))
            loss = loss_fn(logits, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if update % args.report_every == 0 or update == args.updates:
                pred = logits.detach()[0, 0].numpy() > 0
                dice = float(2 * (pred & mask).sum() / max(1, pred.sum() + mask.sum()))
                print(json.dumps({"mode": "overfit", "width": width, "step": update, "loss": round(loss.item(), 4),
                                  "dice": round(dice, 4), "seconds": round(time.perf_counter() - start, 1)}), flush=True)  # fmt: skip


def _held_out(n: int, config: BlobConfig, seed0: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [make_blob_case(dataclasses.replace(config, seed=seed0 + i))[:3] for i in range(n)]


def _evaluate(net, cases, roi: int) -> dict[str, float]:
    net.eval()
    supported, zero_shot = [], []
    for image, labels, objects in cases:
        x = _scaled(image)
        for value in np.unique(labels[labels > 0]):
            supported.append(_click_dice(net, x, labels == value, int(value), roi))
        for value in np.unique(objects[objects > 0]):
            zero_shot.append(_click_dice(net, x, objects == value, ZERO_SHOT_ID, roi))
    net.train()
    return {"dice_supported": round(float(np.mean(supported)), 4), "dice_zero_shot": round(float(np.mean(zero_shot)), 4),
            "objects": [len(supported), len(zero_shot)]}  # fmt: skip


def train(args) -> None:
    from voxelprompt.families.vista3d.training.recipe import RECIPE_REGISTRY
    from voxelprompt.families.vista3d.training.trainer import Trainer

    config = BlobConfig(shape=(args.size,) * 3)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="blobs-"))
    datalist = write_blob_dataset(work / "data", args.cases, config, seed0=args.seed)
    held = _held_out(args.held_out, config, seed0=10_000 + args.seed)
    recipe = RECIPE_REGISTRY["stage1"](
        width=args.width, steps=args.steps, seed=args.seed, output_dir=str(work / "run"), val_every=-1,
        checkpoint_every=10**9,
        data={"datalists": [str(datalist)], "supervoxels": True, "label_set": list(config.classes)},
        patch={"roi": [args.roi] * 3, "spacing": [config.spacing] * 3, "crop": "random"},
        prompts={"iterations": args.iterations, "zero_shot_source": "supervoxel", "max_foreground": 2, "max_zero_shot": 1},
        optim={"lr": args.lr, "warmup_steps": min(10, args.steps)},
    )  # fmt: skip
    trainer = Trainer(recipe, progress=False)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        trainer.losses.append(trainer.train_step())
        if step % args.eval_every == 0 or step == args.steps:
            row = {"mode": "train", "width": args.width, "step": step,
                   "loss": round(float(np.nanmean(trainer.losses[-args.eval_every:])), 4),
                   "seconds": round(time.perf_counter() - start, 1), **_evaluate(trainer.net, held, args.roi)}  # fmt: skip
            print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("overfit", help="fit one prompt per width")
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--updates", type=int, default=80)
    p.add_argument("--report-every", type=int, default=10)
    p.add_argument("--size", type=int, default=32, help="cube size of the case in voxels")
    t = sub.add_parser("train", help="stage 1 on the easy task, held-out one-click Dice")
    t.add_argument("--width", type=int, default=32)
    t.add_argument("--steps", type=int, default=400)
    t.add_argument("--eval-every", type=int, default=40)
    t.add_argument("--cases", type=int, default=16)
    t.add_argument("--held-out", type=int, default=8)
    t.add_argument("--size", type=int, default=64, help="cube size of the cases in voxels")
    t.add_argument("--roi", type=int, default=32, help="patch and evaluation window size")
    t.add_argument("--iterations", type=int, default=3)
    t.add_argument("--work-dir", type=Path, default=None)
    for q in (p, t):
        q.add_argument("--lr", type=float, default=1e-3)
        q.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    {"overfit": overfit, "train": train}[args.mode](args)


if __name__ == "__main__":
    main()

"""The bundle pipeline on two devices with the same weights: label agreement and wall time.

Usage: python benchmarks/device_agreement.py --ct CT.nii.gz [--width 48] [--devices cpu cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from voxelprompt.imageio import read_volume
from voxelprompt.inference.segmenter import Vista3DSegmenter
from voxelprompt.models.vista3d import Vista3DSpec, random_vista3d
from voxelprompt.types import Points, Prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ct", required=True)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    volume = read_volume(args.ct)
    spec = Vista3DSpec(width=args.width)
    runs = {
        "everything": (Prompts(), True),
        "liver + click": (Prompts(classes=(1,), points=Points.from_lists([(60, 30, 10)])), False),
    }
    results: dict[tuple[str, str], np.ndarray] = {}
    for device in args.devices:
        seg = Vista3DSegmenter(random_vista3d(spec, seed=0), spec, profile="bundle", device=device)
        for name, (prompts, everything) in runs.items():
            start = time.perf_counter()
            out = seg.segment(volume, prompts, everything=everything)
            seconds = time.perf_counter() - start
            results[(device, name)] = out.labels.array
            print(f"{device:>5} {name:>14}: {seconds:7.1f} s, {out.windows} windows, "
                  f"{len(np.unique(out.labels.array))} labels")
    if len(args.devices) == 2:
        a, b = args.devices
        for name in runs:
            same = float((results[(a, name)] == results[(b, name)]).mean())
            print(f"{name}: {a} vs {b}: {same * 100:.4f} % of voxels identical")


if __name__ == "__main__":
    main()

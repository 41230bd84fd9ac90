"""The bundle pipeline on devices and engines with the same weights: label agreement and wall time.

Usage: python benchmarks/device_agreement.py --ct CT.nii.gz [--width 48] [--runs cpu:reference cuda:exact cuda:exact:amp]

Each run is DEVICE:ENGINE[:amp]; every run's labels are compared with the first run's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from voxelprompt.imageio import read_volume
from voxelprompt.inference.vista3d.segmenter import Vista3DSegmenter
from voxelprompt.models.vista3d import Vista3DSpec, random_vista3d
from voxelprompt.types import Points, Prompts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ct", required=True)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument(
        "--runs", nargs="+", default=["cpu:reference", "cuda:reference", "cuda:exact", "cuda:exact:amp"]
    )
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    volume = read_volume(args.ct)
    spec = Vista3DSpec(width=args.width)
    runs = {
        "everything": Prompts(everything=True),
        "liver + click": Prompts(classes=(1,), points=Points.from_lists([(60, 30, 10)])),
    }
    results: dict[tuple[str, str], np.ndarray] = {}
    for run in args.runs:
        device, engine, *flags = run.split(":")
        seg = Vista3DSegmenter(
            random_vista3d(spec, seed=0), spec, profile="bundle", device=device, engine=engine, amp="amp" in flags
        )
        for name, prompts in runs.items():
            seg.segment(volume, prompts)  # warm-up (cuDNN autotuning, lazy init)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = seg.segment(volume, prompts)
            seconds = time.perf_counter() - start
            results[(run, name)] = out.labels.array
            print(f"{run:>18} {name:>14}: {seconds:7.1f} s, {out.windows} windows, "
                  f"{len(np.unique(out.labels.array))} labels")
    first = args.runs[0]
    for run in args.runs[1:]:
        for name in runs:
            same = float((results[(run, name)] == results[(first, name)]).mean())
            print(f"{name}: {run} vs {first}: {same * 100:.4f} % of voxels identical")


if __name__ == "__main__":
    main()

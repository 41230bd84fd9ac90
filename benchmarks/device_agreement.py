"""The bundle pipeline on devices and engines with the same weights: label agreement and wall time.

Usage: python benchmarks/device_agreement.py --ct CT.nii.gz [--width 48] [--runs cpu:reference cuda:exact cuda:exact:amp]

Each run is DEVICE:ENGINE[:amp]; every run's labels are compared with the first run's.
``gpu_suite.py`` imports :func:`parse_run`, :func:`make_segmenter`, :func:`timed_segment` and
:func:`compare` from here.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from voxelprompt.imageio import read_volume
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d
from voxelprompt.types import Points, Prompts, Volume

#: The click of the "liver + click" prompt, in input voxels of the example CT (i, j, k).
CLICK = (60, 30, 10)


def default_prompts(click: tuple[float, float, float] = CLICK) -> dict[str, Prompts]:
    """Everything mode and one class with a click at ``click`` (input voxels of the volume)."""
    return {"everything": Prompts(everything=True), "liver + click": Prompts(classes=(1,), points=Points.from_lists([click]))}


def parse_run(run: str) -> tuple[str, str, bool]:
    """``DEVICE:ENGINE[:amp]`` -> (device, engine, amp); ``cuda:0:exact`` is not accepted (use CUDA_VISIBLE_DEVICES)."""
    device, engine, *flags = run.split(":")
    unknown = [f for f in flags if f != "amp"]
    if unknown:
        raise ValueError(f"run {run!r}: unknown flag {unknown[0]!r} (DEVICE:ENGINE[:amp])")
    return device, engine, "amp" in flags


def make_segmenter(net, spec, profile, run: str) -> Vista3DSegmenter:
    """A segmenter for ``run`` on a copy of ``net`` (a segmenter moves its network to its device)."""
    device, engine, amp = parse_run(run)
    return Vista3DSegmenter(copy.deepcopy(net), spec, profile=profile, device=device, engine=engine, amp=amp)


def timed_segment(seg: Vista3DSegmenter, volume: Volume, prompts: Prompts, warm_up: bool) -> tuple[np.ndarray, float, int]:
    """(labels on the input grid, seconds end to end, windows) of one call, after an optional warm-up
    call (cuDNN autotuning, lazy CUDA initialisation); CUDA work is synchronised before the clock stops."""
    if warm_up:
        seg.segment(volume, prompts)
    if seg.device.type == "cuda":
        torch.cuda.synchronize(seg.device)
    start = time.perf_counter()
    out = seg.segment(volume, prompts)
    labels = np.asarray(out.labels.array)  # on the host: nothing is left in flight
    return labels, time.perf_counter() - start, out.windows


def compare(labels: np.ndarray, base: np.ndarray) -> dict[str, float]:
    """Voxels of ``labels`` equal to ``base``: fraction identical and count differing."""
    differ = int((labels != base).sum())
    return {"identical": 1.0 - differ / labels.size, "differing": differ, "voxels": int(labels.size)}


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
    net = random_vista3d(spec, seed=0)
    runs = default_prompts()
    results: dict[tuple[str, str], np.ndarray] = {}
    for run in args.runs:
        seg = make_segmenter(net, spec, "bundle", run)
        for name, prompts in runs.items():
            labels, seconds, windows = timed_segment(seg, volume, prompts, warm_up=True)
            results[(run, name)] = labels
            print(f"{run:>18} {name:>14}: {seconds:7.1f} s, {windows} windows, {len(np.unique(labels))} labels")
    first = args.runs[0]
    for run in args.runs[1:]:
        for name in runs:
            same = compare(results[(run, name)], results[(first, name)])["identical"]
            print(f"{name}: {run} vs {first}: {same * 100:.4f} % of voxels identical")


if __name__ == "__main__":
    main()

"""Seconds per click of VISTA3D's point head: MONAI's forward vs the cached, folded engine head.

Usage: python benchmarks/vista3d_click.py [--width 48] [--size 128] [--repeats 2] [--threads N] [--profile]
The encoder output is random (the encoder itself is not timed); weights are random_vista3d's.
"""

from __future__ import annotations

import argparse
import time

import torch

from voxelprompt.families.vista3d.inference.engine.point_head import _folded_conv, _prompt_tokens, encode_window, predict_points
from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d


def best_of(fn, repeats: int) -> tuple[float, float, torch.Tensor]:
    """Smallest wall and process-CPU seconds over ``repeats`` calls, and the last result.

    CPU seconds (all threads together) are less sensitive than wall time to other jobs.
    """
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        with torch.no_grad():
            result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu), result


def stage_times(head, features, coords, labels, repeats: int) -> dict[str, tuple[float, float]]:
    """Wall and CPU seconds of each stage of one object's decoding (best of ``repeats``)."""
    up = head.output_upscaling
    tokens = _prompt_tokens(head, features.shape, coords, labels, None)
    _, c, h, w, d = features.low.shape
    with torch.no_grad():
        hs, keys = head.transformer(features.low, features.pos, tokens)
        hyper = head.output_hypernetworks_mlps(hs[:, 0])[0]
        upscaled = up[0](keys.transpose(1, 2).reshape(1, c, h, w, d))
        normed = up[1](upscaled)
        activated = up[2](normed)
    stages = {
        "tokens": lambda: _prompt_tokens(head, features.shape, coords, labels, None),
        "transformer": lambda: head.transformer(features.low, features.pos, tokens),
        "conv_transpose": lambda: up[0](keys.transpose(1, 2).reshape(1, c, h, w, d)),
        "instance_norm": lambda: up[1](upscaled),
        "gelu": lambda: up[2](normed),
        "folded conv": lambda: _folded_conv(up[3], hyper, activated),
    }
    return {name: best_of(fn, repeats)[:2] for name, fn in stages.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="also time each stage of predict_points")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    net = random_vista3d(Vista3DSpec(width=args.width), seed=0)
    head = net.point_head
    torch.manual_seed(0)
    s = args.size
    out = torch.randn(1, args.width, s, s, s)
    coords = torch.tensor([[[s / 2, s / 2, s / 2], [s / 4, s / 3, s / 2]]])
    labels = torch.tensor([[1, 0]])
    print(f"point head width {args.width}, window {s}^3, torch threads {torch.get_num_threads()}, "
          f"best of {args.repeats}")

    monai_s, monai_cpu, reference = best_of(lambda: head(out, coords, labels), args.repeats)
    encode_s, encode_cpu, features = best_of(lambda: encode_window(head, out), args.repeats)
    predict_s, predict_cpu, logits = best_of(lambda: predict_points(head, features, coords, labels), args.repeats)
    diff = (reference - logits).abs().max().item()
    print(f"{'MONAI point_head':>18}: {monai_s:7.2f} s  (cpu {monai_cpu:6.2f} s)")
    print(f"{'encode_window':>18}: {encode_s:7.2f} s  (cpu {encode_cpu:6.2f} s)  once per window, "
          f"{features.nbytes / 2**20:.0f} MiB cached")
    print(f"{'predict_points':>18}: {predict_s:7.2f} s  (cpu {predict_cpu:6.2f} s)  per click")
    print(f"{'speed-up':>18}: {monai_s / predict_s:7.1f} x per click (wall), {monai_cpu / predict_cpu:.1f} x (cpu)")
    print(f"{'max |difference|':>18}: {diff:.3g}  (logits max |x| {reference.abs().max().item():.3g})")
    if args.profile:
        print("stages of predict_points for one object:")
        for name, (sec, cpu) in stage_times(head, features, coords, labels, args.repeats).items():
            print(f"{name:>18}: {sec:7.3f} s  (cpu {cpu:6.3f} s)")


if __name__ == "__main__":
    main()

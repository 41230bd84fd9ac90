"""Seconds on CPU: VISTA3D's image encoder and one transposed conv, as MONAI builds them vs prepared.

Usage: python benchmarks/vista3d_layers.py [--width 48] [--size 64] [--repeats 2] [--threads N]
Prepared = voxelprompt.families.vista3d.inference.engine.layout.prepare_network: layout-preserving instance norms,
channels-last weights, and optionally sub-pixel transposed convs. Each case reports its best of
--repeats runs; times on a shared machine are indicative only.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import torch
from torch import nn

from voxelprompt.families.vista3d.inference.engine.layout import SubpixelConvTranspose3d, prepare_network, to_layout
from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d


def best_times(cases: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, object]]:
    """Best wall time of each case over ``repeats`` rounds, and its last result.

    Rounds visit every case in turn, so load from other processes spreads over all of them; the
    first round also warms up oneDNN.
    """
    results: dict[str, tuple[float, object]] = {name: (float("inf"), None) for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            out = fn()
            results[name] = (min(results[name][0], time.perf_counter() - start), out)
    return results


def max_diff(a: torch.Tensor | list[torch.Tensor], b: torch.Tensor | list[torch.Tensor]) -> float:
    a, b = (x if isinstance(x, list) else [x] for x in (a, b))
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def encoder_case(width: int, size: int, repeats: int) -> None:
    reference = random_vista3d(Vista3DSpec(width=width), seed=0)
    x = torch.rand(1, 1, size, size, size, generator=torch.Generator().manual_seed(0))
    variants = {
        "MONAI (contiguous)": (reference, False),
        "prepared, channels-last": (prepare_network(copy.deepcopy(reference)), True),
        "prepared, CL + sub-pixel": (prepare_network(copy.deepcopy(reference), subpixel=True), True),
        "prepared, contig + sub-px": (prepare_network(copy.deepcopy(reference), False, subpixel=True), False),
    }
    cases = {
        name: (lambda net=net, xl=to_layout(x, cl): net.image_encoder(xl, with_point=False, with_label=True)[1])
        for name, (net, cl) in variants.items()
    }
    print(f"image_encoder(x, with_point=False, with_label=True), width {width}, x 1x1x{size}^3:")
    results = best_times(cases, repeats)
    expected = results["MONAI (contiguous)"][1]
    for name, (seconds, out) in results.items():
        print(f"  {name:<26} {seconds:8.3f} s   max |diff| vs MONAI {max_diff(out, expected):.1e}")


def deconv_case(repeats: int, in_channels: int = 96, out_channels: int = 48, size: int = 32) -> None:
    torch.manual_seed(0)
    conv = nn.ConvTranspose3d(in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1)
    conv_cl = copy.deepcopy(conv).to(memory_format=torch.channels_last_3d)
    x = torch.randn(1, in_channels, size, size, size)
    x_cl = to_layout(x, True)
    cases = {
        "ConvTranspose3d, contig": lambda: conv(x),
        "ConvTranspose3d, CL": lambda: conv_cl(x_cl),
        "sub-pixel, contig": lambda sub=SubpixelConvTranspose3d(conv): sub(x),
        "sub-pixel, CL": lambda sub=SubpixelConvTranspose3d(conv, channels_last=True): sub(x_cl),
    }
    gflop = 2 * in_channels * out_channels * 27 * size**3 / 1e9
    print(f"ConvTranspose3d k3 s2 p1 op1, {in_channels}->{out_channels}, x {size}^3 ({gflop:.1f} GFLOP):")
    results = best_times(cases, repeats)
    expected = results["ConvTranspose3d, contig"][1]
    for name, (seconds, out) in results.items():
        print(f"  {name:<26} {seconds:8.3f} s  {gflop / seconds:5.1f} GFLOP/s   max |diff| {max_diff(out, expected):.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--size", type=int, default=64, help="input edge; a multiple of 16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.inference_mode():
        deconv_case(args.repeats)
        encoder_case(args.width, args.size, args.repeats)


if __name__ == "__main__":
    main()

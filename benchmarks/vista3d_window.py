"""Seconds per 128^3 window of VISTA3D (full size by default) on one device.

Usage: python benchmarks/vista3d_window.py [--width 48] [--device cpu] [--repeats 2] [--ct CT.nii.gz]
The input window is the real example CT after the bundle pre-processing, padded to 128^3.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from voxelprompt.catalog import everything_classes
from voxelprompt.imageio import read_volume
from voxelprompt.families.vista3d.inference.preprocess import IMAGE_KEY, build_preprocessing, volume_to_metatensor
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.windows import pad_to_window
from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d

CT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "totalseg" / "example_ct_sm.nii.gz"


def window(device: torch.device, ct: Path) -> torch.Tensor:
    profile = get_profile("bundle")
    image = build_preprocessing(profile)({IMAGE_KEY: volume_to_metatensor(read_volume(ct))})[IMAGE_KEY]
    padded, _ = pad_to_window(image[None].as_tensor(), profile.roi_size)
    return padded[..., :128, :128, :128].contiguous().to(device)


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ct", type=Path, default=CT)
    args = parser.parse_args()
    device = torch.device(args.device)
    net = random_vista3d(Vista3DSpec(width=args.width)).to(device)
    x = window(device, args.ct)
    n_params = sum(p.numel() for p in net.parameters())
    print(f"VISTA3D width {args.width} ({n_params / 1e6:.1f} M parameters), window {tuple(x.shape[-3:])}, "
          f"device {device}, torch threads {torch.get_num_threads()}")
    everything = torch.tensor(everything_classes(132), device=device)[:, None]
    click = torch.tensor([[[64.0, 64.0, 64.0]]], device=device)
    cases = {
        "auto, 1 class": lambda: net(x, class_vector=torch.tensor([[1]], device=device)),
        f"auto, {len(everything)} classes": lambda: net(x, class_vector=everything),
        "point, 1 click": lambda: net(x, point_coords=click, point_labels=torch.tensor([[1]], device=device)),
    }
    for name, fn in cases.items():
        times = [timed(fn, device) for _ in range(args.repeats)]
        print(f"{name:>20}: " + ", ".join(f"{t:.2f} s" for t in times) + f"  (best {min(times):.2f} s)")


if __name__ == "__main__":
    main()

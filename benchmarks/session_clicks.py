"""Click latency of an interactive session against MONAI's own cached path, full-size VISTA3D.

    python benchmarks/session_clicks.py [--width 48] [--clicks 3]

Both sides run on the real CT after the bundle pre-processing, with the same (deterministic
random) weights and the same clicks, in one run:

* MONAI: ``VISTA3D.forward(..., keep_cache=True)`` on the clicked 128^3 window, what MONAI Label's
  interactive loop uses: the first call encodes and stores the embeddings on the module, later
  calls reuse them and run the whole point head.
* voxelprompt: :class:`~voxelprompt.inference.vista3d.session.InteractiveSession` end to end (clicks in,
  label map on the input grid out), grid click windows: the first click encodes its window, later
  clicks in the same window run only the click-dependent half of the point head on cached features.

Prints seconds per click and the label agreement of the last click's window. Asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from vista3d_window import CT  # the script's folder is on sys.path when it runs

from voxelprompt.imageio import read_volume
from voxelprompt.inference.vista3d.profiles import get_profile
from voxelprompt.inference.vista3d.segmenter import Vista3DSegmenter
from voxelprompt.inference.vista3d.session import InteractiveSession
from voxelprompt.models.vista3d import Vista3DSpec, random_vista3d
from voxelprompt.types import Points, Prompts

#: Clicks in the CT's input voxels (3 mm): one, then two corrections within 5 voxels of it.
CLICKS = [(60.0, 50.0, 15.0), (64.0, 47.0, 14.0), (57.0, 53.0, 16.0)]


def monai_clicks(seg: Vista3DSegmenter, volume, n: int) -> list[float]:
    """Seconds per call of MONAI's keep_cache path on the window centred on the first click."""
    from voxelprompt.inference.vista3d.preprocess import to_model_voxels
    from voxelprompt.inference.vista3d.windows import pad_to_window

    prepared = seg.prepare(volume)
    padded, before = pad_to_window(prepared.batch.as_tensor(), seg.profile.roi_size)
    xyz = to_model_voxels(np.asarray(CLICKS[:n], dtype=np.float64), prepared.image) + np.asarray(before)
    roi = np.asarray(seg.profile.roi_size)
    lo = np.clip(np.round(xyz[0]).astype(int) - roi // 2, 0, np.asarray(padded.shape[-3:]) - roi)
    window = padded[(0, 0, *(slice(a, a + r) for a, r in zip(lo, roi)))][None, None]
    net = seg.net
    net.image_embeddings = None
    times = []
    with torch.no_grad():
        for k in range(1, n + 1):
            coords = torch.as_tensor(xyz[:k] - lo, dtype=torch.float32)[None]
            labels = torch.ones(1, k, dtype=torch.long)
            start = time.perf_counter()
            net(window, point_coords=coords, point_labels=labels, keep_cache=True)
            times.append(time.perf_counter() - start)
    net.image_embeddings = None
    return times


def session_clicks(seg: Vista3DSegmenter, volume, n: int) -> tuple[list[float], np.ndarray]:
    session = InteractiveSession(seg, volume, click_windows="grid")
    times, labels = [], None
    for k in range(1, n + 1):
        prompts = Prompts(points=Points.from_lists(CLICKS[:k]))
        start = time.perf_counter()
        result = session.segment(prompts)
        times.append(time.perf_counter() - start)
        labels = result.labels.array
    print(f"session cache: {session.stats}")
    return times, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=48)
    parser.add_argument("--clicks", type=int, default=3)
    args = parser.parse_args()
    n = min(args.clicks, len(CLICKS))
    net = random_vista3d(Vista3DSpec(width=args.width), seed=0)
    volume = read_volume(CT)
    print(f"VISTA3D width {args.width}, {torch.get_num_threads()} threads, CT {volume.shape}")
    reference = Vista3DSegmenter(net, Vista3DSpec(width=args.width), profile=get_profile("bundle"), engine="reference")
    monai = monai_clicks(reference, volume, n)
    exact = Vista3DSegmenter(net, Vista3DSpec(width=args.width), profile=get_profile("bundle"), engine="exact")
    ours, labels = session_clicks(exact, volume, n)
    prepared = exact.prepare(volume)
    one_shot = exact.segment_prepared(prepared, Prompts(points=Points.from_lists(CLICKS[:n])), click_windows="grid")
    one_shot = one_shot.labels.array
    print("| click | MONAI keep_cache (window only) s | voxelprompt session (end to end) s | ratio |")
    print("|---|---|---|---|")
    for k in range(n):
        print(f"| {k + 1} | {monai[k]:.2f} | {ours[k]:.2f} | {monai[k] / ours[k]:.1f}x |")
    later_monai, later_ours = np.mean(monai[1:]), np.mean(ours[1:])
    print(f"later clicks: MONAI {later_monai:.2f} s, voxelprompt {later_ours:.2f} s ({later_monai / later_ours:.1f}x)")
    same = float((labels == one_shot).mean())
    print(f"last click: labels equal to a one-shot call with the same windows on {same * 100:.4f} % of voxels "
          f"({int((labels != one_shot).sum())} differ)")


if __name__ == "__main__":
    main()

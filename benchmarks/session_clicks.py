"""Click latency of interactive sessions against the official ways, full-size models, one run.

    python benchmarks/session_clicks.py [--ct CT.nii.gz] [--width 48] [--later 8]
        [--head-start 60] [--families vista3d,segvol] [--segvol-later 8]

Every number of a row comes from the same process and the same (deterministic random) weights,
clicks and CT, so the ratios hold even on a busy machine; absolute seconds do not.

* VISTA3D, MONAI: ``VISTA3D.forward(..., keep_cache=True)`` on the window centred on the first
  click (what MONAI Label's interactive loop uses): the first call encodes, later calls reuse the
  embeddings and run the whole point head. Window logits only, no pre/post-processing.
* VISTA3D, voxelprompt: ``InteractiveSession(click_windows="grid")`` end to end (clicks on the
  input grid in, label map on the input grid out): the first click encodes its window, later
  clicks run the click-dependent half of the point head on cached features.
* VISTA3D with a head start (``--head-start S``, 0 skips it): a session opened with background
  pre-encoding (:meth:`InteractiveSession.start_preencoding`) S seconds before its first click.
* SegVol, official loop: the whole model (image encoder + prompt encoder + mask decoder, zoom-out-
  zoom-in) for every prompt, as the released code does; voxelprompt: ``SegVolSession`` (encoder
  outputs cached per window content, prompt encoder + mask decoder per prompt). Full-size SegVol v1
  with random weights; prompts are the same clicks.

Each object gets a first click and ``--later`` correction clicks within 5 voxels of it (every
request carries all clicks so far). Prints a table per family (first click, median and p95 of the
later clicks, ratios) and whether the session's labels equal a one-shot call's. Asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from vista3d_window import CT  # the script's folder is on sys.path when it runs

from voxelprompt.imageio import read_volume
from voxelprompt.families.vista3d.inference.profiles import get_profile
from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
from voxelprompt.families.vista3d.inference.session import InteractiveSession
from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d
from voxelprompt.types import Points, Prompts

#: The first click, in the CT's input voxels (3 mm), inside the liver of the example CT.
FIRST = (60.0, 50.0, 15.0)


def clicks(n_later: int, first: tuple[float, float, float] = FIRST) -> list[tuple[float, float, float]]:
    """The first click and ``n_later`` corrections within 5 voxels of it (fixed seed), input voxels."""
    rng = np.random.default_rng(0)
    offsets = rng.integers(-5, 6, size=(n_later, 3)) * np.array([1, 1, 0.4])
    return [tuple(float(v) for v in first)] + [tuple(float(v) for v in np.asarray(first) + o) for o in offsets]


def stats(times: list[float]) -> tuple[float, float, float]:
    """(first, median of later, p95 of later) seconds."""
    later = np.asarray(times[1:])
    return times[0], float(np.median(later)), float(np.percentile(later, 95))


def monai_clicks(seg: Vista3DSegmenter, volume, points) -> list[float]:
    """Seconds per call of MONAI's keep_cache path on the window centred on the first click."""
    from voxelprompt.families.vista3d.inference.preprocess import to_model_voxels
    from voxelprompt.families.vista3d.inference.windows import pad_to_window

    prepared = seg.prepare(volume)
    padded, before = pad_to_window(prepared.batch.as_tensor(), seg.profile.roi_size)
    xyz = to_model_voxels(np.asarray(points, dtype=np.float64), prepared.image) + np.asarray(before)
    roi = np.asarray(seg.profile.roi_size)
    lo = np.clip(np.round(xyz[0]).astype(int) - roi // 2, 0, np.asarray(padded.shape[-3:]) - roi)
    window = padded[(0, 0, *(slice(a, a + r) for a, r in zip(lo, roi)))][None, None]
    net = seg.net
    net.image_embeddings = None
    times = []
    with torch.no_grad():
        for k in range(1, len(points) + 1):
            coords = torch.as_tensor(xyz[:k] - lo, dtype=torch.float32, device=window.device)[None]
            labels = torch.ones(1, k, dtype=torch.long, device=window.device)
            start = time.perf_counter()
            net(window, point_coords=coords, point_labels=labels, keep_cache=True)
            if window.device.type == "cuda":
                torch.cuda.synchronize(window.device)
            times.append(time.perf_counter() - start)
    net.image_embeddings = None
    return times


def session_clicks(session, points) -> tuple[list[float], np.ndarray]:
    times, labels = [], None
    for k in range(1, len(points) + 1):
        start = time.perf_counter()
        labels = session.segment(Prompts(points=Points.from_lists(points[:k]))).labels.array
        times.append(time.perf_counter() - start)
    return times, labels


def row(name: str, times: list[float], base: list[float] | None = None) -> str:
    first, median, p95 = stats(times)
    ratio = "" if base is None else f"{stats(base)[0] / first:.1f}x | {stats(base)[1] / median:.1f}x"
    return f"| {name} | {first:.2f} | {median:.2f} | {p95:.2f} | {ratio or '- | -'} |"


HEADER = "| path | first click s | later median s | later p95 s | first: official/ours | later median: official/ours |\n|---|---|---|---|---|---|"


def vista3d(args, volume, points) -> None:
    spec = Vista3DSpec(width=args.width)
    net = random_vista3d(spec, seed=0)
    print(f"\n## VISTA3D width {args.width}, {len(points) - 1} later clicks")
    reference = Vista3DSegmenter(net, spec, profile=get_profile("bundle"), engine="reference")
    monai = monai_clicks(reference, volume, points)
    exact = Vista3DSegmenter(net, spec, profile=get_profile("bundle"), engine="exact")
    ours, labels = session_clicks(InteractiveSession(exact, volume, click_windows="grid"), points)
    rows = [row("MONAI keep_cache (window only)", monai), row("voxelprompt session (end to end)", ours, monai)]
    if args.head_start > 0:
        session = InteractiveSession(exact, volume, click_windows="grid")
        worker = session.start_preencoding()
        time.sleep(args.head_start)
        ahead, _ = session_clicks(session, points)
        rows.append(row(f"session, pre-encoding {args.head_start:g} s ahead", ahead, monai))
        print(f"pre-encoded before the first click: {len(worker.encoded)} windows, "
              f"{worker.preempted} abandoned for a request")  # fmt: skip
        session.close()
    print(HEADER)
    print("\n".join(rows))
    one_shot = exact.segment_prepared(exact.prepare(volume), Prompts(points=Points.from_lists(points)), click_windows="grid")
    same = int((labels != one_shot.labels.array).sum())
    print(f"last click: session labels vs a one-shot call with the same windows: {same} voxels differ")


def segvol(args, volume, points) -> None:
    from voxelprompt.families.segvol.inference.segmenter import SegVolSegmenter
    from voxelprompt.families.segvol.network import build_segvol

    torch.manual_seed(0)
    segmenter = SegVolSegmenter(build_segvol())
    points = points[: args.segvol_later + 1]
    print(f"\n## SegVol v1 (random weights, zoom-out-zoom-in), {len(points) - 1} later clicks")
    official = []
    for k in range(1, len(points) + 1):  # the released loop: the whole model for every prompt
        start = time.perf_counter()
        last = segmenter.segment(volume, Prompts(points=Points.from_lists(points[:k]))).labels.array
        official.append(time.perf_counter() - start)
    ours, labels = session_clicks(segmenter.open_session(volume), points)
    print(HEADER)
    print(row("official: whole model per prompt", official))
    print(row("voxelprompt SegVolSession", ours, official))
    print(f"last click: session labels vs the official loop: {int((labels != last).sum())} voxels differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ct", type=Path, default=CT)
    parser.add_argument("--width", type=int, default=48, help="VISTA3D width (48: the released size)")
    parser.add_argument("--later", type=int, default=8, help="later clicks per object (>= 2)")
    parser.add_argument("--head-start", type=float, default=60.0, help="seconds of pre-encoding before a first click (0: skip)")
    parser.add_argument("--families", default="vista3d,segvol")
    parser.add_argument("--segvol-later", type=int, default=8)
    args = parser.parse_args()
    if args.later < 2:
        parser.error(f"--later must be at least 2, got {args.later}")
    volume = read_volume(args.ct)
    points = clicks(args.later)
    print(f"{torch.get_num_threads()} torch threads, CT {args.ct.name} {volume.shape}; "
          "seconds per click, same process and clicks for every row")  # fmt: skip
    families = args.families.split(",")
    if "vista3d" in families:
        vista3d(args, volume, points)
    if "segvol" in families:
        segvol(args, volume, points)


if __name__ == "__main__":
    main()

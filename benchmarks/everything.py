"""Everything mode: the official inferer against voxelprompt's exact and fast engines, in one run.

    python benchmarks/everything.py                  # all three parts, ~25 min on 2 cores
    python benchmarks/everything.py --parts window   # one part

Parts (each engine runs in its own subprocess, so peak RSS is its own):

* ``window``: seconds per 128^3 window of the full-size (218 M, deterministic random weights)
  network with the 117-class everything prompt: MONAI's ``VISTA3D.forward`` (what the official
  inferer calls) vs the engine's prepared network; the largest absolute logit difference.
* ``stitch``: stitching a whole everything-mode volume (224x224x256, 333x333x603 and 512x512x768
  model-space grids: one the reference fits in 24 GB, the paper's scan, a large one) from windows
  of cheap stand-in logits: MONAI's ``SlidingWindowInfererAdapt`` (117 full-volume float maps)
  vs the cell stitcher (exact, overlap 0.25) vs the leanest fast setting (no overlap, running
  argmax). Wall time and peak RSS; a reference that cannot fit in this machine's
  memory is reported from its buffer size instead of run.
* ``end2end``: the shipped demo model on the real CT and a phantom: the three engines end to end
  (pre-processing to the label map on the input grid), windows, wall time, peak RSS, and Dice /
  identical voxels against the reference labels.

* ``memory``: the whole process's peak RSS for everything mode on a 512x512x768 model-space grid
  (``--grid``) with the full-size network loaded and prepared: main's exact stitcher (117 summed
  logits, plain slab order, int16 labels, MONAI's class branch, the prepared network a copy of
  MONAI's) against the feature stitcher (48 summed features, merged last slabs, uint8 labels, the
  lean class branch, the network prepared in place), each with the CLI's allocator tuning, and
  the feature stitcher once more with glibc's default allocator. The first ``--real-windows``
  windows run the network (its activation peak); the other windows get stand-in features of the
  right shape (a cheap function of the window), because 200 full-size windows take > 1.5 h on two
  cores: the time of a whole volume is extrapolated from the real windows. Labels of the two
  stitchers are compared, and for the differing voxels the largest decision margin (top logit
  minus runner-up, or distance to 0) of the float64 average is printed.
  ``--configs segmenter/tuned`` runs the product path instead: the allocator tuned first as the
  CLI does, ``load_model`` on a saved full-size random checkpoint (the segmenter prepares its own
  network in place), ``segment(everything)`` with the exact engine on a 512x512x768 noise volume
  at 1.5 mm (pre-processing, windows, stitching, inversion to the input grid); only the class
  features are swapped for stand-ins on all but the ``--real-windows`` windows.

The full-size time of a whole volume is extrapolated as windows x seconds per window + stitching,
and printed as such. Nothing here asserts a time; it prints measurements side by side.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from vista3d_window import CT, window  # the script's folder is on sys.path when it runs

GRIDS = {"medium": (224, 224, 256), "paper": (333, 333, 603), "large": (512, 512, 768)}
AVAILABLE_GB = 24.0


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---- children: one measurement each ---------------------------------------------------------


def child_window(engine: str, repeats: int) -> dict:
    from voxelprompt.catalog import everything_classes
    from voxelprompt.families.vista3d.inference.engine import prepare_network
    from voxelprompt.inference.allocator import keep_freed_memory
    from voxelprompt.families.vista3d.inference.engine.class_windows import class_embedding_matrix, window_class_logits
    from voxelprompt.families.vista3d.inference.engine.layout import to_layout
    from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d

    net = random_vista3d(Vista3DSpec(width=48), seed=0)
    classes = everything_classes(132)
    x = window(torch.device("cpu"), CT)
    times = []
    if engine != "reference":
        keep_freed_memory()
    with torch.no_grad():
        if engine in ("reference", "reference+malloc"):
            vector = torch.tensor(classes)[:, None]
            for _ in range(repeats):
                start = time.perf_counter()
                out = net(x, class_vector=vector, transpose=True)[0].permute(1, 2, 3, 0)
                times.append(time.perf_counter() - start)
        else:
            net = prepare_network(net, channels_last=True)
            embedding = class_embedding_matrix(net.class_head, classes)
            xl = to_layout(x, channels_last=True)
            for _ in range(repeats):
                start = time.perf_counter()
                out = window_class_logits(net, xl, embedding)
                times.append(time.perf_counter() - start)
    path = Path(tempfile.gettempdir()) / f"vp_window_{engine.replace('+', '_')}.pt"
    torch.save(out[::4, ::4, ::4].clone(), path)
    return {"seconds": min(times), "all": times, "peak_rss_gb": peak_rss_gb(), "sample": str(path)}


class _StandIn(torch.nn.Module):
    """Cheap logits with the shape of the real ones: [1, K, 128^3] from a window."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.calls = 0

    def forward(self, x, *args, **kwargs):
        self.calls += 1
        base = x[:, :1] * 2.0 - 1.0
        return base.expand(-1, self.k, -1, -1, -1) + torch.arange(self.k, dtype=x.dtype).view(1, -1, 1, 1, 1) * 1e-3


def child_stitch(engine: str, grid: tuple[int, int, int]) -> dict:
    from monai.inferers import SlidingWindowInfererAdapt

    from voxelprompt.catalog import everything_classes
    from voxelprompt.families.vista3d.inference.engine.accumulate import CellStitcher, RunningArgmax, slab_order, window_grid
    from voxelprompt.families.vista3d.inference.postprocess import logits_to_labels

    classes = everything_classes(132)
    k, roi = len(classes), (128, 128, 128)
    image = torch.rand((1, 1, *grid), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    with torch.no_grad():
        if engine == "reference":
            net = _StandIn(k)
            logits = SlidingWindowInfererAdapt(roi_size=roi, sw_batch_size=1, overlap=0.25)(image, net)
            logits_to_labels(logits, tuple(classes))
            windows, open_gb = net.calls, None
        else:
            overlap = 0.25 if engine == "exact" else 0.0
            windows_list = slab_order(window_grid(grid, roi, overlap), grid)
            stitcher = (
                CellStitcher(grid, windows_list, classes) if engine == "exact" else RunningArgmax(grid, classes)
            )
            net = _StandIn(k)
            for w in windows_list:
                out = net(image[(0, 0, *w.slices)][None, None])[0].permute(1, 2, 3, 0)
                stitcher.add(w, out)
            stitcher.result()
            windows = net.calls
            open_gb = stitcher.peak_open_bytes / 2**30 if engine == "exact" else None
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "windows": windows, "peak_rss_gb": peak_rss_gb(), "open_gb": open_gb}


def _standin_features(x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """[h, w, d] window -> [h, w, d, C] stand-in features (per voxel, plus the window's mean)."""
    f = x[..., None] * mix[0]  # one [h, w, d, C] buffer, like the network's output
    f += mix[1]
    return f.sin_().add_(x.mean() * mix[2])


def _standin_mix(channels: int = 48) -> torch.Tensor:
    return torch.randn(3, channels, generator=torch.Generator().manual_seed(7)) * torch.tensor([[6.0], [3.0], [1.0]])


def _vmhwm_gb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 2**20


def child_memory(stitcher_kind: str, grid: tuple[int, int, int], real: int, allocator: str) -> dict:
    import copy

    from voxelprompt.catalog import everything_classes
    from voxelprompt.inference.allocator import keep_freed_memory
    from voxelprompt.families.vista3d.inference.engine import prepare_network
    from voxelprompt.families.vista3d.inference.engine.accumulate import CellStitcher, open_voxels, slab_order, window_grid
    from voxelprompt.families.vista3d.inference.engine.class_windows import class_embedding_matrix, window_class_features
    from voxelprompt.families.vista3d.inference.engine.layout import to_layout
    from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d

    if allocator == "tuned":
        keep_freed_memory()
    old = stitcher_kind == "old"
    classes, roi = everything_classes(132), (128, 128, 128)
    net = random_vista3d(Vista3DSpec(width=48), seed=0)
    # main's segmenter prepared a copy (MONAI's network stays for the reference engine).
    net = prepare_network(copy.deepcopy(net) if old else net, channels_last=True).eval()
    if old:
        keep = net  # noqa: F841  (both copies resident, as in main's Vista3DSegmenter)
    embedding = class_embedding_matrix(net.class_head, classes).detach()
    image = torch.rand((1, 1, *grid), generator=torch.Generator().manual_seed(0))
    windows = window_grid(grid, roi, 0.25)
    if old:
        axis = int(np.argmax(grid))
        windows = sorted(windows, key=lambda w: (w.start[axis], w.start))  # main's slab_order
        stitcher = CellStitcher(grid, windows, classes, out=torch.zeros(grid, dtype=torch.int16))
    else:
        windows = slab_order(windows, grid)
        stitcher = CellStitcher(grid, windows, classes, head=embedding)
    mix = _standin_mix(embedding.shape[1])
    # The network runs where the most cells are open, so its activation peak meets the stitcher's.
    held = open_voxels(windows, grid)
    chosen = set(sorted(range(len(windows)), key=lambda i: -held[i])[:real])
    real_s, standin_s, start = [], 0.0, time.perf_counter()
    with torch.no_grad():
        for i, w in enumerate(windows):
            t = time.perf_counter()
            if i in chosen:
                x = to_layout(image[(slice(None), slice(None), *w.slices)], True)
                if old:
                    _, f = net.image_encoder(x, with_point=False, with_label=True)
                    f = net.class_head.image_post_mapping(f)[0].permute(1, 2, 3, 0)
                else:
                    f = window_class_features(net, x)
                torch.save(f, Path(tempfile.gettempdir()) / f"vp_mem_{stitcher_kind}_{i}.pt")
            else:
                f = _standin_features(image[(0, 0, *w.slices)], mix)
            values = (f.reshape(-1, f.shape[-1]) @ embedding.T).reshape(*f.shape[:-1], -1) if old else f
            del f
            stitcher.add(w, values)
            del values
            if i in chosen:
                real_s.append(time.perf_counter() - t)
            else:
                standin_s += time.perf_counter() - t
    seconds = time.perf_counter() - start
    path = Path(tempfile.gettempdir()) / f"vp_mem_{stitcher_kind}_{allocator}.npy"
    np.save(path, stitcher.result().numpy())
    return {"seconds": seconds, "real_window_s": real_s, "real_windows": sorted(chosen), "standin_s": standin_s, "windows": len(windows),
            "peak_rss_gb": _vmhwm_gb(), "open_gb": stitcher.peak_open_bytes / 2**30, "labels": str(path)}


def child_segmenter(grid: tuple[int, int, int], real: int, allocator: str) -> dict:
    """The product path: ``load_model`` + ``segment(everything)``, as ``voxelprompt segment --everything``.

    A full-size random checkpoint is loaded the CLI's way (allocator tuned first, then
    ``load_model``: the segmenter prepares its own network in place), a 512x512x768 CT-like volume
    at 1.5 mm (the bundle's spacing, so the model-space grid is the same) goes through
    pre-processing, the exact engine's windows, stitching and the inversion to the input grid. Only
    :func:`window_class_features` is swapped: the network on the ``real`` windows where the most
    cells are open, stand-in features elsewhere.
    """
    from voxelprompt.api import load_model
    from voxelprompt.inference.allocator import keep_freed_memory
    from voxelprompt.families.vista3d.inference.engine import class_windows
    from voxelprompt.families.vista3d.inference.engine.accumulate import open_voxels, slab_order, window_grid
    from voxelprompt.types import Prompts, Volume

    checkpoint = Path(tempfile.gettempdir()) / "vp_mem_full_size.pt"
    if not checkpoint.exists():  # made in a child of its own, so its memory is not counted here
        code = ("import sys; from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d, save_vista3d; "
                "save_vista3d(random_vista3d(Vista3DSpec(width=48), seed=0), sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(checkpoint)], check=True)
    if allocator == "tuned":
        keep_freed_memory()  # before loading, as the CLI does (cli/options.py tune_process)
    seg = load_model(checkpoint, "vista3d", device="cpu")
    windows = slab_order(window_grid(grid, (128, 128, 128), 0.25), grid)
    held = open_voxels(windows, grid)
    chosen = set(sorted(range(len(windows)), key=lambda i: -held[i])[:real])
    mix = _standin_mix(48)
    real_window = class_windows.window_class_features
    calls, real_s = [0], []

    def features(net, x):
        i, t = calls[0], time.perf_counter()
        calls[0] += 1
        if i not in chosen:
            return _standin_features(x[0, 0], mix)
        out = real_window(net, x)
        real_s.append(time.perf_counter() - t)
        return out

    class_windows.window_class_features = features
    opened: list[float] = []  # the engine logs its stitcher's peak of open cells (MB)
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: opened.append(float(record.args[0])) if "open cells" in record.msg else None
    class_windows.logger.addHandler(handler)
    class_windows.logger.setLevel(logging.DEBUG)
    # HU-like noise (no foreground crop), int16 as CT files store it; made without a float64 copy.
    array = np.random.default_rng(0).standard_normal(grid, dtype=np.float32)
    array *= 300.0
    array += 40.0
    volume = Volume(array.astype(np.int16), np.diag([1.5, 1.5, 1.5, 1.0]), source="noise")
    del array
    start = time.perf_counter()
    result = seg.segment(volume, Prompts(everything=True))
    seconds = time.perf_counter() - start
    if calls[0] != len(windows) or result.windows != len(windows):
        raise RuntimeError(f"expected the {len(windows)} windows of {grid}, ran {calls[0]}: another model-space grid?")
    engine_shares = {p.data_ptr() for p in seg.engine_net().parameters()} == {p.data_ptr() for p in seg.network.parameters()}
    return {"seconds": seconds, "real_window_s": real_s, "real_windows": sorted(chosen), "windows": len(windows),
            "standin_s": seconds - sum(real_s), "peak_rss_gb": _vmhwm_gb(), "open_gb": max(opened, default=0.0) / 2**10,
            "one_weight_copy": engine_shares, "labels_shape": list(result.labels.shape)}


def _decision_margins(grid, voxels: np.ndarray, real: list[int]) -> np.ndarray:
    """Float64 margins of the averaged logits at ``voxels`` ([N, 3]), from the same windows."""
    from voxelprompt.catalog import everything_classes
    from voxelprompt.families.vista3d.inference.engine.accumulate import slab_order, window_grid
    from voxelprompt.families.vista3d.inference.engine.class_windows import class_embedding_matrix
    from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d

    classes = everything_classes(132)
    net = random_vista3d(Vista3DSpec(width=48), seed=0)
    embedding = class_embedding_matrix(net.class_head, classes).detach().double()
    image = torch.rand((1, 1, *grid), generator=torch.Generator().manual_seed(0))[0, 0]
    mix = _standin_mix(embedding.shape[1])
    total = torch.zeros(len(voxels), embedding.shape[1], dtype=torch.float64)
    count = torch.zeros(len(voxels), 1, dtype=torch.float64)
    v = torch.as_tensor(voxels)
    for i, w in enumerate(slab_order(window_grid(grid, (128,) * 3, 0.25), grid)):
        inside = ((v >= torch.tensor(w.start)) & (v < torch.tensor(w.start) + torch.tensor(w.size))).all(1)
        if not inside.any():
            continue
        local = v[inside] - torch.tensor(w.start)
        if i in real:
            f = torch.load(Path(tempfile.gettempdir()) / f"vp_mem_features_{i}.pt")[local[:, 0], local[:, 1], local[:, 2]]
        else:
            x = image[w.slices]
            f = torch.sin(x[local[:, 0], local[:, 1], local[:, 2]][:, None] * mix[0] + mix[1]) + x.mean() * mix[2]
        total[inside] += f.double()
        count[inside] += 1
    top = ((total / count) @ embedding.T).topk(2, dim=-1).values
    return torch.minimum(top[:, 0] - top[:, 1], top[:, 0].abs()).numpy()


def child_end2end(engine: str, case: str) -> dict:
    from voxelprompt.api import load_model
    from voxelprompt.types import Prompts

    volume = _case_volume(case)
    seg = load_model(None, "vista3d", device="cpu")
    seg.engine = engine  # same loaded model, another engine
    if engine == "fast":
        from voxelprompt.families.vista3d.inference.engine import FastSettings

        seg.fast = FastSettings()
    start = time.perf_counter()
    result = seg.segment(volume, Prompts(everything=True))
    seconds = time.perf_counter() - start
    path = Path(tempfile.gettempdir()) / f"vp_e2e_{case}_{engine}.npy"
    np.save(path, np.asarray(result.labels.array))
    return {"seconds": seconds, "windows": result.windows, "peak_rss_gb": peak_rss_gb(), "labels": str(path)}


def _case_volume(case: str):
    from voxelprompt.data import PhantomConfig, make_phantom
    from voxelprompt.imageio import read_volume

    if case == "real-ct":
        return read_volume(CT)
    image, _ = make_phantom(PhantomConfig(shape=(192, 192, 256), seed=1001))
    return image


# ---- parent: run children, print ratios -----------------------------------------------------


def run_child(*args: str) -> dict:
    cmd = [sys.executable, __file__, "--child", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def part_window(repeats: int) -> dict:
    rows = {e: run_child("window", e, str(repeats)) for e in ("reference", "reference+malloc", "exact")}
    ref, ex = rows["reference"], rows["exact"]
    diff = float("nan")
    if "sample" in ref and "sample" in ex:
        diff = float((torch.load(ref["sample"]) - torch.load(ex["sample"])).abs().max())
    print("\n## Seconds per 128^3 window, full-size VISTA3D, 117 classes")
    print("| engine | best s | all | peak RSS GB |\n|---|---|---|---|")
    for name, r in rows.items():
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | |")
            continue
        print(f"| {name} | {r['seconds']:.1f} | {', '.join(f'{t:.1f}' for t in r['all'])} | {r['peak_rss_gb']:.2f} |")
    if "seconds" in ref and "seconds" in ex:
        print(f"speed-up per window: {ref['seconds'] / ex['seconds']:.2f}x; max |logit difference| {diff:.2e}")
    return rows


def part_stitch() -> dict:
    out = {}
    print("\n## Stitching a whole everything-mode volume (stand-in logits, 117 classes)")
    print("| grid | engine | windows | seconds | peak RSS GB | open cells GB |\n|---|---|---|---|---|---|")
    for name, grid in GRIDS.items():
        maps = 117 * int(np.prod(grid)) * 4 / 2**30
        for engine in ("reference", "exact", "fast"):
            # MONAI's stitching holds the maps, then post-processing makes about one more copy.
            if engine == "reference" and 2 * maps > AVAILABLE_GB * 0.8:
                print(f"| {grid} | reference | - | not run: its 117 logit maps alone take {maps:.0f} GB | - | - |")
                continue
            r = run_child("stitch", engine, ",".join(map(str, grid)))
            out[f"{name}/{engine}"] = r
            if "error" in r:
                print(f"| {grid} | {engine} | failed: {r['error']} | | | |")
                continue
            cells = f"{r['open_gb']:.2f}" if r.get("open_gb") is not None else "-"
            print(f"| {grid} | {engine} | {r['windows']} | {r['seconds']:.1f} | {r['peak_rss_gb']:.2f} | {cells} |")
    return out


def part_memory(grid: tuple[int, int, int], real: int, configs_arg: str) -> dict:
    configs = [tuple(c.split("/")) for c in configs_arg.split(",")]
    print(f"\n## Everything mode on {grid}: whole-process peak RSS, full-size network ({real} real windows)")
    print("| stitcher | allocator | windows | peak RSS GB | open cells GB | s per real window | stand-in stitching s | "
          "extrapolated full-size minutes |\n|---|---|---|---|---|---|---|---|", flush=True)
    rows = {}
    for kind, alloc in configs:  # one at a time: the old stitcher alone needs ~14 GB here
        r = rows[(kind, alloc)] = run_child("memory", kind, ",".join(map(str, grid)), str(real), alloc)
        if "error" in r:
            print(f"| {kind} | {alloc} | failed: {r['error']} | | | | | |", flush=True)
            continue
        minutes = r["windows"] * min(r["real_window_s"]) / 60 if r["real_window_s"] else float("nan")
        print(f"| {kind} | {alloc} | {r['windows']} | {r['peak_rss_gb']:.2f} | {r['open_gb']:.2f} | "
              f"{', '.join(f'{t:.1f}' for t in r['real_window_s'])} | {r['standin_s']:.1f} | {minutes:.0f} |", flush=True)
    old = rows.get(("old", "tuned"), {})
    new = rows.get(("features", "tuned"), rows.get(("features", "plain"), {}))
    if "labels" in old and "labels" in new:
        a, b = np.load(old["labels"]), np.load(new["labels"]).astype(np.int16)
        differ = np.argwhere(a != b)
        print(f"labels: {a.size - len(differ)} of {a.size} identical ({100 * (1 - len(differ) / a.size):.5f} %)")
        if len(differ):
            margins = _decision_margins(grid, differ, new["real_windows"])
            print(f"differing voxels: {len(differ)}; largest decision margin among them {margins.max():.3e} "
                  f"(median {np.median(margins):.3e}); all are near-ties if that is ~1e-5 or less")
            rows["largest_margin"] = float(margins.max())
        rows["differing"] = int(len(differ))
    return {f"{k[0]}/{k[1]}" if isinstance(k, tuple) else k: v for k, v in rows.items()}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    scores = []
    for c in np.union1d(np.unique(a), np.unique(b)):
        if c == 0:
            continue
        x, y = a == c, b == c
        scores.append(2 * np.logical_and(x, y).sum() / (x.sum() + y.sum()))
    return float(np.mean(scores)) if scores else 1.0


def part_end2end() -> dict:
    out = {}
    print("\n## End to end, shipped demo model, everything mode")
    print("| case | engine | windows | seconds | speed-up | peak RSS GB | differing voxels | mean Dice vs reference |")
    print("|---|---|---|---|---|---|---|---|")
    for case in ("real-ct", "phantom"):
        rows = {e: run_child("end2end", e, case) for e in ("reference", "exact", "fast")}
        ref = np.load(rows["reference"]["labels"]) if "labels" in rows["reference"] else None
        for engine, r in rows.items():
            if "error" in r:
                print(f"| {case} | {engine} | failed: {r['error']} | | | | | |")
                continue
            labels = np.load(r["labels"])
            speed = rows["reference"].get("seconds", float("nan")) / r["seconds"]
            differ = int((labels != ref).sum()) if ref is not None else -1
            d = dice(labels, ref) if ref is not None else float("nan")
            print(f"| {case} | {engine} | {r['windows']} | {r['seconds']:.1f} | {speed:.2f}x | {r['peak_rss_gb']:.2f} "
                  f"| {differ} of {labels.size} | {d:.4f} |")
            out[f"{case}/{engine}"] = {**r, "differing": differ, "dice": d}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="window,stitch,end2end")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--grid", default="512,512,768", help="model-space grid of the memory part")
    parser.add_argument("--configs", default="features/tuned,old/tuned,features/plain",
                        help="memory part: stitcher/allocator rows (old, features or segmenter / tuned or plain); "
                        "segmenter: the whole product path (load_model + segment everything, exact engine)")
    parser.add_argument("--real-windows", type=int, default=2, help="memory part: windows run through the network")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, engine, *rest = args.child
        if kind == "window":
            result = child_window(engine, int(rest[0]))
        elif kind == "memory" and engine == "segmenter":
            result = child_segmenter(tuple(int(v) for v in rest[0].split(",")), int(rest[1]), rest[2])
        elif kind == "memory":
            result = child_memory(engine, tuple(int(v) for v in rest[0].split(",")), int(rest[1]), rest[2])
        elif kind == "stitch":
            result = child_stitch(engine, tuple(int(v) for v in rest[0].split(",")))
        else:
            result = child_end2end(engine, rest[0])
        print(json.dumps(result))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    results = {}
    parts = args.parts.split(",")
    if "window" in parts:
        results["window"] = part_window(args.repeats)
    if "stitch" in parts:
        results["stitch"] = part_stitch()
    if "end2end" in parts:
        results["end2end"] = part_end2end()
    if "memory" in parts:
        results["memory"] = part_memory(tuple(int(v) for v in args.grid.split(",")), args.real_windows, args.configs)
    if "window" in results and "stitch" in results:
        _extrapolate(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


def _extrapolate(results: dict) -> None:
    from voxelprompt.families.vista3d.inference.engine.accumulate import window_grid

    win = results["window"]
    if any("seconds" not in win[e] for e in ("reference", "exact")):
        return
    print("\n## Whole volume, full-size model (extrapolated: windows x seconds per window + stitching)")
    print("| grid | engine | windows | estimated minutes | speed-up |\n|---|---|---|---|---|")
    for name, grid in GRIDS.items():
        n_ref = len(window_grid(grid, (128,) * 3, 0.25))
        n_fast = len(window_grid(grid, (128,) * 3, 0.0))
        stitch = results["stitch"]
        ref_min = (n_ref * win["reference"]["seconds"] + stitch.get(f"{name}/reference", {}).get("seconds", 0.0)) / 60
        rows = [
            ("reference", n_ref, ref_min),
            ("exact", n_ref, (n_ref * win["exact"]["seconds"] + stitch.get(f"{name}/exact", {}).get("seconds", 0.0)) / 60),
            ("fast", n_fast, (n_fast * win["exact"]["seconds"] + stitch.get(f"{name}/fast", {}).get("seconds", 0.0)) / 60),
        ]
        for engine, n, minutes in rows:
            print(f"| {grid} | {engine} | {n} | {minutes:.1f} | {ref_min / minutes:.2f}x |")


if __name__ == "__main__":
    main()

"""Seconds per full-size window with the CLI's allocator: bounded heap (mapped cells, trim between windows) vs not.

    python benchmarks/mapped_cells.py                        # 128x128x224: 2 windows a run
    python benchmarks/mapped_cells.py --grid 224,224,224 --order heap,bounded

With glibc's allocator tuned (``voxelprompt.inference.allocator.keep_freed_memory``) the stitcher's
open cells are made with ``mapped_empty`` (their own memory maps, outside the heap) and the window
loop hands free heap pages back between windows (``release_free_memory``). This runs
``load_model`` + ``segment(everything)`` with the exact engine on a CT-like noise volume at 1.5 mm
with a full-size random checkpoint, alternately ``bounded`` (as shipped) and ``heap`` (cells in
the heap, no trimming: main's way before), in one process (ABBA order by default, so a shared
machine's load drifts into both), and prints seconds per window of each, their ratio, and
whether the labels are identical. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", default="128,128,224", help="input (= model-space) grid at 1.5 mm")
    parser.add_argument("--order", default="heap,bounded,bounded,heap", help="runs, in order")
    parser.add_argument("--width", type=int, default=48, help="network width (48: the released size)")
    args = parser.parse_args()

    from voxelprompt.api import load_model
    from voxelprompt.inference.allocator import keep_freed_memory
    from voxelprompt.families.vista3d.inference.engine import accumulate, class_windows
    from voxelprompt.types import Prompts, Volume

    checkpoint = Path(tempfile.gettempdir()) / f"vp_mem_width{args.width}.pt"
    if not checkpoint.exists():  # saved by a child: the random network's memory is not this process's
        code = ("import sys; from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d, save_vista3d; "
                "save_vista3d(random_vista3d(Vista3DSpec(width=int(sys.argv[2])), seed=0), sys.argv[1])")
        subprocess.run([sys.executable, "-c", code, str(checkpoint), str(args.width)], check=True)
    keep_freed_memory()  # as the CLI does, before loading
    seg = load_model(checkpoint, "vista3d", device="cpu")
    shape = tuple(int(v) for v in args.grid.split(","))
    volume = Volume(np.random.default_rng(0).normal(40, 300, shape).astype(np.float32), np.diag([1.5, 1.5, 1.5, 1.0]))
    mapped, trim = accumulate.mapped_empty, class_windows.release_free_memory

    def heap(shape, dtype=torch.float32):
        return torch.empty(tuple(shape), dtype=dtype)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, grid {shape}, width {args.width}")
    print("| run | cells | windows | s per window |\n|---|---|---|---|")
    rows, labels = [], {}
    for i, kind in enumerate(args.order.split(",")):
        bounded = kind == "bounded"
        accumulate.mapped_empty = mapped if bounded else heap
        class_windows.release_free_memory = trim if bounded else (lambda: False)
        start = time.perf_counter()
        result = seg.segment(volume, Prompts(everything=True))
        per = (time.perf_counter() - start) / result.windows
        rows.append({"cells": kind, "s_per_window": per, "windows": result.windows})
        labels.setdefault(kind, np.asarray(result.labels.array).copy())
        print(f"| {i + 1} | {kind} | {result.windows} | {per:.2f} |", flush=True)
    accumulate.mapped_empty, class_windows.release_free_memory = mapped, trim
    mean = {k: float(np.mean([r["s_per_window"] for r in rows if r["cells"] == k])) for k in labels}
    if len(mean) == 2:
        print(f"bounded / heap seconds per window: {mean['bounded'] / mean['heap']:.3f}; labels identical: "
              f"{bool(np.array_equal(labels['bounded'], labels['heap']))}")
    print(json.dumps({"rows": rows, "mean": mean}))


if __name__ == "__main__":
    main()

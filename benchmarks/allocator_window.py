"""Peak RSS and seconds of full-size 128^3 windows (class features) under glibc allocator settings.

    python benchmarks/allocator_window.py MODE WINDOWS [trim]

MODE: ``plain`` (glibc's default), ``tuned`` (the CLI's ``keep_freed_memory``: no mmap, no trim)
or ``thrN`` (mmap threshold N MB, no trim: blocks of N MB and more are mapped, smaller ones stay in
the heap). ``trim``: ``malloc_trim(0)`` after each window, as the engine's window loop does when
tuned. Prints one JSON line: VmHWM (GiB) after loading the prepared network, then (seconds,
VmHWM) per window. Run the modes side by side (same load) and compare within one run.
"""

from __future__ import annotations

import ctypes
import json
import sys
import time

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>


def vmhwm_gib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 2**20


def main() -> None:
    mode, windows, trim = sys.argv[1], int(sys.argv[2]), "trim" in sys.argv[3:]
    libc = ctypes.CDLL("libc.so.6")
    if mode == "tuned":
        from voxelprompt.inference.allocator import keep_freed_memory

        keep_freed_memory()
    elif mode.startswith("thr"):
        ok = libc.mallopt(M_MMAP_THRESHOLD, int(mode[3:]) << 20) == 1
        if not (ok and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1):
            raise SystemExit(f"glibc refused mode {mode}")
    from voxelprompt.families.vista3d.inference.engine import prepare_network
    from voxelprompt.families.vista3d.inference.engine.class_windows import window_class_features
    from voxelprompt.families.vista3d.inference.engine.layout import to_layout
    from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d

    net = prepare_network(random_vista3d(Vista3DSpec(width=48), seed=0)).eval()
    base = vmhwm_gib()
    x = to_layout(torch.rand(1, 1, 128, 128, 128, generator=torch.Generator().manual_seed(0)), True)
    rows = []
    with torch.no_grad():
        for _ in range(windows):
            start = time.perf_counter()
            features = window_class_features(net, x).clone()
            seconds = time.perf_counter() - start
            del features
            if trim and mode != "plain":
                libc.malloc_trim(0)
            rows.append((round(seconds, 1), round(vmhwm_gib(), 2)))
    print(json.dumps({"mode": mode, "base_hwm": round(base, 2), "windows": rows}))


if __name__ == "__main__":
    main()

"""Keep freed activation memory in the process instead of returning it to the OS after every window.

glibc serves each allocation above its mmap threshold (32 MB at most) with fresh pages and unmaps
them on free, so every 50-400 MB activation of a 128^3 VISTA3D window page-faults again on every
call. Measured here: the full-width encoder at 64^3 ran 1.5x faster (3.4 -> 2.2 s) and a
channels-last transposed conv 2.4-2.8x faster with mmap disabled. The cost: the process keeps its
peak heap (RSS does not shrink after a large volume). Only glibc systems are tuned; elsewhere, or
with ``VOXELPROMPT_KEEP_MALLOC=1``, nothing changes.

A heap that is never trimmed also keeps every hole: buffers that outlive a window (the open cells
of everything-mode stitching), allocated between one window's activations and the next, split the
free space, and on a 512x512x768 grid the heap grew ~2.4 GB over 200 windows. Such buffers are
made with :func:`mapped_empty` instead: their own pages, outside malloc, returned to the system
when the tensor is freed, so the heap holds only the per-window activations, which reuse the same
space window after window.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import mmap
import os
import sys
from collections.abc import Sequence

import torch

__all__ = ["keep_freed_memory", "mapped_empty", "ENV_OPT_OUT"]

logger = logging.getLogger(__name__)

ENV_OPT_OUT = "VOXELPROMPT_KEEP_MALLOC"
# mallopt parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_done = False


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to reuse freed memory (no mmap per allocation, no trimming); once per process.

    Returns:
        True if the allocator is (now or already) tuned.
    """
    global _done
    if _done:
        return True
    if os.environ.get(ENV_OPT_OUT) or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if ok:
        logger.debug("glibc malloc tuned: no mmap per allocation, no trimming")
    _done = ok
    return ok


def mapped_empty(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor in its own anonymous memory map, outside malloc's heap.

    For large buffers that live across many window evaluations: the kernel gives the pages back as
    soon as the tensor (and every view of it) is freed, whatever the allocator's settings, and they
    never split the heap that the windows' activations reuse (module docstring). Each call costs
    an ``mmap`` and first-touch page faults, so use it for buffers of megabytes, not per element.

    Args:
        shape: the tensor's shape (any number of axes; empty tensors are fine).
        dtype: any fixed-size torch dtype.

    Returns:
        A tensor of ``shape`` and ``dtype`` whose storage is the map (it keeps the map alive).
    """
    numel = math.prod(int(n) for n in shape)
    if numel == 0:
        return torch.empty(tuple(shape), dtype=dtype)
    itemsize = torch.empty((), dtype=dtype).element_size()
    buffer = mmap.mmap(-1, numel * itemsize)  # anonymous, private, zero-filled on first touch
    return torch.frombuffer(buffer, dtype=dtype, count=numel).view(tuple(int(n) for n in shape))

"""Keep freed activation memory in the process instead of returning it to the OS after every window.

glibc serves each allocation above its mmap threshold (32 MB at most) with fresh pages and unmaps
them on free, so every 50-400 MB activation of a 128^3 VISTA3D window page-faults again on every
call. Measured here: the full-width encoder at 64^3 ran 1.5x faster (3.4 -> 2.2 s) and a
channels-last transposed conv 2.4-2.8x faster with mmap disabled. The cost: the process keeps its
peak heap (RSS does not shrink after a large volume). Only glibc systems are tuned; elsewhere, or
with ``VOXELPROMPT_KEEP_MALLOC=1``, nothing changes.

A heap that is never trimmed also keeps every hole: on a 512x512x768 grid in everything mode it
grew ~2.4 GB over 200 windows, beyond one window's live peak. Two things bound it, keeping the
reuse inside a window (where the speed comes from): buffers that outlive windows (the stitcher's
open cells) are made with :func:`mapped_empty`, their own pages outside malloc, returned when the
tensor is freed; and the window loops call :func:`release_free_memory` between windows, which
hands the free heap pages back (``malloc_trim``), so each window faults its working set in once
instead of once per allocation. A bounded ``M_MMAP_THRESHOLD`` cannot separate the two: open
cells and activations have the same sizes (50-400 MB), only their lifetimes differ. What remains:
inside one full-size window the unmapped heap needs ~2 GB more than glibc's default allocator
(``benchmarks/allocator_window.py``), so loops whose long-lived buffers are large run under
:func:`default_malloc` (glibc's own behaviour for the loop, the tuning again after it).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import math
import mmap
import os
import sys
from collections.abc import Iterator, Sequence

import torch

__all__ = ["keep_freed_memory", "release_free_memory", "default_malloc", "mapped_empty", "ENV_OPT_OUT"]

logger = logging.getLogger(__name__)

ENV_OPT_OUT = "VOXELPROMPT_KEEP_MALLOC"
# mallopt parameters from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_MMAP_THRESHOLD = -3
# glibc's defaults (malloc.c: DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_THRESHOLD_MIN).
_DEFAULTS = ((_M_MMAP_MAX, 65536), (_M_TRIM_THRESHOLD, 128 * 1024), (_M_MMAP_THRESHOLD, 128 * 1024))
_TUNED = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
_done = False
_libc: ctypes.CDLL | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to reuse freed memory (no mmap per allocation, no trimming); once per process.

    Returns:
        True if the allocator is (now or already) tuned.
    """
    global _done, _libc
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
        _libc = libc
    _done = ok
    return ok


def release_free_memory() -> bool:
    """Give the tuned heap's free pages back to the system (glibc ``malloc_trim(0)``).

    Call it between windows of a long loop: what the last window freed stops counting in RSS, and
    the next window faults its pages in once. A no-op unless :func:`keep_freed_memory` tuned this
    process (glibc's default already maps and unmaps large blocks).

    Returns:
        True if memory was handed back.
    """
    if _libc is None:
        return False
    return bool(_libc.malloc_trim(0))


@contextlib.contextmanager
def default_malloc(active: bool = True) -> Iterator[None]:
    """glibc's default allocator behaviour inside the block, the tuning again after it.

    For window loops that hold large buffers across windows (everything mode on a large grid):
    there the tuned heap's extra ~2 GB per full-size window lands on top of those buffers, so the
    loop gives up the tuning's 5-15 % per window for a lower peak. The free heap is handed back on
    entry. A no-op when ``active`` is False or :func:`keep_freed_memory` did not tune this process.
    """
    if not active or _libc is None:
        yield
        return
    for param, value in _DEFAULTS:
        _libc.mallopt(param, value)
    _libc.malloc_trim(0)
    try:
        yield
    finally:
        for param, value in _TUNED:
            _libc.mallopt(param, value)


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
    # Private: a shared anonymous map would be shmem (tmpfs) pages.
    buffer = mmap.mmap(-1, numel * itemsize, flags=mmap.MAP_PRIVATE)  # anonymous, zero-filled on first touch
    return torch.frombuffer(buffer, dtype=dtype, count=numel).view(tuple(int(n) for n in shape))

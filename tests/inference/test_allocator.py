"""Process-memory helpers: tensors outside malloc's heap."""

from __future__ import annotations

import gc

import pytest
import torch

from voxelprompt.inference.allocator import mapped_empty


def _mapping_of(address: int) -> str | None:
    """The /proc/self/maps line whose range holds ``address`` (Linux)."""
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
            if lo <= address < hi:
                return line
    return None


@pytest.mark.parametrize("dtype", [torch.float32, torch.uint8, torch.int16, torch.float64])
def test_mapped_empty_is_a_usable_tensor(dtype):
    t = mapped_empty((3, 4, 5, 2), dtype)
    assert t.shape == (3, 4, 5, 2) and t.dtype == dtype and t.is_contiguous()
    t.copy_(torch.arange(120).view(3, 4, 5, 2).to(dtype))
    t += 1
    assert torch.equal(t, torch.arange(1, 121).view(3, 4, 5, 2).to(dtype))


def test_mapped_empty_is_its_own_map_and_goes_back_when_the_last_view_dies():
    big = mapped_empty((64, 1024, 1024))  # 256 MB
    start = big.data_ptr()
    line = _mapping_of(start)
    assert line is not None and "[heap]" not in line
    lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
    assert hi - lo >= big.numel() * 4
    big[::16].fill_(1.0)
    view = big[3]
    del big
    assert float(view.sum()) == 0.0  # a view keeps the map alive
    del view
    gc.collect()
    line = _mapping_of(start)
    assert line is None or int(line.split()[0].split("-")[0], 16) != lo  # unmapped (maybe reused since)


def test_mapped_empty_of_no_elements():
    assert mapped_empty((0, 3)).shape == (0, 3)


def test_release_free_memory_is_a_no_op_without_the_tuning():
    from voxelprompt.inference import allocator

    if allocator._libc is None:  # nothing in this test process tuned glibc's malloc
        assert allocator.release_free_memory() is False


_TUNED_CHILD = """
import sys
import torch
from voxelprompt.inference.allocator import keep_freed_memory, release_free_memory

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

if not keep_freed_memory():
    print("untuned"); sys.exit(0)
before = rss_mb()
blocks = [torch.ones(64 * 2**20 // 4) for _ in range(6)]  # 384 MB in the heap (no mmap when tuned)
del blocks
kept = rss_mb()
released = release_free_memory()
print(round(kept - before), round(rss_mb() - before), released)
"""


def test_tuned_heap_keeps_freed_memory_until_released():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _TUNED_CHILD], capture_output=True, text=True, check=True).stdout.split()
    if out == ["untuned"]:
        pytest.skip("not glibc: nothing to tune")
    kept, after, released = int(out[0]), int(out[1]), out[2]
    assert kept > 300  # the tuning keeps the freed blocks resident (no unmapping)
    assert released == "True" and after < 100  # handed back between windows


_DEFAULT_INSIDE_CHILD = """
import torch
from voxelprompt.inference.allocator import default_malloc, keep_freed_memory

def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

def kept_after_free():
    before = rss_mb()
    blocks = [torch.ones(64 * 2**20 // 4) for _ in range(6)]  # 384 MB
    del blocks
    return round(rss_mb() - before)

assert keep_freed_memory()
with default_malloc(active=False):
    off = kept_after_free()
with default_malloc():
    inside = kept_after_free()
print(off, inside, kept_after_free())
"""


def test_default_malloc_gives_glibcs_behaviour_inside_and_the_tuning_after():
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("not glibc: nothing to tune")
    out = subprocess.run([sys.executable, "-c", _DEFAULT_INSIDE_CHILD], capture_output=True, text=True, check=True)
    off, inside, after = (int(v) for v in out.stdout.split())
    assert off > 300  # inactive: still tuned, the freed blocks stay resident
    assert inside < 100  # glibc's default: large blocks are unmapped when freed
    assert after > 300  # the tuning is back after the block

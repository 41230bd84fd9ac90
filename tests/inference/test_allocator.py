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

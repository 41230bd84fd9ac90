"""Process-level state of a training run: RNG snapshots for exact resume, and the optional
``torchrun`` process group."""

from __future__ import annotations

import os
import random

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["init_distributed", "any_rank", "rng_state", "set_rng_state"]


def init_distributed(force: bool) -> tuple[int, int, bool]:
    """``(rank, world_size, initialised_here)``; a process group only under WORLD_SIZE > 1 (torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not force:
        return 0, 1, False
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), False
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend, init_method="env://")
    return dist.get_rank(), dist.get_world_size(), True


def any_rank(flag: bool, distributed: bool, device: torch.device) -> bool:
    if not distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, inner, gauss = state["python"]
    random.setstate((version, tuple(inner), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])

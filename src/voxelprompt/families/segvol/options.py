"""How a SegVol model runs: its options record, whose fields carry their command-line flags."""

from __future__ import annotations

from dataclasses import dataclass

from voxelprompt.errors import VoxelPromptError
from voxelprompt.families.options import option

__all__ = ["SegVolOptions", "MODES"]

MODES = ("zoom", "sliding", "zoom-out")


@dataclass(frozen=True)
class SegVolOptions:
    """How a SegVol model runs.

    Args:
        mode: ``zoom`` (zoom-out-zoom-in, the paper's), ``sliding`` or ``zoom-out``.
        overlap: sliding-window overlap in [0, 1) (the reference uses 0.5).
    """

    mode: str = option(
        "zoom", "--segvol-mode", "SegVol: zoom (zoom-out-zoom-in, the paper's), sliding or zoom-out; omitted: zoom.", choices=MODES
    )  # fmt: skip
    overlap: float = option(0.5, "--overlap", "SegVol: sliding-window overlap in [0, 1); omitted: 0.5.", metavar="F")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise VoxelPromptError(f"unknown SegVol mode {self.mode!r}; choose zoom, sliding or zoom-out")
        if not isinstance(self.overlap, int | float) or not 0.0 <= self.overlap < 1.0:
            raise VoxelPromptError(f"overlap must be a number in [0, 1), got {self.overlap!r}")

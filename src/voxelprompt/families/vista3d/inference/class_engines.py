"""How class prompts are computed, as objects: MONAI's official inferer (``reference``), the same
labels with less time and memory (``exact``) or fewer windows (``fast``); :func:`build_engine` picks one.

See ``engine/README.md`` for what each promises and costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from monai.networks.nets.vista3d import VISTA3D

from voxelprompt.errors import VoxelPromptError
from voxelprompt.families.vista3d.inference.engine import FastSettings, stitched_class_labels
from voxelprompt.families.vista3d.inference.networks import Vista3DNetworks
from voxelprompt.families.vista3d.inference.postprocess import logits_to_labels
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile
from voxelprompt.families.vista3d.inference.windows import WindowCounter, class_logits

__all__ = ["ClassEngine", "ReferenceEngine", "ExactEngine", "FastEngine", "ENGINES", "build_engine"]


@dataclass(frozen=True)
class ClassEngine:
    """A way to compute class prompts, and the network view clicks run through with it.

    Engines hold no state of a volume: one object can serve several segmenters.
    """

    #: the name users choose it by (``Vista3DOptions.engine``, ``--engine``).
    name: ClassVar[str] = ""
    #: whether it runs the network prepared for channels-last kernels (so a segmenter that owns
    #: its network may prepare it in place).
    prepared: ClassVar[bool] = True

    def click_net(self, networks: Vista3DNetworks) -> VISTA3D:
        """The network clicks run through with this engine."""
        return networks.engine_net() if self.prepared else networks.monai_net()

    def class_labels(
        self,
        networks: Vista3DNetworks,
        batch: torch.Tensor,
        classes: tuple[int, ...],
        counter: WindowCounter,
        profile: InferenceProfile,
        last_automatic: int,
        amp: bool = False,
        progress: bool = False,
    ) -> torch.Tensor:
        """Class-index map of class prompts in model space.

        Args:
            networks: the segmenter's network views.
            batch: [1, 1, H, W, D] pre-processed image (model space).
            classes: global class indices.
            counter: the click network wrapped to count windows; its ``calls`` grow by the
                windows evaluated.
            profile: windowing settings of the official pipeline.
            last_automatic: highest class id the automatic branch was trained on.
            amp: float16 autocast (CUDA; the prepared engines only).
            progress: show a progress bar over windows.

        Returns:
            [1, H, W, D] float class indices (0: background).
        """
        raise NotImplementedError


@dataclass(frozen=True)
class ReferenceEngine(ClassEngine):
    """MONAI's ``SlidingWindowInfererAdapt`` + ``VistaPostTransformd`` on MONAI's network, what the
    official bundle runs (through ``counter``, so a session's network view serves it too)."""

    name: ClassVar[str] = "reference"
    prepared: ClassVar[bool] = False

    def class_labels(self, networks, batch, classes, counter, profile, last_automatic, amp=False, progress=False):
        logits = class_logits(batch, counter, classes, profile, last_automatic, progress)
        return logits_to_labels(logits.cpu(), classes)


@dataclass(frozen=True)
class ExactEngine(ClassEngine):
    """The official windows with order-independent average-then-argmax and bounded stitching memory
    on the prepared network: the reference's labels except at its float near-ties."""

    name: ClassVar[str] = "exact"

    def settings(self) -> FastSettings | None:
        """The fast mode's trade-offs, None for the official windows and averaging."""
        return None

    def class_labels(self, networks, batch, classes, counter, profile, last_automatic, amp=False, progress=False):
        bar = _ProgressBar(progress)
        labels, windows = stitched_class_labels(
            batch, networks.engine_net(), classes, profile, last_automatic, fast=self.settings(),
            channels_last=True, amp=amp, on_window=bar.update,
        )  # fmt: skip
        bar.close()
        counter.calls += windows
        return labels


@dataclass(frozen=True)
class FastEngine(ExactEngine):
    """Fewer windows (no overlap, air windows skipped, coarse-to-fine for few classes): labels
    differ from the reference's; ``fast`` holds the trade-offs."""

    name: ClassVar[str] = "fast"
    fast: FastSettings = field(default_factory=FastSettings)

    def settings(self) -> FastSettings | None:
        return self.fast


#: Engine name -> its class (the names of :data:`voxelprompt.families.vista3d.options.ENGINES`).
ENGINES: dict[str, type[ClassEngine]] = {e.name: e for e in (ReferenceEngine, ExactEngine, FastEngine)}


def build_engine(engine: str | ClassEngine = "exact", fast: FastSettings | None = None) -> ClassEngine:
    """The engine called ``engine`` (an engine object is returned as it is).

    Args:
        engine: ``"exact"``, ``"reference"``, ``"fast"`` or a :class:`ClassEngine`.
        fast: settings of the fast engine (default :class:`FastSettings`); ignored by the others.

    Raises:
        VoxelPromptError: an unknown engine name.
    """
    if isinstance(engine, ClassEngine):
        return engine
    if engine not in ENGINES:
        raise VoxelPromptError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == FastEngine.name:
        return FastEngine(fast or FastSettings())
    return ENGINES[engine]()


class _ProgressBar:
    """A tqdm bar over windows, created on the first update (only when progress is wanted)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc="windows")
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

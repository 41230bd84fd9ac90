"""The VISTA3D segmenter: load a model once, segment many volumes with class and click prompts."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from monai.networks.nets.vista3d import VISTA3D

from voxelprompt.catalog import LearntClasses, released_vista3d
from voxelprompt.errors import VoxelPromptError
from voxelprompt.families.vista3d.inference.automatic import AutomaticMasks
from voxelprompt.families.vista3d.inference.class_engines import ENGINES, ClassEngine, build_engine
from voxelprompt.families.vista3d.inference.class_prompts import resolve_classes
from voxelprompt.families.vista3d.inference.click_prompts import (
    changed_on_input,
    click_report,
    point_embedding,
    segment_clicks,
)
from voxelprompt.families.vista3d.inference.click_windows import ClickWindows, build_click_windows
from voxelprompt.families.vista3d.inference.engine import FastSettings
from voxelprompt.families.vista3d.inference.networks import Vista3DNetworks
from voxelprompt.families.vista3d.inference.postprocess import invert_to_input, label_dtype
from voxelprompt.families.vista3d.inference.preprocess import (
    IMAGE_KEY,
    PreparedVolume,
    build_preprocessing,
    volume_to_metatensor,
)
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile, get_profile
from voxelprompt.families.vista3d.inference.windows import WindowCounter, class_logits, pad_to_window
from voxelprompt.families.vista3d.network import Vista3DSpec, load_vista3d
from voxelprompt.request import ensure_checked, is_checked
from voxelprompt.types import OBJECT_ID, Prompts, Segmentation, Volume

if TYPE_CHECKING:
    from voxelprompt.families.vista3d.inference.session import InteractiveSession

__all__ = ["Vista3DSegmenter", "PreparedVolume", "ENGINES"]

logger = logging.getLogger(__name__)


class Vista3DSegmenter:
    """Segments CT volumes with one VISTA3D network and one official inference profile.

    Args:
        net: a VISTA3D network in eval mode.
        spec: its architecture (``last_supported`` decides zero-shot class ids).
        profile: ``"bundle"`` (default), ``"research"`` or an :class:`InferenceProfile`.
        device: torch device for the network and windows.
        progress: show a progress bar over sliding windows.
        engine: ``"exact"`` (default: the official windows and averaging, with channels-last
            kernels and bounded-memory stitching; labels equal the reference except where its
            top logit is within float rounding of the runner-up or of 0, see
            ``families/vista3d/inference/engine/README.md``), ``"reference"`` (MONAI's own
            inferer, as the official bundle runs it), ``"fast"`` (fewer windows, labels differ;
            tuned by ``fast``), or a :class:`~voxelprompt.families.vista3d.inference.class_engines.ClassEngine`.
        fast: settings of the fast engine (default :class:`FastSettings`; used when ``engine`` is fast).
        amp: run the network in float16 autocast (CUDA only; exact/fast engines).
        official_unpredicted: write the profile's "not predicted" marker (255) where no window
            produced a prediction, as the official pipeline does (parity tests only). By default
            those voxels are background (0): a label map holds only 0 and prompted ids.
        taught_classes: class id -> name of classes finetuning added to this model (ids outside the
            catalog's trained set, even above ``last_supported``: they segment automatically like
            trained ones; clicks on them use the zero-shot embedding, whose point branch never saw them).
        prepare_in_place: give True when nothing else uses ``net`` (as :meth:`from_checkpoint`
            does): the exact and fast engines then prepare ``net`` itself for their kernels instead
            of a copy, which saves the weights' memory once more (0.87 GB at full size). Its state
            dict stays the checkpoint's; MONAI's forward on it is no longer MONAI's layout, so code
            that needs that asks :meth:`monai_net`. Ignored by the reference engine.
        learnt: the classes these weights learnt (class prompts for others are refused unless
            ``Prompts.allow_unlearnt``); None: the released VISTA3D's 127.
        demo: these are the shipped demo weights (results get marked as the demo model's).

    Implements :class:`voxelprompt.inference.protocol.Segmenter`: threads share a segmenter by
    taking turns through :attr:`lock`, which every call takes.
    """

    family = "vista3d"

    def __init__(
        self,
        net: VISTA3D,
        spec: Vista3DSpec,
        profile: str | InferenceProfile = "bundle",
        device: str | torch.device = "cpu",
        progress: bool = False,
        engine: str | ClassEngine = "exact",
        fast: FastSettings | None = None,
        amp: bool = False,
        official_unpredicted: bool = False,
        prepare_in_place: bool = False,
        learnt: LearntClasses | None = None,
        demo: bool = False,
        taught_classes: dict[int, str] | None = None,
    ) -> None:
        self._fast = fast or FastSettings()
        self.class_engine = build_engine(engine, self._fast)
        self.device = torch.device(device)
        if amp and self.device.type != "cuda":
            raise VoxelPromptError(f"amp needs a CUDA device, got {self.device}")
        self.spec = spec
        self.profile = get_profile(profile)
        self.progress = progress
        self.preprocessing = build_preprocessing(self.profile)
        self.amp = amp
        self.official_unpredicted = official_unpredicted
        self.taught_classes = {int(c): str(n) for c, n in (taught_classes or {}).items()}
        self.lock = threading.RLock()
        self.learnt = learnt or released_vista3d()
        self.demo = demo
        in_place = prepare_in_place and self.class_engine.prepared
        self.networks = Vista3DNetworks(net.to(self.device).eval(), in_place, self.lock)

    @property
    def engine(self) -> str:
        """The class-prompt engine's name; assign a name or a
        :class:`~voxelprompt.families.vista3d.inference.class_engines.ClassEngine` to switch
        (the network stays prepared as it is: the reference engine then runs :meth:`monai_net`)."""
        return self.class_engine.name

    @engine.setter
    def engine(self, engine: str | ClassEngine) -> None:
        self.class_engine = build_engine(engine, self._fast)

    @property
    def fast(self) -> FastSettings:
        """Settings of the fast engine (assigning them re-builds the engine with them)."""
        return self._fast

    @fast.setter
    def fast(self, fast: FastSettings) -> None:
        self._fast = fast
        self.class_engine = build_engine(self.engine, fast)

    @property
    def net(self) -> VISTA3D:
        """The network as loaded (as :attr:`network`)."""
        return self.networks.net

    @property
    def network(self) -> VISTA3D:
        """The network as loaded: its state dict is the checkpoint's. Its modules are MONAI's,
        or with ``prepare_in_place`` the engines' (:meth:`monai_net` gives MONAI's then)."""
        return self.networks.net

    @property
    def in_place(self) -> bool:
        """Whether the engines run the loaded network itself (prepared at construction)."""
        return self.networks.in_place

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        profile: str | InferenceProfile = "bundle",
        device: str | torch.device = "cpu",
        roi_size: tuple[int, int, int] | None = None,
        progress: bool = False,
        **options,
    ) -> Vista3DSegmenter:
        """Load an official-format checkpoint (bundle or research layout); ``options`` as in the class
        (``prepare_in_place`` defaults to True here: the network is the segmenter's own)."""
        net, spec = load_vista3d(path, device=device)
        prof = get_profile(profile)
        if roi_size is not None:
            prof = prof.with_roi(roi_size)
        options.setdefault("prepare_in_place", True)  # nothing else holds the network just loaded
        return cls(net, spec, profile=prof, device=device, progress=progress, **options)

    # ---- prompts -------------------------------------------------------------------------

    def resolve_classes(self, prompts: Prompts, volume: Volume | None = None) -> tuple[int, ...]:
        """The class ids ``prompts`` ask this model for
        (:func:`~voxelprompt.families.vista3d.inference.class_prompts.resolve_classes`); prompts
        the request layer checked on ``volume``'s grid get only this model's own rules.

        Raises:
            PromptError: prompts this model cannot answer (see there).
        """
        checked = volume is not None and is_checked(prompts, self.family, volume)
        return resolve_classes(prompts, self.family, self.spec, self.profile, self.learnt, self.taught_classes, checked)

    def check(self, prompts: Prompts, volume: Volume) -> Prompts:
        """``prompts`` checked for this family on ``volume``'s grid, once
        (:func:`voxelprompt.request.ensure_checked`); classes finetuning taught this model are
        left to its own table's rules (:meth:`resolve_classes`).

        Raises:
            PromptError: prompts the family cannot answer or that do not fit ``volume``.
        """
        return ensure_checked(prompts, self.family, volume, self.learnt, taught=self.taught_classes)

    # ---- segmentation --------------------------------------------------------------------

    def prepare(self, volume: Volume) -> PreparedVolume:
        """Pre-process ``volume`` once (for several prompts, see :mod:`voxelprompt.families.vista3d.inference.session`)."""
        with self.lock:
            image = self.preprocessing({IMAGE_KEY: volume_to_metatensor(volume)})[IMAGE_KEY]
            return PreparedVolume(volume=volume, image=image, batch=image.unsqueeze(0).to(self.device))

    def segment(self, volume: Volume, prompts: Prompts) -> Segmentation:
        """Segment ``volume``; the result has the input's exact shape and affine.

        Args:
            volume: CT in Hounsfield units (see :mod:`voxelprompt.types` for conventions).
            prompts: classes and/or clicks (clicks in input voxel or world coordinates).
            everything: segment the profile's official "everything" class set.
        """
        with self.lock:
            prompts = self.check(prompts, volume)
            self.resolve_classes(prompts, volume)  # fail fast, before pre-processing
            return self.segment_prepared(self.prepare(volume), prompts)

    def open_session(
        self,
        volume: Volume,
        memory_budget_mb: float = 4096,
        click_windows: str | ClickWindows = "centred",
        edit_shown: bool = False,
        preencode: bool = False,
    ) -> InteractiveSession:
        """An interactive session on ``volume`` (:class:`~voxelprompt.families.vista3d.inference.session.InteractiveSession`).

        The defaults keep the protocol's promise (labels equal :meth:`segment`'s). Faster, with
        other labels: ``click_windows="grid"`` (later clicks near earlier ones reuse an encoded
        window of the sliding grid) and ``edit_shown=True`` (an edit starts from the class's voxels
        in the last class-prompt result shown, see :class:`~voxelprompt.families.vista3d.inference.automatic.AutomaticMasks`).
        ``preencode=True`` (grid click windows) encodes the grid windows in a background thread,
        nearest the body's centre first, so a first click there costs no encoder pass
        (:meth:`~voxelprompt.families.vista3d.inference.session.InteractiveSession.start_preencoding`).
        """
        from voxelprompt.families.vista3d.inference.session import InteractiveSession

        return InteractiveSession(
            self, volume, memory_budget_mb=memory_budget_mb, click_windows=click_windows, edit_shown=edit_shown,
            preencode=preencode,
        )  # fmt: skip

    def segment_prepared(
        self,
        prepared: PreparedVolume,
        prompts: Prompts,
        *,
        net: torch.nn.Module | None = None,
        auto_cache: AutomaticMasks | None = None,
        click_windows: str | ClickWindows = "centred",
    ) -> Segmentation:
        """:meth:`segment` on a pre-processed volume.

        Args:
            net: the network clicks run through (a session's caching wrapper); default
                :meth:`click_net`.
            click_windows: ``"centred"`` (a window centred on each click, MONAI's rule),
                ``"grid"`` (the sliding grid's window that holds each click; see
                :func:`~voxelprompt.families.vista3d.inference.windows.grid_point_logits`) or a
                :class:`~voxelprompt.families.vista3d.inference.click_windows.ClickWindows`.
            auto_cache: automatic results in window-padded model space, filled by class passes
                and click edits and reused by later edits (an interactive session keeps it
                between calls; see :class:`~voxelprompt.families.vista3d.inference.automatic.AutomaticMasks`).

        Raises:
            VoxelPromptError: an unknown ``click_windows``.
            PromptError: prompts this model cannot answer on this volume.
        """
        windows = build_click_windows(click_windows)
        with self.lock:
            return self._segment_prepared(prepared, prompts, net, auto_cache, windows)

    def _segment_prepared(
        self, prepared: PreparedVolume, prompts: Prompts, net, auto_cache: AutomaticMasks | None, windows: ClickWindows
    ) -> Segmentation:
        start = time.perf_counter()
        prompts = self.check(prompts, prepared.volume)  # trusted when the request layer checked it
        classes = self.resolve_classes(prompts, prepared.volume)
        counter = WindowCounter(self.click_net() if net is None else net)
        changed: int | None = None
        cache = auto_cache
        if prompts.points is None:
            labels = self.automatic_labels(prepared.batch, classes, counter)
            if auto_cache is not None:
                auto_cache.remember(pad_to_window(labels[None], self.profile.roi_size)[0][0, 0], classes)
        else:
            cache = AutomaticMasks() if auto_cache is None else auto_cache
            labels, changed = segment_clicks(self, prepared, counter, classes, prompts, cache, windows)
        array = invert_to_input(labels, prepared.image, self.preprocessing, self.unpredicted_fill)
        if changed is not None and prompts.previous_mask is None:
            changed = changed_on_input(self, changed, prepared, array, classes[0], cache)
        volume = prepared.volume
        result = volume.with_array(array, source=f"segmentation of {volume.source}")
        seconds = time.perf_counter() - start
        logger.debug("segmented %s: %d windows in %.1f s", volume.source, counter.calls, seconds)
        extras: dict[str, float] = {}
        notes: tuple[str, ...] = ()
        if prompts.points is not None:
            kind = point_embedding(prompts, classes, self.spec.last_supported)
            extras, notes = click_report(prompts, classes, array, changed, kind)
        elif prompts.everything:
            notes = (f"everything: the {len(classes)} classes of this model's everything set ({self.profile.name})",)
        notes += self.learnt.check(classes, allow=True)
        ids = classes or (OBJECT_ID,)
        if not classes and prompts.label_value is not None and prompts.label_value != OBJECT_ID:
            value = int(prompts.label_value)
            array = np.where(array == OBJECT_ID, value, 0).astype(label_dtype(value))
            result, ids = volume.with_array(array, source=result.source), (value,)
        return Segmentation(labels=result, classes=ids, windows=counter.calls, seconds=seconds, extras=extras, notes=notes)

    @property
    def unpredicted_fill(self) -> int:
        """Label of voxels no window predicted: 0, or the profile's marker with ``official_unpredicted``."""
        return self.profile.unpredicted_value if self.official_unpredicted else 0

    def point_embedding(self, prompts: Prompts, classes: tuple[int, ...]) -> str:
        """Which point-head embedding clicks use (:func:`~voxelprompt.families.vista3d.inference.click_prompts.point_embedding`)."""
        return point_embedding(prompts, classes, self.spec.last_supported)

    def automatic_labels(self, batch: torch.Tensor, classes: tuple[int, ...], counter: WindowCounter) -> torch.Tensor:
        """Class-index map of class prompts in model space, [1, H, W, D] float, by the segmenter's engine.

        Args:
            batch: [1, 1, H, W, D] pre-processed image.
            classes: global class indices.
            counter: counts the windows evaluated.
        """
        return self.class_engine.class_labels(
            self.networks, batch, classes, counter, self.profile, self.last_automatic, amp=self.amp, progress=self.progress
        )

    @property
    def last_automatic(self) -> int:
        """Highest class id the automatic branch was trained on (learnt classes included); the
        bundle's inferer treats higher ids as untrained."""
        return max([self.spec.last_supported, *self.taught_classes])

    def foreground_confidence(self, volume: Volume, classes: tuple[int, ...]) -> float:
        """Mean automatic confidence over the voxels the model calls foreground (an active
        learning score: low means the model is unsure of this image).

        Args:
            volume: the CT (HU).
            classes: class ids to score (the model's everything set, say).

        Returns:
            The mean over voxels whose highest class probability exceeds 0.5 of that probability
            (sigmoid of the automatic logits, model space), in [0.5, 1]; 0.0 when no voxel is foreground.
        """
        with self.lock:
            classes = self.resolve_classes(Prompts(classes=tuple(classes)))
            prepared = self.prepare(volume)
            logits = class_logits(prepared.batch, self.monai_net(), classes, self.profile, self.last_automatic)
            top = torch.sigmoid(logits.float()).amax(dim=1)
            fg = top[top > 0.5]
            return float(fg.mean()) if fg.numel() else 0.0

    def engine_net(self) -> VISTA3D:
        """The network prepared for the exact/fast engines
        (:meth:`~voxelprompt.families.vista3d.inference.networks.Vista3DNetworks.engine_net`).
        Nothing process-wide changes here: glibc's allocator tuning is an explicit choice
        (:func:`voxelprompt.api.load_model`'s ``tune_allocator``)."""
        return self.networks.engine_net()

    def monai_net(self) -> VISTA3D:
        """MONAI's network for MONAI's forward and inferers (the evaluation's click protocols): the
        loaded network, or with ``prepare_in_place`` a restored copy made on first use."""
        return self.networks.monai_net()

    def click_net(self) -> VISTA3D:
        """The network clicks run through: MONAI's with the reference engine, else the prepared one."""
        return self.class_engine.click_net(self.networks)


"""The VISTA3D segmenter: load a model once, segment many volumes with class and click prompts."""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from monai.networks.nets.vista3d import VISTA3D

from voxelprompt.catalog import (
    UNNAMED_IDS,
    LearntClasses,
    click_label_shift,
    everything_classes,
    expand_groups,
    released_vista3d,
    vista3d_catalog,
)
from voxelprompt.errors import PromptError, VoxelPromptError
from voxelprompt.families import check_capabilities
from voxelprompt.inference.sliding import pad_widths
from voxelprompt.families.vista3d.inference.automatic import AutomaticMasks
from voxelprompt.families.vista3d.inference.engine import (
    FastSettings,
    prepare_network,
    stitched_class_labels,
)
from voxelprompt.families.vista3d.inference.engine.layout import restore_network
from voxelprompt.families.vista3d.inference.engine.point_head import FastPointHead
from voxelprompt.families.vista3d.inference.postprocess import (
    invert_to_input,
    label_dtype,
    logits_to_labels,
)
from voxelprompt.families.vista3d.inference.preprocess import (
    IMAGE_KEY,
    build_preprocessing,
    mask_to_model,
    to_model_voxels,
    volume_to_metatensor,
)
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile, get_profile
from voxelprompt.families.vista3d.inference.refine import merge_in_windows
from voxelprompt.families.vista3d.inference.windows import (
    ClickPrompt,
    WindowCounter,
    class_logits,
    grid_point_logits,
    pad_to_window,
    point_logits,
    unpad,
)
from voxelprompt.families.vista3d.network import Vista3DSpec, load_vista3d
from voxelprompt.families.vista3d.prompts import check_label_value_use
from voxelprompt.prompts import check_points_inside, check_previous_mask
from voxelprompt.types import OBJECT_ID, Prompts, Segmentation, Volume

if TYPE_CHECKING:
    from voxelprompt.families.vista3d.inference.session import InteractiveSession

__all__ = ["Vista3DSegmenter", "PreparedVolume", "ENGINES", "load"]

logger = logging.getLogger(__name__)


#: How class prompts are computed: MONAI's official inferer, the same result with less time and
#: memory, or a faster approximation (see :mod:`voxelprompt.families.vista3d.inference.engine`).
ENGINES = ("reference", "exact", "fast")


@dataclass(frozen=True)
class PreparedVolume:
    """A volume after the profile's pre-processing.

    Args:
        volume: the input (its grid is where results are written).
        image: [1, H, W, D] pre-processed ``MetaTensor`` (model space, carries the inverse info).
        batch: [1, 1, H, W, D] the same on the segmenter's device.
    """

    volume: Volume
    image: torch.Tensor
    batch: torch.Tensor


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
            ``inference/vista3d/engine/README.md``), ``"reference"`` (MONAI's own inferer, as the official bundle runs it) or
            ``"fast"`` (fewer windows, labels differ; tuned by ``fast``).
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
        engine: str = "exact",
        fast: FastSettings | None = None,
        amp: bool = False,
        official_unpredicted: bool = False,
        prepare_in_place: bool = False,
        learnt: LearntClasses | None = None,
        demo: bool = False,
        taught_classes: dict[int, str] | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise VoxelPromptError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.device = torch.device(device)
        if amp and self.device.type != "cuda":
            raise VoxelPromptError(f"amp needs a CUDA device, got {self.device}")
        self.net = net.to(self.device).eval()
        self.spec = spec
        self.profile = get_profile(profile)
        self.progress = progress
        self.preprocessing = build_preprocessing(self.profile)
        self.engine = engine
        self.fast = fast or FastSettings()
        self.amp = amp
        self.official_unpredicted = official_unpredicted
        self.taught_classes = {int(c): str(n) for c, n in (taught_classes or {}).items()}
        self.lock = threading.RLock()
        self.learnt = learnt or released_vista3d()
        self.demo = demo
        self._engine_net: VISTA3D | None = None
        self._monai_net: VISTA3D | None = None
        self.in_place = prepare_in_place and engine != "reference"
        if self.in_place:  # now, so that no caller ever holds the unprepared modules of self.net
            prepare_network(self.net, channels_last=True)

    @property
    def network(self) -> VISTA3D:
        """The network as loaded: its state dict is the checkpoint's. Its modules are MONAI's,
        or with ``prepare_in_place`` the engines' (:meth:`monai_net` gives MONAI's then)."""
        return self.net

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

    def resolve_classes(self, prompts: Prompts) -> tuple[int, ...]:
        """Expand groups and validate class ids (a text prompt names a class of the catalog);
        ``prompts.everything`` gives the profile's official set.

        Raises:
            PromptError: everything with other prompts, an id outside the model's table, a class
                these weights never learnt (unless ``prompts.allow_unlearnt``), a class without
                automatic segmentation and without clicks, clicks with several classes, a box, or
                a label value with classes.
        """
        check_capabilities(prompts, self.family)
        check_label_value_use(prompts)
        if prompts.text:
            prompts = replace(prompts, classes=(*prompts.classes, vista3d_catalog().index(prompts.text)), text=None)
        if prompts.everything:
            if prompts.classes or prompts.points is not None:
                raise PromptError("everything cannot be combined with classes or points")
            if self.profile.everything is not None:
                return tuple(self.profile.everything)
            return everything_classes(self.profile.everything_last_id)
        if prompts.new_structure and (prompts.points is None or prompts.classes):
            raise PromptError("new_structure needs clicks and no classes (it names what the clicks segment)")
        classes = expand_groups(tuple(dict.fromkeys(int(c) for c in prompts.classes)))
        for c in classes:
            if not 0 < c < self.spec.n_classes:
                raise PromptError(f"class index {c} is outside the model's table (1..{self.spec.n_classes - 1})")
        self.learnt.check(classes, allow=prompts.allow_unlearnt)
        if prompts.points is None:
            if not classes:
                raise PromptError("nothing to segment: give classes, everything, or points")
            unknown = [
                c for c in classes if (c > self.spec.last_supported or c in UNNAMED_IDS) and c not in self.taught_classes
            ]
            if unknown:
                raise PromptError(
                    f"class {unknown[0]} has no automatic segmentation in this model; "
                    "add --point clicks to segment it zero-shot"
                )
        elif len(classes) > 1:
            raise PromptError(f"clicks edit one class at a time, got {len(classes)} classes {classes}")
        return classes

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
            self.resolve_classes(prompts)  # fail fast, before pre-processing
            if prompts.points is not None:
                check_points_inside(prompts.points, volume)
            return self.segment_prepared(self.prepare(volume), prompts)

    def open_session(
        self,
        volume: Volume,
        memory_budget_mb: float = 4096,
        click_windows: str = "centred",
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
        click_windows: str = "centred",
    ) -> Segmentation:
        """:meth:`segment` on a pre-processed volume.

        Args:
            net: the network clicks run through (a session's caching wrapper); default
                :meth:`click_net`.
            click_windows: ``"centred"`` (a window centred on each click, MONAI's rule) or
                ``"grid"`` (the sliding grid's window that holds each click; see
                :func:`~voxelprompt.families.vista3d.inference.windows.grid_point_logits`).
            auto_cache: automatic results in window-padded model space, filled by class passes
                and click edits and reused by later edits (an interactive session keeps it
                between calls; see :class:`~voxelprompt.families.vista3d.inference.automatic.AutomaticMasks`).
        """
        with self.lock:
            return self._segment_prepared(prepared, prompts, net, auto_cache, click_windows)

    def _segment_prepared(
        self, prepared: PreparedVolume, prompts: Prompts, net, auto_cache: AutomaticMasks | None, click_windows: str
    ) -> Segmentation:
        start = time.perf_counter()
        check_previous_mask(prompts, prepared.volume)
        classes = self.resolve_classes(prompts)
        counter = WindowCounter(self.click_net() if net is None else net)
        changed: int | None = None
        cache = auto_cache
        if prompts.points is None:
            labels = self.automatic_labels(prepared.batch, classes, counter)
            if auto_cache is not None:
                auto_cache.remember(pad_to_window(labels[None], self.profile.roi_size)[0][0, 0], classes)
        else:
            check_points_inside(prompts.points, prepared.volume)
            if click_windows not in ("centred", "grid"):
                raise VoxelPromptError(f"click_windows must be centred or grid, got {click_windows!r}")
            cache = AutomaticMasks() if auto_cache is None else auto_cache
            labels, changed = self._segment_clicks(prepared, counter, classes, prompts, cache, click_windows)
        array = invert_to_input(labels, prepared.image, self.preprocessing, self.unpredicted_fill)
        if changed is not None and prompts.previous_mask is None:
            changed = self._changed_on_input(changed, prepared, array, classes[0], cache)
        volume = prepared.volume
        result = volume.with_array(array, source=f"segmentation of {volume.source}")
        seconds = time.perf_counter() - start
        logger.debug("segmented %s: %d windows in %.1f s", volume.source, counter.calls, seconds)
        extras: dict[str, float] = {}
        notes: tuple[str, ...] = ()
        if prompts.points is not None:
            extras, notes = self._click_report(prompts, classes, array, changed)
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
        """Which point-head embedding clicks use: ``class`` (editing a class), ``ambiguity``
        (a class of :data:`~voxelprompt.catalog.SPECIAL_CLASSES`), ``zero-shot`` (a new structure) or ``supported``
        (a point-only object, the official default); paper Sec. 3.2."""
        if prompts.new_structure or (classes and classes[0] > self.spec.last_supported):
            return "zero-shot"
        if classes:
            return "ambiguity" if click_label_shift(classes[0]) else "class"
        return "supported"

    def _changed_on_input(
        self, changed: int, prepared: PreparedVolume, array: np.ndarray, cls: int, cache: AutomaticMasks
    ) -> int:
        """Input voxels an Algorithm 1 edit changed (``changed``: model voxels; a change there can
        fall between the input voxels that the inversion samples)."""
        if changed == 0:
            return 0
        auto = cache.get(cls)
        assert auto is not None
        shape = tuple(int(s) for s in prepared.batch.shape[-3:])
        before = tuple(b for b, _ in pad_widths(shape, self.profile.roi_size))  # auto is window-padded
        model = unpad(auto, before, shape).to(torch.float32)[None] * float(cls)
        shown = invert_to_input(model, prepared.image, self.preprocessing, 0)
        return int((shown != array).sum())

    def _click_report(
        self, prompts: Prompts, classes: tuple[int, ...], array: np.ndarray, changed: int | None
    ) -> tuple[dict[str, float], tuple[str, ...]]:
        """Measurements and sentences for the user about a click prompt (see :class:`Segmentation`)."""
        assert prompts.points is not None
        n = len(prompts.points)
        kind = self.point_embedding(prompts, classes)
        extras: dict[str, float] = {} if changed is None else {"click_changed_voxels": float(changed)}
        if changed is not None:
            start = "the given previous mask" if prompts.previous_mask is not None else "the automatic result"
            notes = [f"{n} click(s) edited {start} (Algorithm 1, {kind} point embedding)"]
            if changed == 0:
                notes.append("the clicks changed nothing: the model's click result agrees with the automatic one there")
            else:
                notes.append(f"the clicks changed {changed} voxels of {start}")
            return extras, tuple(notes)
        value = classes[0] if classes else OBJECT_ID
        notes = [
            f"{n} click(s) segmented one object, value {value}, with VISTA3D's {kind} point embedding"
            + ("" if kind == "zero-shot" else " (new_structure=True for a structure outside the model's classes)")
        ]
        if not (array == value).any():
            notes.append(
                "the object is empty: nothing was segmented at the positive clicks; "
                "try another click inside the structure" + ("" if kind == "zero-shot" else " or new_structure=True")
            )
        return extras, tuple(notes)

    def automatic_labels(self, batch: torch.Tensor, classes: tuple[int, ...], counter: WindowCounter) -> torch.Tensor:
        """Class-index map of class prompts in model space, [1, H, W, D] float, by the segmenter's engine.

        Args:
            batch: [1, 1, H, W, D] pre-processed image.
            classes: global class indices.
            counter: counts the windows evaluated.
        """
        last = self.last_automatic
        if self.engine == "reference":
            logits = class_logits(batch, counter, classes, self.profile, last, self.progress)
            return logits_to_labels(logits.cpu(), classes)
        bar = _ProgressBar(self.progress)
        labels, windows = stitched_class_labels(
            batch, self.engine_net(), classes, self.profile, last, fast=self.fast if self.engine == "fast" else None,
            channels_last=True, amp=self.amp, on_window=bar.update,
        )  # fmt: skip
        bar.close()
        counter.calls += windows
        return labels

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
        """The network prepared for the exact/fast engines (channels-last weights, fused layers).

        With ``prepare_in_place`` it shares every module of ``self.net`` (prepared at construction;
        only the point head is wrapped, in this view, so the state dict keeps its keys). Otherwise
        it is a copy that costs the weights' memory once more (0.87 GB for the full-size model),
        made on first use, and ``self.net`` stays MONAI's for the reference inferers. Made under
        :attr:`lock`. Nothing process-wide changes here: glibc's allocator tuning, which the CPU
        engines gain from, is an explicit choice (:func:`voxelprompt.api.load_model`'s ``tune_allocator``).
        """
        with self.lock:
            if self._engine_net is None:
                base = self.net if self.in_place else prepare_network(copy.deepcopy(self.net), channels_last=True)
                net = copy.copy(base)  # shares parameters and modules; only the point head slot differs
                net._modules = dict(base._modules)
                net._modules["point_head"] = FastPointHead(base.point_head)
                self._engine_net = net.eval()
            return self._engine_net

    def monai_net(self) -> VISTA3D:
        """MONAI's network for MONAI's forward and inferers (the evaluation's click protocols).

        ``self.net`` itself, or with ``prepare_in_place`` a copy restored to MONAI's modules and
        layout (:func:`~voxelprompt.families.vista3d.inference.engine.layout.restore_network`; bit-equal
        outputs), made on first use: only callers that need it pay the weights' memory twice.
        """
        with self.lock:
            if not self.in_place:
                return self.net
            if self._monai_net is None:
                self._monai_net = restore_network(copy.deepcopy(self.net)).eval()
            return self._monai_net

    def click_net(self) -> VISTA3D:
        """The network clicks run through: MONAI's with the reference engine, else the prepared one."""
        return self.monai_net() if self.engine == "reference" else self.engine_net()

    def _segment_clicks(
        self,
        prepared: PreparedVolume,
        counter,
        classes,
        prompts: Prompts,
        auto_cache: AutomaticMasks,
        click_windows: str,
    ) -> tuple[torch.Tensor, int | None]:
        """Model-space labels of a click prompt, and how many voxels an Algorithm 1 edit changed
        in the automatic mask (None for a point-only object)."""
        points = prompts.points
        assert points is not None
        batch, image = prepared.batch, prepared.image
        model_xyz = to_model_voxels(points.to_voxel(prepared.volume), image)
        cls = classes[0] if classes else (self.spec.last_supported + 1 if prompts.new_structure else None)
        labels = torch.as_tensor(points.labels, dtype=torch.long)
        labels = labels + click_label_shift(cls)  # ambiguity embedding for classes like tumours and vessels
        click = ClickPrompt(
            coords=torch.as_tensor(model_xyz, dtype=torch.float32)[None].to(self.device),
            labels=labels[None].to(self.device),
            prompt_class=None if cls is None else torch.tensor([[cls]], device=self.device),
        )
        if prompts.previous_mask is None and (cls is None or cls > self.spec.last_supported):
            # Point-only (zero-shot) object: keep components holding a positive click.
            if click_windows == "grid":
                padded, before = pad_to_window(batch, self.profile.roi_size)
                moved = replace(click, coords=click.coords + torch.tensor(before, dtype=click.coords.dtype, device=self.device))
                clicked = unpad(grid_point_logits(padded, counter, moved, self.profile), before, tuple(batch.shape[-3:]))
            else:
                clicked = point_logits(batch, counter, click, self.profile).cpu()
            label_prompt = None if not classes else (cls,)
            return logits_to_labels(clicked, label_prompt, click.coords.cpu(), click.labels.cpu()), None
        # Edit the automatic result (Algorithm 1) in window-padded space, where MONAI's point
        # inferer merges too: components may connect through the padding of thin images.
        shape = tuple(batch.shape[-3:])
        padded, before = pad_to_window(batch, self.profile.roi_size)
        if prompts.previous_mask is not None:  # the caller's mask in place of the automatic result
            auto = torch.zeros(padded.shape[-3:], dtype=torch.bool)
            unpad(auto, before, shape).copy_(mask_to_model(prompts.previous_mask, image))
        else:
            auto = auto_cache.get(cls)
            if auto is None:
                auto = self.automatic_labels(padded, (cls,), counter)[0] == cls
                auto_cache.put(cls, auto)
        inside = torch.zeros(padded.shape[-3:], dtype=torch.bool)
        unpad(inside, before, shape).fill_(True)
        shifted = replace(click, coords=click.coords + torch.tensor(before, dtype=click.coords.dtype, device=self.device))
        if click_windows == "grid":
            clicked = grid_point_logits(padded, counter, shifted, self.profile)
        else:
            clicked = point_logits(padded, counter, shifted, self.profile).cpu()
        xyz = model_xyz + np.asarray(before, dtype=np.float64)
        auto = auto & inside
        merged = merge_in_windows(auto, clicked[0, 0], xyz, points.labels)
        changed = int((merged != auto).sum())
        value = classes[0] if classes else OBJECT_ID
        return unpad(merged, before, shape).to(torch.float32)[None] * float(value), changed


def load(checkpoint: str | os.PathLike | None, device: str, options, progress: bool = False) -> Vista3DSegmenter:
    """The registry's loader (:data:`voxelprompt.families.FAMILIES`): a checkpoint of either official
    layout, or ``None`` (or the demo weights' path) for the shipped demo model with its own
    spacing, window and class set.

    Args:
        checkpoint: VISTA3D checkpoint file, or None.
        device: a torch device string (already resolved: ``cpu``, ``cuda``, ``cuda:N``).
        options: :class:`voxelprompt.families.Vista3DOptions`.
        progress: show progress bars over windows.

    Raises:
        CheckpointError: unreadable checkpoint, another architecture, or no demo model installed.
    """
    from voxelprompt.families.vista3d.inference.default_model import (
        default_checkpoint,
        default_profile,
        is_demo_checkpoint,
        learnt_classes,
    )

    profile: str | InferenceProfile = options.profile
    demo = checkpoint is None or is_demo_checkpoint(checkpoint)
    if demo:
        checkpoint, profile = default_checkpoint(), default_profile(options.profile)
    return Vista3DSegmenter.from_checkpoint(
        checkpoint, profile=profile, device=device, roi_size=options.roi_size, progress=progress,
        engine=options.engine, amp=options.amp, learnt=learnt_classes(checkpoint), demo=demo,
    )  # fmt: skip


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

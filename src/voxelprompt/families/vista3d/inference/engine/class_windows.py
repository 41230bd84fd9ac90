"""Automatic-branch (class prompt) inference over sliding windows, stitched with bounded memory.

Same windows, same network and same average-then-argmax rule as the official pipeline (MONAI's
``SlidingWindowInfererAdapt`` + ``VistaPostTransformd``), but each window's logits are computed
classes-last straight from the class head's features and folded into a
:class:`~voxelprompt.families.vista3d.inference.engine.accumulate.CellStitcher`, so no full-volume logit map
exists. When the prompt has more classes than the head has feature channels (everything mode: 117
against 48), the stitcher averages the features instead and applies the class embeddings once per
finished voxel (the class head is linear). The fast mode changes the work, not only how it is
done: see :class:`FastSettings`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.data.utils import compute_importance_map

from voxelprompt.inference.allocator import default_malloc, release_free_memory
from voxelprompt.families.vista3d.inference.engine.accumulate import (
    CellStitcher,
    RunningArgmax,
    Window,
    slab_order,
    window_grid,
)
from voxelprompt.families.vista3d.inference.engine.layout import to_layout
from voxelprompt.families.vista3d.inference.profiles import InferenceProfile
from voxelprompt.families.vista3d.inference.windows import pad_to_window, unpad

__all__ = [
    "FastSettings",
    "class_embedding_matrix",
    "window_class_features",
    "window_class_logits",
    "stitched_class_labels",
]

logger = logging.getLogger(__name__)


#: Planned open-cell bytes above which a window loop runs with glibc's default allocator even in a
#: tuned process (:func:`~voxelprompt.inference.allocator.default_malloc`). Everything mode plans
#: 1.38 GiB on the paper's 333x333x603 grid (kept tuned) and 1.99 GiB on 512x512x768 (switched).
LARGE_OPEN_BYTES = 3 * 2**29


@dataclass(frozen=True)
class FastSettings:
    """What the fast mode gives up for speed (labels then differ from the official pipeline).

    Args:
        overlap: sliding-window overlap; None (default): the profile's, at most 0.25 (the bundle
            already uses 0.25; the research code's 0.625 needs ~4x the windows); 0 tiles.
        skip_below: skip windows in which no voxel of the scaled image exceeds this value
            (0.25 is about -460 HU with the official intensity window: air only); None keeps all.
        coarse: first segment the image at twice the voxel size (1/8 of the windows), then run
            full-resolution windows only where that pass found a requested class (SegVol's
            zoom-out-zoom-in applied to VISTA3D); voxels no fine window covers keep the coarse
            result. None (default): only for prompts of at most ``coarse_max_classes`` classes;
            an everything prompt finds structures in nearly every window, so the coarse pass
            would only add work.
        fine: False stops after the coarse pass (its labels upsampled): the fastest, the coarsest.
        margin: voxels of the fine grid added around the coarse pass's structures when choosing
            fine windows.
        running_max: stitch by the highest logit per voxel instead of averaging windows.
    """

    overlap: float | None = None
    skip_below: float | None = 0.25
    coarse: bool | None = None
    coarse_max_classes: int = 8
    fine: bool = True
    margin: int = 8
    running_max: bool = False

    def __post_init__(self) -> None:
        if self.overlap is not None and not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if not self.fine and self.coarse is False:
            raise ValueError("fine=False needs coarse=True (nothing would be segmented)")

    def overlap_for(self, profile: InferenceProfile) -> float:
        """The overlap used with ``profile``."""
        return min(profile.class_overlap, 0.25) if self.overlap is None else self.overlap

    def use_coarse(self, n_classes: int) -> bool:
        """Whether a prompt of ``n_classes`` classes gets the coarse pass."""
        if self.coarse is None:
            return n_classes <= self.coarse_max_classes or not self.fine
        return self.coarse


def class_embedding_matrix(class_head: torch.nn.Module, classes: Sequence[int]) -> torch.Tensor:
    """[K, C] class vectors after VISTA3D's class MLP (what its class head dots with each voxel)."""
    weight = class_head.class_embeddings.weight
    ids = torch.as_tensor(list(classes), device=weight.device).unsqueeze(-1)  # [K, 1] like MONAI
    embedding = class_head.class_embeddings(ids)  # [K, 1, C]
    if class_head.use_mlp:
        embedding = class_head.mlp(embedding)
    return embedding[:, 0, :]


def _has_lean_label_branch(encoder: torch.nn.Module) -> bool:
    """Whether :func:`_label_branch` reproduces ``encoder``'s label branch (VISTA3D's SegResNetDS2)."""
    return (
        hasattr(encoder, "up_layers_auto")
        and getattr(encoder, "dsdepth", None) == 1
        and getattr(encoder, "preprocess", None) is None
        and getattr(getattr(encoder, "encoder", None), "head_module", 1) is None
    )


def _label_branch(encoder: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """MONAI ``SegResNetDS2.forward(x, with_point=False, with_label=True)``, holding less at once.

    The same layers on the same tensors in the same order; only references are dropped earlier:
    each skip connection is freed once added (MONAI keeps all of them to the end), so the
    full-resolution decoder blocks run without the 400 MB full-resolution skip of a 128^3 window at
    width 48, and the sum is taken in place into the fresh upsampled tensor.
    """
    if not encoder.is_valid_shape(x):
        raise ValueError(f"Input spatial dims {tuple(x.shape)} must be divisible by {encoder.shape_factor()}")
    skips = encoder.encoder(x)  # finest first; the last is the bottleneck
    x = skips.pop()
    levels = list(encoder.up_layers_auto)
    for level in levels:
        x = level["upsample"](x)
        x += skips.pop()
        x = level["blocks"](x)
    return levels[-1]["head"](x)  # dsdepth 1: only the finest level has an output head


def window_class_features(net: torch.nn.Module, window: torch.Tensor) -> torch.Tensor:
    """The class head's per-voxel features of one window, channels last: [h, w, d, C].

    These are what VISTA3D's class head dots with each class embedding (MONAI
    ``ClassMappingClassify``: ``image_post_mapping`` output, C = the network's feature size, 48 for
    the released model). For a channels-last network the result is a free view of its output. The
    encoder's label branch and the post-mapping blocks run as in MONAI, but each intermediate is
    released as soon as the next layer no longer needs it (:func:`_label_branch`), which lowers
    a full-size 128^3 window's peak memory by about 0.8 GB.

    Args:
        net: a VISTA3D network (optionally prepared by :func:`~voxelprompt.families.vista3d.inference.engine.layout.prepare_network`).
        window: [1, 1, h, w, d] pre-processed image window (any memory format).
    """
    if _has_lean_label_branch(net.image_encoder):
        features = _label_branch(net.image_encoder, window)
    else:
        _, features = net.image_encoder(window, with_point=False, with_label=True)
    for block in net.class_head.image_post_mapping:  # block by block: each input is freed after use
        features = block(features)  # [1, C, h, w, d]
    return features[0].permute(1, 2, 3, 0)


def window_class_logits(net: torch.nn.Module, window: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """Class logits of one window, classes last: [h, w, d, K].

    Args:
        net: a VISTA3D network (optionally prepared by :func:`~voxelprompt.families.vista3d.inference.engine.layout.prepare_network`).
        window: [1, 1, h, w, d] pre-processed image window (any memory format).
        embedding: [K, C] from :func:`class_embedding_matrix`.
    """
    features = window_class_features(net, window)
    # For channels-last features the reshape is free and the matmul reads them in place.
    flat = features.reshape(-1, features.shape[-1])
    logits = flat @ embedding.to(flat.dtype).T
    return logits.float().reshape(*features.shape[:-1], -1)


def _gaussian_weight(roi: Sequence[int]) -> torch.Tensor:
    # The importance map MONAI's inferer uses for "gaussian" blending (sigma 0.125 * roi).
    return compute_importance_map(tuple(int(r) for r in roi), mode="gaussian", sigma_scale=0.125).float()


@dataclass(frozen=True)
class _Run:
    """What every window of one call shares."""

    net: torch.nn.Module
    classes: tuple[int, ...]
    embedding: torch.Tensor
    weight: torch.Tensor | None
    channels_last: bool
    amp: bool
    on_window: Callable[[int, int], None] | None


@torch.no_grad()
def stitched_class_labels(
    image: torch.Tensor,
    net: torch.nn.Module,
    classes: Sequence[int],
    profile: InferenceProfile,
    last_supported: int,
    fast: FastSettings | None = None,
    channels_last: bool = False,
    amp: bool = False,
    on_window: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, int]:
    """Class-index map of ``classes`` over ``image`` (model space).

    Args:
        image: [1, 1, H, W, D] pre-processed image.
        net: VISTA3D network, prepared for ``channels_last`` if that is set.
        classes: global class indices (K of them).
        profile: windowing settings (roi, overlap, blending) of the official pipeline.
        last_supported: highest trained class of the model; with the bundle's rule, any higher id
            makes every voxel background (the official inferer then runs without class prompts).
        fast: None for the official windows and averaging; settings of the fast mode otherwise.
        channels_last: feed windows in ``torch.channels_last_3d``.
        amp: autocast the network to float16 (CUDA only).
        on_window: called with (done, total) after each window (progress bars).

    Returns:
        ([1, H, W, D] float class indices, number of windows evaluated).
    """
    shape = tuple(image.shape[-3:])
    if profile.drop_zero_shot_classes and any(int(c) > last_supported for c in classes):
        return torch.zeros((1, *shape), dtype=torch.float32), 0
    run = _Run(
        net=net,
        classes=tuple(int(c) for c in classes),
        embedding=class_embedding_matrix(net.class_head, classes),
        weight=_gaussian_weight(profile.roi_size) if profile.class_blend == "gaussian" else None,
        channels_last=channels_last,
        amp=amp,
        on_window=on_window,
    )
    roi = profile.roi_size
    if fast is None:
        labels, windows = _windowed(image[0, 0], run, roi, profile.class_overlap)
    elif fast.use_coarse(len(run.classes)):
        labels, windows = _coarse_to_fine(image[0, 0], run, roi, fast, fast.overlap_for(profile))
    else:
        labels, windows = _windowed(
            image[0, 0], run, roi, fast.overlap_for(profile), skip_below=fast.skip_below, running_max=fast.running_max
        )
    return labels.to(torch.float32)[None], len(windows)


def _windowed(
    image: torch.Tensor,
    run: _Run,
    roi: Sequence[int],
    overlap: float,
    *,
    skip_below: float | None = None,
    needed: torch.Tensor | None = None,
    margin: int = 0,
    running_max: bool = False,
) -> tuple[torch.Tensor, list[Window]]:
    """Labels of the (H, W, D) ``image`` from its sliding windows; unevaluated voxels are 0.

    ``needed`` (a bool map of the image) keeps only windows that come within ``margin`` voxels of
    it; ``skip_below`` drops windows of air.

    Returns:
        ((H, W, D) int16 labels, the windows evaluated, in the padded grid of :func:`pad_to_window`).
    """
    shape = tuple(image.shape)
    padded, before = pad_to_window(image[None, None], roi)
    grid = tuple(padded.shape[-3:])
    windows = slab_order(window_grid(grid, roi, overlap), grid)
    if skip_below is not None:
        windows = [w for w in windows if bool((padded[(0, 0, *w.slices)] > skip_below).any())]
    if needed is not None:
        needed = pad_to_window(needed[None, None].float(), roi)[0][0, 0]
        windows = [w for w in windows if bool(needed[_grown(w, margin, grid)].any())]
    # Averaging features is exact (the head is linear) and cheaper once K exceeds C.
    by_features = not running_max and len(run.classes) > run.embedding.shape[1]
    if running_max:
        stitcher: CellStitcher | RunningArgmax = RunningArgmax(grid, run.classes)
    else:
        head = run.embedding if by_features else None
        stitcher = CellStitcher(grid, windows, run.classes, weight=run.weight, head=head)
    autocast = torch.autocast("cuda", dtype=torch.float16) if run.amp else contextlib.nullcontext()
    device = run.embedding.device
    # Large open cells: the tuned heap's per-window overhead would land on top of them.
    large = isinstance(stitcher, CellStitcher) and stitcher.planned_open_bytes() > LARGE_OPEN_BYTES
    with default_malloc(active=large):
        _run_windows(padded, windows, run, stitcher, by_features, autocast, device)
    if isinstance(stitcher, CellStitcher):
        logger.debug("stitching kept at most %.1f MB of open cells", stitcher.peak_open_bytes / 2**20)
    return unpad(stitcher.result(), before, shape), windows


def _run_windows(padded, windows, run: _Run, stitcher, by_features: bool, autocast, device) -> None:
    """Evaluate ``windows`` of the padded [1, 1, H, W, D] image in order and add them to ``stitcher``."""
    for done, window in enumerate(windows, start=1):
        x = to_layout(padded[(slice(None), slice(None), *window.slices)].to(device), run.channels_last)
        with autocast:
            if by_features:
                values = window_class_features(run.net, x)
            else:
                values = window_class_logits(run.net, x, run.embedding)
        del x
        stitcher.add(window, values.cpu())
        del values
        release_free_memory()  # with the CLI's allocator tuning: no heap growth across windows
        if run.on_window is not None:
            run.on_window(done, len(windows))


def _coarse_to_fine(
    image: torch.Tensor, run: _Run, roi: Sequence[int], fast: FastSettings, overlap: float
) -> tuple[torch.Tensor, list[Window]]:
    """Zoom out (2x voxel size) to find the structures, zoom in with windows only around them."""
    shape = tuple(image.shape)
    # Average 2x2x2 blocks: the partial-volume look of a scan at twice the voxel size.
    even = [n + n % 2 for n in shape]
    padded = F.pad(image[None, None], [0, even[2] - shape[2], 0, even[1] - shape[1], 0, even[0] - shape[0]], mode="replicate")
    small = F.avg_pool3d(padded, 2)[0, 0]
    coarse, coarse_windows = _windowed(small, run, roi, overlap, skip_below=fast.skip_below, running_max=fast.running_max)
    upsampled = coarse.repeat_interleave(2, 0).repeat_interleave(2, 1).repeat_interleave(2, 2)
    upsampled = upsampled[: shape[0], : shape[1], : shape[2]]
    if not fast.fine:
        return upsampled, coarse_windows
    fine, fine_windows = _windowed(
        image, run, roi, overlap, skip_below=fast.skip_below, needed=upsampled > 0, margin=fast.margin,
        running_max=fast.running_max,
    )  # fmt: skip
    # Voxels the fine windows covered take the fine labels (windows live in the padded grid; the
    # pad only copies images smaller than a window).
    padded, before = pad_to_window(image[None, None], roi)
    covered = torch.zeros(padded.shape[-3:], dtype=torch.bool)
    for w in fine_windows:
        covered[w.slices] = True
    return torch.where(unpad(covered, before, shape), fine, upsampled), coarse_windows + fine_windows


def _grown(window: Window, margin: int, grid: Sequence[int]) -> tuple[slice, ...]:
    """The window's slices widened by ``margin`` voxels on every side, inside ``grid``."""
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(window.slices, grid))

"""2D slice feature extractors for VISTA3D's supervoxels (Algorithm 2) and the three-view feature volume.

An extractor maps a stack of 2D slices to per-slice feature maps; :func:`three_view_features` slices
a volume axially, coronally and sagittally, upsamples each slice's features to the slice size and
sums the three views into one (I, J, K, C) volume.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import ndimage as ndi

from voxelprompt.errors import CheckpointError, VoxelPromptError

__all__ = [
    "VIEW_AXES",
    "FilterBankExtractor",
    "SamFeatureExtractor",
    "SliceFeatureExtractor",
    "load_sam_extractor",
    "three_view_features",
]

logger = logging.getLogger(__name__)

#: View name -> array axis the slices are taken across. For an RAS/LPS-like (I, J, K) volume k is
#: superior-inferior (axial slices), j anterior-posterior (coronal), i left-right (sagittal). The
#: official script's ``permute_pairs`` visit the same three axes in this order.
VIEW_AXES = {"axial": 2, "coronal": 1, "sagittal": 0}

# SAM's ImageNet pixel statistics (segment_anything.modeling.Sam.pixel_mean / pixel_std).
_SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
_SAM_PIXEL_STD = (58.395, 57.12, 57.375)


@runtime_checkable
class SliceFeatureExtractor(Protocol):
    """Features of 2D slices.

    ``extractor(slices)`` takes (N, H, W) float32 slices with intensities in [0, 255] and returns
    (N, C, h, w) float32 feature maps that cover each whole slice, at any resolution; the caller
    resizes them bilinearly to (H, W). ``channels`` is C and ``cache_key`` a short string naming
    the extractor and its settings (it enters supervoxel cache keys).
    """

    channels: int
    cache_key: str

    def __call__(self, slices: np.ndarray) -> np.ndarray: ...


class FilterBankExtractor:
    """Offline default backbone: a seeded random projection of a multi-scale 2D filter bank.

    Each slice is first re-windowed into every entry of ``windows`` (ranges of the [0, 255] input
    stretched back to [0, 255]; the default adds a soft-tissue window, HU -100..200 under the
    presets' [-1000, 1000] scaling, because organ contrast is a few units on the full range).
    Per window and scale ``s`` (Gaussian sigma in pixels): smoothed intensity, gradient magnitude,
    scale-normalised Laplacian of Gaussian (``s^2 * LoG``), local mean and local standard deviation
    in a ``(2s+1)^2`` box; plus the windowed intensity itself: ``len(windows) * (1 + 5 *
    len(scales))`` responses (22 by default), all in [0, 255] intensity units. A fixed orthonormal
    random matrix (seeded) projects them to ``channels`` features, which keeps distances between
    feature vectors roughly intact (Johnson-Lindenstrauss) while cutting SLIC's memory and time.
    Filters are 2D (sigma 0 across slices), so each slice is processed on its own as Algorithm 2
    does with SAM. No weights, no downloads; about 9 s for the three views of a 128^3 volume on
    one CPU core (SAM ViT-H needs a GPU: 3 x 128 slices through a 636 M-parameter encoder).

    Args:
        scales: Gaussian sigmas in pixels.
        channels: output channels C (at most the number of responses).
        seed: seeds the projection matrix.
        windows: (low, high) ranges of the [0, 255] input, each stretched to [0, 255].
    """

    def __init__(
        self,
        scales: Sequence[float] = (1.0, 2.0),
        channels: int = 8,
        seed: int = 0,
        windows: Sequence[tuple[float, float]] = ((0.0, 255.0), (114.75, 153.0)),
    ) -> None:
        scales = tuple(float(s) for s in scales)
        windows = tuple((float(lo), float(hi)) for lo, hi in windows)
        if not scales or min(scales) <= 0:
            raise VoxelPromptError(f"filter-bank scales must be positive, got {scales}")
        if not windows or any(lo >= hi for lo, hi in windows):
            raise VoxelPromptError(f"filter-bank windows must be (low, high) pairs with low < high, got {windows}")
        n_responses = len(windows) * (1 + 5 * len(scales))
        if not 1 <= channels <= n_responses:
            raise VoxelPromptError(f"channels must be in [1, {n_responses}] for {len(scales)} scales, got {channels}")
        self.scales = scales
        self.windows = windows
        self.channels = int(channels)
        self.seed = int(seed)
        gaussian = np.random.default_rng(seed).standard_normal((n_responses, self.channels))
        # Orthonormal columns: a projection, not a rescaling, so features stay in intensity units.
        self.projection = np.linalg.qr(gaussian)[0].astype(np.float32)
        self.cache_key = f"filterbank(scales={list(scales)},windows={list(windows)},channels={channels},seed={seed})"

    def responses(self, slices: np.ndarray) -> np.ndarray:
        """(N, H, W) slices -> (N, len(windows) * (1 + 5 * len(scales)), H, W) raw filter responses."""
        out: list[np.ndarray] = []
        for low, high in self.windows:
            x = np.clip((np.asarray(slices, dtype=np.float32) - low) * np.float32(255.0 / (high - low)), 0.0, 255.0)
            out += self._filters(x)
        return np.stack(out, axis=1)

    def _filters(self, x: np.ndarray) -> list[np.ndarray]:
        out = [x]
        for s in self.scales:
            sigma = (0.0, s, s)
            box = (1, 2 * round(s) + 1, 2 * round(s) + 1)
            mean = ndi.uniform_filter(x, box, mode="nearest")
            var = ndi.uniform_filter(x * x, box, mode="nearest") - mean * mean
            out += [
                ndi.gaussian_filter(x, sigma, mode="nearest"),
                ndi.gaussian_gradient_magnitude(x, sigma, mode="nearest"),
                (s * s) * ndi.gaussian_laplace(x, sigma, mode="nearest"),
                mean,
                np.sqrt(np.maximum(var, 0.0)),
            ]
        return out

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        """(N, H, W) slices in [0, 255] -> (N, channels, H, W) float32 features."""
        raw = self.responses(slices)
        return np.einsum("nrhw,rc->nchw", raw, self.projection, optimize=True).astype(np.float32)


class SamFeatureExtractor:
    """SAM's image encoder followed by the mask decoder's output upscaling (Algorithm 2's Phi_S(Phi_E(x))).

    This is ``SamPredictor.get_feature_upsampled`` that the official VISTA README adds to
    segment-anything: ``sam.mask_decoder.output_upscaling(sam.image_encoder(x))``, (N, 32, 256, 256)
    for 1024^2 inputs. Slices are prepared as ``vista3d/scripts/slic_process_sam.py`` does: zero
    padding at the bottom/right to a square, bilinear resize to ``image_size``^2, grey copied to
    three channels, SAM's pixel mean/std; features are resized to the padded size and cropped back.

    Args:
        sam: a module with ``image_encoder`` ((N, 3, S, S) -> (N, 256, S/16, S/16)) and
            ``mask_decoder.output_upscaling`` (a 4x upsampler), e.g. ``sam_model_registry["vit_h"]``.
        device: torch device to run on; CUDA runs under float16 autocast like the official script.
        image_size: SAM's input side (1024 for the released models).
        name: identifies the weights in cache keys.
    """

    def __init__(self, sam, device: str = "cpu", image_size: int = 1024, name: str = "sam") -> None:
        if not hasattr(sam, "image_encoder") or not hasattr(getattr(sam, "mask_decoder", None), "output_upscaling"):
            raise CheckpointError("SAM feature extractor needs a model with image_encoder and mask_decoder.output_upscaling")
        import torch

        self.device = torch.device(device)
        self.sam = sam.to(self.device).eval()
        self.image_size = int(image_size)
        self.channels = int(self._probe_channels())
        self.cache_key = f"sam({name},image_size={self.image_size})"

    def _probe_channels(self) -> int:
        import torch

        upscaling = self.sam.mask_decoder.output_upscaling
        convs = [m for m in upscaling.modules() if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Conv2d))]
        return convs[-1].out_channels if convs else 32

    def __call__(self, slices: np.ndarray) -> np.ndarray:
        """(N, H, W) slices in [0, 255] -> (N, C, H, W) float32 features."""
        import torch
        import torch.nn.functional as F

        x = torch.as_tensor(np.asarray(slices, dtype=np.float32))
        _, h, w = x.shape
        side = max(h, w)
        x = F.pad(x, (0, side - w, 0, side - h))
        x = F.interpolate(x[:, None], size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        mean = torch.tensor(_SAM_PIXEL_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(_SAM_PIXEL_STD).view(1, 3, 1, 1)
        x = ((x.expand(-1, 3, -1, -1) - mean) / std).to(self.device)
        autocast = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=autocast):
            features = self.sam.mask_decoder.output_upscaling(self.sam.image_encoder(x))
        features = F.interpolate(features.float(), size=(side, side), mode="bilinear", align_corners=False)
        return features[:, :, :h, :w].cpu().numpy()


def load_sam_extractor(checkpoint: str | Path, model_type: str = "vit_h", device: str | None = None) -> SamFeatureExtractor:
    """Build SAM from ``checkpoint`` with the ``segment-anything`` package (imported here, optional).

    Args:
        checkpoint: a released SAM checkpoint such as ``sam_vit_h_4b8939.pth``.
        model_type: key of ``segment_anything.sam_model_registry`` (``vit_h``, ``vit_l``, ``vit_b``).
        device: torch device; ``None`` picks CUDA when available.

    Raises:
        VoxelPromptError: the package is not installed, or ``model_type`` is unknown.
        CheckpointError: the checkpoint is missing or does not load.
    """
    try:
        from segment_anything import sam_model_registry
    except ImportError as err:
        raise VoxelPromptError(
            "SAM supervoxel features need the segment-anything package: "
            "pip install git+https://github.com/facebookresearch/segment-anything.git "
            "(or 'pip install segment-anything'); leave --sam-checkpoint out to use the offline filter bank"
        ) from err
    if model_type not in sam_model_registry:
        raise VoxelPromptError(f"unknown SAM model type {model_type!r}; choose from {sorted(sam_model_registry)}")
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"SAM checkpoint {str(path)!r} does not exist")
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        sam = sam_model_registry[model_type](checkpoint=str(path))
    except Exception as err:
        raise CheckpointError(f"could not load SAM {model_type} from {str(path)!r}: {err}") from err
    return SamFeatureExtractor(sam, device=device, name=f"{model_type}:{path.name}")


def three_view_features(image: np.ndarray, extractor: SliceFeatureExtractor, chunk: int = 8) -> np.ndarray:
    """Algorithm 2's F_3D = F_A + F_C + F_S for an (I, J, K) volume.

    Args:
        image: (I, J, K) intensities already scaled to [0, 255].
        extractor: maps (N, H, W) slices to (N, C, h, w) features (see :class:`SliceFeatureExtractor`).
        chunk: slices per extractor call (the official script feeds SAM 8 at a time).

    Returns:
        (I, J, K, C) float32 sum of the axial, coronal and sagittal feature volumes.
    """
    import torch
    import torch.nn.functional as F

    if chunk < 1:
        raise VoxelPromptError(f"chunk must be at least 1, got {chunk}")
    image = np.asarray(image, dtype=np.float32)
    total = np.zeros((*image.shape, extractor.channels), dtype=np.float32)
    for view, axis in VIEW_AXES.items():
        stack = np.moveaxis(image, axis, 0)  # (n, a, b) slices of this view
        target = np.moveaxis(total, axis, 0)  # a view of ``total``: (n, a, b, C)
        for start in range(0, stack.shape[0], chunk):
            feats = np.asarray(extractor(np.ascontiguousarray(stack[start : start + chunk])), dtype=np.float32)
            if feats.ndim != 4 or feats.shape[0] != min(chunk, stack.shape[0] - start) or feats.shape[1] != extractor.channels:
                raise VoxelPromptError(
                    f"feature extractor returned shape {feats.shape} for {view} slices {stack[start:start + chunk].shape}; "
                    f"expected (N, {extractor.channels}, h, w)"
                )
            if feats.shape[2:] != stack.shape[1:]:
                feats = F.interpolate(torch.from_numpy(feats), size=stack.shape[1:], mode="bilinear", align_corners=False).numpy()
            target[start : start + chunk] += feats.transpose(0, 2, 3, 1)
        logger.debug("supervoxel features: %s view done (%d slices)", view, stack.shape[0])
    return total

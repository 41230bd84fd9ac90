"""SegVol zoom-out-zoom-in vs full sliding window: seconds and window count per case.

Usage: python benchmarks/segvol_zoom.py [--ct CT.nii.gz --seg SEG.nii.gz] [--weights random|fixture|PATH]
       [--device cpu] [--classes liver,spleen] [--upsample 1 3] [--coarse model|reference]

Full-size SegVol v1 (32x256x256 windows). Prompts per case: the class name as text plus the box of
the reference label (TotalSegmentator's, ``classes.json`` names), the paper's "bbox+text" setting.
``--upsample 3`` resamples the 3 mm example CT to 1 mm (a realistically sized volume). With
random or fixture weights the coarse mask is arbitrary, so ``--coarse reference`` (default) keeps
the coarse network pass (and its time) but takes the ROI from the reference label, as a trained
model's coarse mask would; ``--coarse model`` uses the network's own coarse mask.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from voxelprompt.imageio import read_volume
from voxelprompt.families.segvol.inference import check_prompts, prepare_volume, zoom
from voxelprompt.families.segvol.network import (
    build_segvol,
    load_state_dict_strict,
    normalize_state_dict,
)
from voxelprompt.types import Box, Prompts, Volume

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def segvol_model(weights: str, device: str):
    """SegVol v1 with ``random`` (seed 0) or ``fixture`` weights, or from a checkpoint path, on ``device``."""
    if weights == "random":
        torch.manual_seed(0)
        return build_segvol(device=device)
    if weights == "fixture":
        fixture = SHARED / "fixtures" / "segvol_parity"
        spec = importlib.util.spec_from_file_location("segvol_parity_weights", fixture / "weights.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        salt = json.loads((fixture / "cases.json").read_text())["salt"]
        state = {k: torch.from_numpy(v) for k, v in module.state_dict(salt).items()}
        model = build_segvol()
        load_state_dict_strict(model, normalize_state_dict(state, "parity fixture"), source="parity fixture")
        return model.to(device).eval()
    return build_segvol(weights, device=device)


def upsample(volume: Volume, factor: int, order_nearest: bool) -> Volume:
    """``volume`` on a ``factor`` times finer grid (trilinear, or nearest for labels), same extent."""
    if factor == 1:
        return volume
    array = torch.from_numpy(np.ascontiguousarray(volume.array, dtype=np.float32))[None, None]
    size = tuple(s * factor for s in volume.shape)
    mode = "nearest-exact" if order_nearest else "trilinear"
    kwargs = {} if order_nearest else {"align_corners": False}
    out = F.interpolate(array, size=size, mode=mode, **kwargs)[0, 0].numpy()
    affine = volume.affine.copy()
    affine[:3, :3] /= factor
    affine[:3, 3] = volume.voxel_to_world(np.full((1, 3), (1.0 / factor - 1.0) / 2.0))[0]
    return Volume(out.astype(volume.array.dtype), affine, f"{volume.source} x{factor}")


def _reference_coarse(mask: np.ndarray):
    """A zoom-out stand-in: runs the real coarse pass (for its time), returns logits of ``mask``."""
    original = zoom.zoom_out

    def coarse(model, image, prompts, text_embedding):
        original(model, image, prompts, text_embedding)
        return torch.where(torch.from_numpy(mask), 5.0, -5.0).float()

    return coarse


def run_mode(model, volume: Volume, prompts: Prompts, mode: str, label: np.ndarray | None, device: str):
    """(prepared shape, result, seconds) of one mode; the time covers pre-processing and inference."""
    start = time.perf_counter()
    user = check_prompts(prompts, volume)
    prepared = prepare_volume(volume, keep=user.anchors())
    image = torch.from_numpy(prepared.image)
    with torch.no_grad():
        if mode == "sliding":
            result = zoom.full_sliding_window(model, image, user, prepared.voxel_map)
        else:
            saved = zoom.zoom_out
            if label is not None:
                zoom.zoom_out = _reference_coarse(prepared.from_input(label))
            try:
                result = zoom.zoom_out_zoom_in(model, image, user, prepared.voxel_map)
            finally:
                zoom.zoom_out = saved
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return prepared.shape, result, time.perf_counter() - start


def case_prompts(labels: Volume, value: int, name: str) -> tuple[np.ndarray, Prompts]:
    """(mask of ``value`` in ``labels``, the "bbox+text" prompts: class name and the mask's box)."""
    label = np.asarray(labels.array) == value
    idx = np.argwhere(label)
    if not len(idx):
        raise ValueError(f"class {name!r} (value {value}) is absent from the reference labels")
    return label, Prompts(text=name.replace("_", " "), box=Box(tuple(idx.min(0)), tuple(idx.max(0))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ct", default=str(SHARED / "data" / "totalseg" / "example_ct_sm.nii.gz"))
    parser.add_argument("--seg", default=str(SHARED / "data" / "totalseg" / "example_ct_sm_seg.nii.gz"))
    parser.add_argument("--names", default=str(SHARED / "data" / "totalseg" / "classes.json"))
    parser.add_argument("--weights", default="random", help="random, fixture, or a SegVol checkpoint path")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--classes", default="liver,kidney_left")
    parser.add_argument("--upsample", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--coarse", choices=["reference", "model"], default="reference")
    args = parser.parse_args()

    model = segvol_model(args.weights, args.device)
    with torch.no_grad():  # warm-up, so that the first case does not pay one-time costs
        model.encode_image(torch.zeros((1, 1, *model.image_size), device=model.device))
    names = {v: int(k) for k, v in json.loads(Path(args.names).read_text()).items()}
    ct, seg = read_volume(args.ct), read_volume(args.seg, dtype=None)
    print(f"SegVol v1 ({args.weights} weights) on {args.device}, coarse ROI from the {args.coarse}")
    print(f"{'case':<28} {'shape':<16} {'mode':<8} {'windows':>7} {'seconds':>8} {'roi':<16} {'voxels':>8}")
    for factor in args.upsample:
        volume = upsample(ct, factor, order_nearest=False)
        labels = upsample(seg, factor, order_nearest=True)
        for cls in args.classes.split(","):
            label, prompts = case_prompts(labels, names[cls], cls)
            for mode in ("zoom", "sliding"):
                reference = label if args.coarse == "reference" else None
                shape, result, seconds = run_mode(model, volume, prompts, mode, reference, args.device)
                roi = "-" if result.roi is None else "x".join(str(b - a + 1) for a, b in zip(*result.roi))
                voxels = int((result.logits > 0).sum())
                print(f"{cls + f' x{factor}':<28} {'x'.join(map(str, shape)):<16} {mode:<8} {result.windows:>7} "
                      f"{seconds:>8.2f} {roi:<16} {voxels:>8}")  # fmt: skip


if __name__ == "__main__":
    main()

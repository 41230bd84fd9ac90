"""One prepared GPU run: environment, CPU-vs-CUDA and AMP label agreement, everything mode on the
paper's 333x333x603 grid, click latency and SegVol zoom-out-zoom-in, written to one JSON.

    python benchmarks/gpu_suite.py --device cuda [--json PATH] [--data DIR] [--budget 450]
    python benchmarks/gpu_suite.py --device cpu --quick      # every part at tiny sizes (CI smoke run)

Parts (``--parts``, in this order; each runs in a forked child with its own time limit, so a crash,
an out-of-memory error or an overrun is recorded and the other parts still run):

* ``environment``: Python, torch, CUDA, cuDNN, GPU name and memory, CPU count, install seconds
  (``VOXELPROMPT_INSTALL_SECONDS``, set by the command that installed the wheels).
* ``everything``: everything mode end to end (pre-processing to labels on the input grid, exact
  engine, bundle profile) of the full-size VISTA3D (218 M, deterministic random weights) on the
  example CT resampled to 333x333x603 voxels at 1.5 mm (the VISTA3D paper's timing case: 67 s on
  a V100); a bright voxel in two opposite corners keeps the foreground crop from shrinking it.
* ``clicks``: an :class:`InteractiveSession` (full size, ``click_windows="grid"``): first click and
  median/p95 of later clicks (``session_clicks.py``'s clicks), and MONAI's ``keep_cache`` path.
* ``segvol``: full-size SegVol v1 (random weights): zoom-out-zoom-in vs full sliding window on the
  example CT resampled to 1 mm, liver, "bbox+text" (``segvol_zoom.py``; coarse ROI from the
  reference label, as a trained model's would be).
* ``amp``: ``cuda:exact:amp`` vs ``cuda:exact`` labels on the golden case (the example CT, bundle
  profile; demo model and full-size network). On a CPU ``--device`` the same code compares
  ``cpu:exact`` with ``cpu:reference`` (AMP needs CUDA).
* ``agreement``: ``cpu:exact`` vs ``cuda:reference`` and ``cuda:exact`` on the golden case
  (``device_agreement.py``'s prompts: everything, liver + click), demo model and full-size network.

``--quick`` shrinks every part (width-8 network, 32^3 windows, a 32x32x16 crop of the CT, a 48x48x40
everything grid, tiny SegVol, one torch thread; the AMP stand-in on the demo model only) so that the
whole suite runs on a CPU in about a minute.
Nothing here asserts a time; ``gpu_table.py`` turns the JSON into the README's table rows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling scripts, also when imported
from gpu_table import table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "totalseg"
PARTS = ("environment", "everything", "clicks", "segvol", "amp", "agreement")
#: Seconds each part may take on one H200 (estimated from ~3.1 TFLOP per full-size 128^3 window
#: with 117 classes, taken as 10x slower than the GPU's float32 peak, plus CPU-side pre/post-processing).
BUDGETS = {"environment": 60, "everything": 150, "clicks": 90, "segvol": 90, "amp": 60, "agreement": 150}
PAPER = {"grid": [333, 333, 603], "seconds": 67.0, "gpu": "V100", "source": "VISTA3D paper (He et al. 2024)"}
CROP = (slice(44, 76), slice(26, 58), slice(6, 22))  # --quick: 32x32x16 voxels around the liver, both clicks inside


def settings(args: argparse.Namespace) -> dict:
    """Sizes of every part, full or ``--quick``."""
    quick = args.quick
    return {
        "device": args.device, "quick": quick, "width": 8 if quick else 48, "roi": 32 if quick else 128,
        "everything_grid": [48, 48, 40] if quick else PAPER["grid"], "later_clicks": 2 if quick else 8,
        "segvol": "tiny" if quick else "v1", "segvol_upsample": 1 if quick else 3, "data": str(args.data),
        "budgets": {p: args.part_budget or BUDGETS[p] for p in args.parts}, "total_budget": args.budget,
        "paper": PAPER,
    }  # fmt: skip


# ---- shared inputs ----------------------------------------------------------------------------


def _golden(s: dict):
    """(CT volume, offset of its first voxel in the full CT): the whole CT, or the --quick crop."""
    import numpy as np

    from voxelprompt.imageio import read_volume
    from voxelprompt.types import Volume

    ct = read_volume(Path(s["data"]) / "example_ct_sm.nii.gz")
    if not s["quick"]:
        return ct, np.zeros(3)
    start = np.array([c.start for c in CROP])
    affine = ct.affine.copy()
    affine[:3, 3] = ct.voxel_to_world(start[None])[0]
    return Volume(np.ascontiguousarray(ct.array[CROP]), affine, "ct crop"), start


def _full_network(s: dict):
    """(net, spec, profile) of the "full-size" VISTA3D (width 8 and 64^3 windows with --quick)."""
    from voxelprompt.families.vista3d.inference.profiles import get_profile
    from voxelprompt.families.vista3d.network import Vista3DSpec, random_vista3d

    spec = Vista3DSpec(width=s["width"])
    return random_vista3d(spec, seed=0), spec, get_profile("bundle").with_roi((s["roi"],) * 3)


def _demo_network(s: dict):
    from voxelprompt.api import load_model

    seg = load_model(None, "vista3d", device="cpu")
    return seg.net, seg.spec, seg.profile.with_roi((s["roi"],) * 3) if s["quick"] else seg.profile


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ---- parts: each fills ``out`` (written to disk after every step, so an overrun keeps what it got)


def part_environment(s: dict, out: dict, save) -> None:
    import platform

    import torch

    out.update(python=platform.python_version(), torch=torch.__version__, cuda=torch.version.cuda,
               cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
               cpus=os.cpu_count(), torch_threads=torch.get_num_threads(),
               install_seconds=float(os.environ.get("VOXELPROMPT_INSTALL_SECONDS", "nan")))  # fmt: skip
    if s["device"].startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(s["device"]))
        out.update(gpu=props.name, gpu_memory_gb=props.total_memory / 2**30, gpu_count=torch.cuda.device_count())
    else:
        out.update(gpu=None, gpu_memory_gb=0.0, gpu_count=0)


def _agreement(s: dict, out: dict, save, base: str, others: list[str], models=("demo", "full-size")) -> None:
    """Labels of every run in ``others`` against ``base``, per model and prompt, with seconds."""
    import torch
    from device_agreement import compare, make_segmenter, timed_segment

    # Full float32 on the GPU too (the CPU has no TF32), as device_agreement.py does.
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    out["tf32"] = False
    volume, offset = _golden(s)
    prompts = _prompts(offset)
    for model in models:
        net, spec, profile = _demo_network(s) if model == "demo" else _full_network(s)
        reference = {}
        for run in [base, *others]:
            seg = make_segmenter(net, spec, profile, run)
            for name, p in prompts.items():
                labels, seconds, windows = timed_segment(seg, volume, p, warm_up=run.startswith("cuda"))
                row = {"seconds": seconds, "windows": windows}
                if run == base:
                    reference[name] = labels
                else:
                    row.update(compare(labels, reference[name]), base=base)
                out.setdefault(model, {}).setdefault(name, {})[run] = row
                save()
            del seg


def _prompts(offset):
    from device_agreement import CLICK, default_prompts

    return default_prompts(tuple(float(c) for c in (CLICK - offset)))


def part_agreement(s: dict, out: dict, save) -> None:
    dev = s["device"]
    others = [f"{dev}:reference", f"{dev}:exact"] if dev.startswith("cuda") else [f"{dev}:reference"]
    _agreement(s, out, save, "cpu:exact", others)


def part_amp(s: dict, out: dict, save) -> None:
    dev = s["device"]
    if dev.startswith("cuda"):
        _agreement(s, out, save, f"{dev}:exact", [f"{dev}:exact:amp"])
    else:
        out["substitute"] = "AMP needs CUDA: the same comparison ran cpu:reference against cpu:exact (demo model)"
        _agreement(s, out, save, "cpu:exact", ["cpu:reference"], models=("demo",))


def _paper_volume(s: dict):
    """The example CT resampled to the everything grid at 1.5 mm (RAS), corners made foreground."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from voxelprompt.types import Volume

    ct, _ = _golden({**s, "quick": False})
    array = torch.from_numpy(np.asarray(ct.array, dtype=np.float32))[None, None]
    big = F.interpolate(array, size=tuple(s["everything_grid"]), mode="trilinear")[0, 0].numpy().astype(np.int16)
    big[0, 0, 0] = big[-1, -1, -1] = 100  # HU > 0: the bundle's foreground crop keeps the whole grid
    return Volume(big, np.diag([1.5, 1.5, 1.5, 1.0]), "example CT resampled to the paper's grid")


def part_everything(s: dict, out: dict, save) -> None:
    import torch

    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
    from voxelprompt.types import Prompts

    net, spec, profile = _full_network(s)
    seg = Vista3DSegmenter(net, spec, profile=profile, device=s["device"], engine="exact")
    golden, _ = _golden(s)
    seg.segment(golden, Prompts(everything=True))  # warm-up: lazy CUDA init, cuDNN autotuning
    volume = _paper_volume(s)
    out["model_grid"] = [int(v) for v in seg.prepare(volume).batch.shape[-3:]]
    out["tf32"] = bool(torch.backends.cudnn.allow_tf32)  # torch's default for convolutions: True
    if s["device"].startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _sync(s["device"])
    start = time.perf_counter()
    result = seg.segment(volume, Prompts(everything=True))
    out.update(seconds=time.perf_counter() - start, windows=result.windows, input_grid=list(volume.shape),
               classes=len(result.classes), paper_seconds=PAPER["seconds"])  # fmt: skip
    if s["device"].startswith("cuda"):
        out["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30


def part_clicks(s: dict, out: dict, save) -> None:
    import numpy as np
    from session_clicks import FIRST, clicks, monai_clicks, session_clicks, stats

    from voxelprompt.families.vista3d.inference.segmenter import Vista3DSegmenter
    from voxelprompt.families.vista3d.inference.session import InteractiveSession

    volume, offset = _golden(s)
    points = clicks(s["later_clicks"], tuple(np.asarray(FIRST) - offset))
    net, spec, profile = _full_network(s)
    exact = Vista3DSegmenter(net, spec, profile=profile, device=s["device"], engine="exact")
    if s["device"].startswith("cuda"):  # warm-up session: lazy CUDA init, cuDNN autotuning
        session_clicks(InteractiveSession(exact, volume, click_windows="grid"), points[:2])
    times, _ = session_clicks(InteractiveSession(exact, volume, click_windows="grid"), points)
    first, median, p95 = stats(times)
    out["session"] = {"first": first, "later_median": median, "later_p95": p95, "all": times}
    save()
    reference = Vista3DSegmenter(exact.net, spec, profile=profile, device=s["device"], engine="reference")
    first, median, p95 = stats(monai_clicks(reference, volume, points))
    out["monai_keep_cache"] = {"first": first, "later_median": median, "later_p95": p95}


def part_segvol(s: dict, out: dict, save) -> None:
    import torch
    from segvol_zoom import case_prompts, run_mode, segvol_model, upsample

    from voxelprompt.imageio import read_volume
    from voxelprompt.families.segvol.network.builder import tiny_segvol

    model = tiny_segvol().to(s["device"]).eval() if s["quick"] else segvol_model("random", s["device"])
    with torch.no_grad():  # warm-up, so that the timed case does not pay one-time costs
        model.encode_image(torch.zeros((1, 1, *model.image_size), device=model.device))
    ct, _ = _golden(s)
    seg = read_volume(Path(s["data"]) / "example_ct_sm_seg.nii.gz", dtype=None)
    if s["quick"]:
        seg = type(seg)(seg.array[CROP], ct.affine, "seg crop")
    names = {v: int(k) for k, v in json.loads((Path(s["data"]) / "classes.json").read_text()).items()}
    factor = s["segvol_upsample"]
    volume, labels = upsample(ct, factor, order_nearest=False), upsample(seg, factor, order_nearest=True)
    label, prompts = case_prompts(labels, names["liver"], "liver")
    out.update(case=f"liver x{factor}", input_grid=list(volume.shape))
    for mode in ("zoom", "sliding"):
        shape, result, seconds = run_mode(model, volume, prompts, mode, label, s["device"])
        out[mode] = {"seconds": seconds, "windows": result.windows, "prepared_grid": [int(v) for v in shape]}
        save()


# ---- runner -----------------------------------------------------------------------------------


def _child(name: str, s: dict, path: str) -> None:
    """Run one part in this (forked) process, saving its dict to ``path`` after every step."""
    out: dict = {}

    def save() -> None:
        Path(path).write_text(json.dumps(out))

    try:
        if s["quick"]:  # tiny networks lose far more to thread hand-offs than they gain
            import torch

            torch.set_num_threads(1)
        globals()[f"part_{name}"](s, out, save)
        out["status"] = "ok"
    except BaseException as error:  # noqa: BLE001  (recorded, and the suite goes on)
        out.update(status="failed", error=f"{type(error).__name__}: {error}".splitlines()[0][:300])
        traceback.print_exc()
    save()


def run_part(name: str, s: dict, timeout: float, folder: Path) -> dict:
    """One part in a forked child with ``timeout`` seconds; its dict, with status and seconds."""
    path = folder / f"{name}.json"
    start = time.perf_counter()
    child = multiprocessing.get_context("fork").Process(target=_child, args=(name, s, str(path)))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
    out = json.loads(path.read_text()) if path.exists() else {}
    if "status" not in out:
        why = f"timed out after {timeout:.0f} s" if time.perf_counter() - start >= timeout else f"exit code {child.exitcode}"
        out.update(status="failed", error=why)
    out["part_seconds"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_json = Path(os.environ["OUT"]) / "gpu_suite.json" if os.environ.get("OUT") else Path("gpu_suite.json")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run of every part)")
    parser.add_argument("--json", type=Path, default=default_json, help="default: $OUT/gpu_suite.json, else ./gpu_suite.json")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with example_ct_sm[_seg].nii.gz and classes.json")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for all parts together")
    parser.add_argument("--part-budget", type=float, help="seconds for every part (default: BUDGETS per part)")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in args.parts if p not in PARTS]
    if bad:
        parser.error(f"unknown part {bad[0]!r}; choose from {', '.join(PARTS)}")
    if not (args.data / "example_ct_sm.nii.gz").exists():
        parser.error(f"--data {args.data}: example_ct_sm.nii.gz not found there")
    s = settings(args)
    import tempfile

    import torch  # noqa: F401  (imported once here; forked parts inherit it, CUDA stays uninitialised)

    import voxelprompt.families.vista3d.inference.segmenter  # noqa: F401

    results = {"suite": "voxelprompt gpu_suite", "created": datetime.now(UTC).isoformat(timespec="seconds"),
               "settings": s, "parts": {}}  # fmt: skip
    deadline = time.perf_counter() + args.budget
    args.json.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.parts:
            left = deadline - time.perf_counter()
            if left < 10:
                results["parts"][name] = {"status": "skipped", "error": f"total budget of {args.budget:.0f} s spent"}
            else:
                results["parts"][name] = run_part(name, s, min(s["budgets"][name], left), Path(folder))
            part = results["parts"][name]
            print(f"{name}: {part['status']} ({part.get('part_seconds', 0):.1f} s) {part.get('error', '')}", flush=True)
            args.json.write_text(json.dumps(results, indent=1))
    print("\n" + table(results))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

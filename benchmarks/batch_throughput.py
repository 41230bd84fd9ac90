"""Cohort throughput: cases per hour of ``voxelprompt batch`` in one process, with ``--workers N``,
and of one ``voxelprompt segment`` invocation per case (which pays interpreter start, imports and
the model load every time), on the same phantoms, measured in one run and printed as ratios.

Usage: python benchmarks/batch_throughput.py [--n 6] [--shape 40 40 40] [--spacing 4 4 4]
       [--classes liver,spleen] [--workers 2] [--checkpoint model.pt]

Each variant runs the installed console script in a subprocess and is timed end to end (wall
clock, start of the process to its exit), outputs written to a fresh temporary folder. Small
phantoms make the model load a large share of a case, which is what the per-case tool pays; with
big CTs and the full-size network the three converge towards the per-case compute time, and the
workers' gain towards the number of free cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from voxelprompt.data import PhantomConfig, make_phantom
from voxelprompt.imageio import write_volume

SCRIPT = Path(sys.executable).with_name("voxelprompt")


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="number of phantom cases")
    parser.add_argument("--shape", type=int, nargs=3, default=(40, 40, 40))
    parser.add_argument("--spacing", type=float, nargs=3, default=(4.0, 4.0, 4.0))
    parser.add_argument("--classes", default="liver,spleen")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--checkpoint", default=None, help="weights; omitted: the shipped demo model")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="batch_bench_"))
    try:
        images = work / "images"
        images.mkdir()
        for seed in range(args.n):
            image, _ = make_phantom(PhantomConfig(shape=tuple(args.shape), spacing=tuple(args.spacing), seed=seed))
            write_volume(image, images / f"phantom_{seed}.nii.gz")
        model = ["-c", args.checkpoint] if args.checkpoint else []
        common = ["--classes", args.classes, "--device", "cpu", "-q", *model]
        seconds = {
            "per-case `segment`": sum(
                _timed([str(SCRIPT), "segment", str(path), "-o", str(work / "single" / path.name), *common])
                for path in sorted(images.iterdir())
            ),
            "batch, in process": _timed([str(SCRIPT), "batch", str(images), "-o", str(work / "inproc"), *common]),
            f"batch --workers {args.workers}": _timed(
                [str(SCRIPT), "batch", str(images), "-o", str(work / "workers"), "--workers", str(args.workers), *common]
            ),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = seconds["per-case `segment`"]
    print(f"{args.n} phantoms {'x'.join(map(str, args.shape))} at {'x'.join(map(str, args.spacing))} mm, classes {args.classes}, "
          f"{os.cpu_count()} CPU(s)")  # fmt: skip
    print(f"{'variant':<26} {'seconds':>8} {'cases/hour':>11} {'vs per-case':>12}")
    for name, s in seconds.items():
        print(f"{name:<26} {s:>8.1f} {args.n / s * 3600:>11.0f} {base / s:>11.2f}x")


if __name__ == "__main__":
    main()

"""Independent checkers of DICOM objects, for tests: Debian dicom3tools' IOD validator ``dciodvfy``
and ``plastimatch``, which rasterises an RT-STRUCT back to masks. A missing program fails the test
(``.ci/run`` installs both), never skips it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from voxelprompt.types import Volume


def _tool(name: str, package: str) -> str:
    """A Debian program the checks need; missing, the test fails (CI installs it: ``.ci/run``)."""
    path = shutil.which(name)
    assert path, f"{name} is needed: apt-get install -y {package} (.ci/run installs it)"
    return path


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines of Debian dicom3tools' IOD validator (its exit code is 0 either way)."""
    done = subprocess.run([_tool("dciodvfy", "dicom3tools"), str(path)], capture_output=True, text=True, timeout=120)
    lines = (done.stdout + done.stderr).splitlines()
    assert "RTStructureSet" in lines, done.stdout + done.stderr  # it recognised the IOD it checked
    return [line for line in lines if line.startswith("Error")]


def plastimatch_masks(rs: Path, ct_dir: Path, out: Path, grid: Volume, xor: bool = False) -> dict[str, np.ndarray]:
    """Each structure of ``rs`` rasterised by plastimatch on ``ct_dir``, sampled onto ``grid``'s
    voxels by patient position (its (I, J, K) order, independent of plastimatch's)."""
    args = [_tool("plastimatch", "plastimatch"), "convert", "--input", str(rs), "--referenced-ct", str(ct_dir),
            "--output-prefix", str(out), *(["--xor-contours"] if xor else [])]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij"), axis=-1).reshape(-1, 3)
    lps = (ijk @ grid.affine[:3, :3].T + grid.affine[:3, 3]) * np.array([-1.0, -1.0, 1.0])  # RAS -> LPS
    masks, lookups = {}, {}
    for path in sorted(out.glob("*.mha")):
        image = sitk.ReadImage(str(path))
        geometry = (image.GetOrigin(), image.GetSpacing(), image.GetDirection(), image.GetSize())
        if geometry not in lookups:  # plastimatch writes every structure on one grid: map it once
            to_index = np.linalg.inv(np.asarray(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing()))
            index = np.rint((lps - np.asarray(image.GetOrigin())) @ to_index.T).astype(np.int64)  # (x, y, z)
            inside = np.all((index >= 0) & (index < np.asarray(image.GetSize())), axis=1)
            size = image.GetSize()
            flat = (index[inside, 2] * size[1] + index[inside, 1]) * size[0] + index[inside, 0]  # (z, y, x) order
            lookups[geometry] = (inside, flat)
        inside, flat = lookups[geometry]
        values = np.zeros(len(inside), dtype=bool)
        values[inside] = sitk.GetArrayViewFromImage(image).ravel()[flat] > 0
        masks[path.stem] = values.reshape(grid.shape)
    return masks

"""The test cohort of ``voxelprompt batch`` (three small phantoms, the shared real CT, one corrupt
file and the shared DICOM series, JPEG 2000, copied), listed in a CSV; and helpers to compare runs."""

from __future__ import annotations

import shutil
from pathlib import Path

from shared_paths import shared_file

#: Case ids of the cohort and the one that must fail.
CASE_IDS = ("ct_dicom", "example_ct_sm", "phantom_0", "phantom_1", "phantom_2")
CORRUPT = "truncated"


def make_phantoms(folder: Path, n: int = 3) -> list[Path]:
    """``n`` 40^3 phantoms at 4 mm (a second each for the demo model), seeds 0..n-1."""
    from voxelprompt.data import PhantomConfig, make_phantom
    from voxelprompt.imageio import write_volume

    paths = []
    for seed in range(n):
        image, _ = make_phantom(PhantomConfig(shape=(40, 40, 40), spacing=(4.0, 4.0, 4.0), seed=seed))
        paths.append(write_volume(image, folder / f"phantom_{seed}.nii.gz"))
    return paths


def make_cohort(folder: Path) -> Path:
    """A CSV of six cases: phantoms, real CT, a truncated NIfTI, a DICOM series folder."""
    phantoms = make_phantoms(folder)
    shutil.copy(shared_file("data", "totalseg", "example_ct_sm.nii.gz"), folder / "example_ct_sm.nii.gz")
    shutil.copytree(shared_file("data", "totalseg", "example_ct_dicom"), folder / "ct_dicom")
    data = phantoms[0].read_bytes()
    (folder / f"{CORRUPT}.nii.gz").write_bytes(data[: len(data) // 2])
    rows = ["image", *(p.name for p in phantoms), "example_ct_sm.nii.gz", f"{CORRUPT}.nii.gz", "ct_dicom"]
    csv = folder / "cohort.csv"
    csv.write_text("\n".join(rows) + "\n")
    return csv


def output_bytes(out_dir: Path) -> dict[str, bytes]:
    """Every output file of a run (case folders and failures.csv) by relative path."""
    files = {}
    for path in sorted(out_dir.rglob("*")):
        relative = path.relative_to(out_dir)
        if path.is_file() and not any(part.startswith(".") for part in relative.parts) and path.name != "manifest.json":
            files[str(relative)] = path.read_bytes()
    return files

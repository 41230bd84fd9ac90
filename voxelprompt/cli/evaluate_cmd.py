"""``voxelprompt evaluate``: a thin adapter over :func:`voxelprompt.evaluation.runner.evaluate`.

``--checkpoint`` (or ``--demo-model``) evaluates VISTA3D (modes auto, point, auto+point,
iterative), ``--segvol-checkpoint`` SegVol (modes box+text, points7, correction5, and iterative);
both may be given, and each model runs the requested modes it supports. Without ``--mode``: auto
for VISTA3D, box+text for SegVol.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import (
    DeviceOption,
    Profile,
    QuietOption,
    SegVolMode,
    checkpoint_option,
)
from voxelprompt.errors import VoxelPromptError

__all__ = ["evaluate"]

BASELINES = ("region-grow",)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def evaluate(
    datalist: Annotated[
        Path, typer.Option("--datalist", "-d", metavar="PATH", help="Datalist JSON, MSD folder/dataset.json, or TotalSegmentator folder.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DIR", help="Folder for results.csv, summary.md and plots (created; a rerun resumes).")
    ],
    model: Annotated[
        Path | None, checkpoint_option("VISTA3D checkpoint (bundle or research layout); omitted: no VISTA3D unless --demo-model.")
    ] = None,
    demo_model: Annotated[
        bool, typer.Option("--demo-model", help="Evaluate the demo VISTA3D shipped in the package (its own spacing).")
    ] = False,
    segvol_model: Annotated[
        Path | None,
        typer.Option(
            "--segvol-checkpoint", metavar="PATH", help="SegVol v1 checkpoint (SegVol_v1.pth or pytorch_model.bin); omitted: no SegVol."
        ),
    ] = None,
    mode: Annotated[
        list[str] | None,
        typer.Option(
            "--mode",
            metavar="MODES",
            help="VISTA3D: auto, point, auto+point, iterative; SegVol: box+text, points7, correction5, iterative "
            "(repeatable or comma-separated; default: auto and/or box+text).",
        ),
    ] = None,
    clicks: Annotated[int, typer.Option("--clicks", min=1, metavar="N", help="Clicks of the iterative protocol.")] = 10,
    baseline: Annotated[
        str | None, typer.Option("--baseline", metavar="region-grow", help="Also run a classical baseline: region-grow; omitted: none.")
    ] = None,
    dataset_mapping: Annotated[
        Path | None,
        typer.Option(
            "--dataset-mapping", metavar="PATH",
            help="Label mapping JSON ({dataset: [[value, class], ...]} or {value: class}); omitted: the dataset's label names through the class table, else labels are VISTA3D ids.",
        ),
    ] = None,
    dataset_name: Annotated[
        str | None, typer.Option("--dataset-name", metavar="NAME", help="Dataset name (tables, mapping lookup); omitted: the datalist's name key, else its file or folder name.")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", metavar="NAME", help="Datalist split; omitted: the first labelled of validation, testing, training.")
    ] = None,
    classes: Annotated[
        str, typer.Option("--classes", metavar="NAMES", help="Only these classes (names or ids, comma-separated); omitted: every labelled class.")
    ] = "",
    oracle_best_of: Annotated[
        int, typer.Option("--oracle-best-of", min=1, metavar="N", help="auto+point: keep the best of N trials by ground-truth Dice (official: 3).")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the simulated clicks.")] = 0,
    tolerance_mm: Annotated[float, typer.Option("--tolerance-mm", metavar="MM", help="NSD tolerance in mm.")] = 2.0,
    max_cases: Annotated[
        int | None, typer.Option("--max-cases", min=1, metavar="N", help="At most this many cases per dataset; omitted: all.")
    ] = None,
    profile: Annotated[Profile, typer.Option("--profile", help="Official VISTA3D pipeline: bundle (MONAI model zoo) or research (VISTA repository).")] = Profile.bundle,
    roi: Annotated[
        tuple[int, int, int] | None,
        typer.Option("--roi", metavar="H W D", help="Sliding-window size in model voxels; omitted: the profile's (128 128 128)."),
    ] = None,
    correction_start: Annotated[
        str, typer.Option("--correction-start", metavar="box+text|points7", help="correction5 starts from the box+text or the points7 result.")
    ] = "box+text",
    segvol_mode: Annotated[
        SegVolMode, typer.Option("--segvol-mode", help="SegVol inference: zoom (zoom-out-zoom-in), sliding or zoom-out.")
    ] = SegVolMode.zoom,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
) -> None:
    """Evaluate VISTA3D and/or SegVol (and baselines) with the papers' protocols; resumable, writes CSV, tables and plots."""
    from voxelprompt.catalog import vista3d_catalog
    from voxelprompt.evaluation.runner import EvalConfig
    from voxelprompt.evaluation.runner import evaluate as run

    if demo_model and model is not None:
        raise VoxelPromptError("give --checkpoint PATH or --demo-model, not both")
    vista = model is not None or demo_model
    modes = tuple(m for text in mode or () for m in _split(text))
    if not modes:
        modes = (("auto",) if vista or segvol_model is None else ()) + (("box+text",) if segvol_model else ())
    if baseline is not None and baseline not in BASELINES:
        raise VoxelPromptError(f"unknown baseline {baseline!r}; choose from {', '.join(BASELINES)}")
    if not vista and segvol_model is None and baseline is None:
        raise VoxelPromptError(
            "nothing to evaluate: give --checkpoint PATH, --demo-model, --segvol-checkpoint PATH and/or --baseline region-grow"
        )
    class_ids = vista3d_catalog().resolve(_split(classes)) if classes.strip() else None
    config = EvalConfig(
        modes=modes,
        clicks=clicks,
        seed=seed,
        tolerance_mm=tolerance_mm,
        oracle_best_of=oracle_best_of,
        classes=class_ids,
        max_cases=max_cases,
        progress=not quiet,
        correction_start=correction_start,
    )
    models = _models(model, demo_model, baseline, profile.value, roi, device)
    if segvol_model is not None:
        models.insert(1 if vista else 0, _segvol(segvol_model, segvol_mode.value, device))
    from voxelprompt.evaluation.datasets import load_dataset

    dataset = load_dataset(datalist, split=split, mapping=dataset_mapping, name=dataset_name)
    rows = run(models, [dataset], output, config)
    typer.echo(f"wrote {output}: {len(rows)} rows in results.csv, summary.md and plots")


def _models(model: Path | None, demo: bool, baseline: str | None, profile: str, roi, device: str) -> list:
    from voxelprompt.evaluation.adapters import RegionGrowModel, Vista3DEvalModel

    models: list = []
    if model is not None or demo:
        from voxelprompt.api import load_segmenter

        segmenter = load_segmenter(model, profile=profile, device=device, roi_size=roi)
        models.append(Vista3DEvalModel(segmenter, name="vista3d"))
    if baseline == "region-grow":
        models.append(RegionGrowModel())
    return models


def _segvol(checkpoint: Path, inference: str, device: str):
    from voxelprompt import api_segvol
    from voxelprompt.devices import resolve_device
    from voxelprompt.evaluation.adapters import SegVolEvalModel

    segmenter = api_segvol.load_segvol_segmenter(checkpoint, device=resolve_device(device), mode=inference)
    return SegVolEvalModel(segmenter, name="segvol")

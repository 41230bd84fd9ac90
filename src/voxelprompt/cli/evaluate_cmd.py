"""``voxelprompt evaluate``: a thin adapter over :func:`voxelprompt.evaluation.runner.evaluate`.

Each ``--checkpoint`` (any family, recognised from its tensors) and ``--demo-model`` adds a model
through :func:`voxelprompt.evaluation.models.load_eval_models`; each model runs the requested
modes its family supports (VISTA3D: auto, point, auto+point, iterative; SegVol: box+text,
points7, correction5, iterative). Without ``--mode``: each model's main protocol.

Label values with no VISTA3D class are zero-shot (novel) objects (:mod:`voxelprompt.evaluation.novel`):
with ``--zero-shot`` (the default) they run the click protocols among ``--mode`` (without ``--mode``:
each model's zero-shot protocol, VISTA3D iterative, SegVol points7); ``--no-zero-shot`` ignores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.family_options import option_fields, with_family_options
from voxelprompt.cli.options import (
    DeviceOption,
    QuietOption,
    checkpoint_option,
    tune_process,
)

__all__ = ["evaluate"]


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _class_ids(items: list[str], mapping) -> tuple[int, ...]:
    """Class ids of names or ids, and novel object ids of the dataset's label names with no class.

    Raises:
        PromptError: a name that is neither a VISTA3D class nor a novel label of the dataset.
    """
    from voxelprompt.catalog import vista3d_catalog

    novel = mapping.novel_ids(items)
    catalog = mapping.catalog or vista3d_catalog()
    return tuple(dict.fromkeys(novel[i] if i in novel else catalog.index(i) for i in items))


@with_family_options
def evaluate(
    datalist: Annotated[
        Path, typer.Option("--datalist", "-d", metavar="PATH", help="Datalist JSON, MSD folder/dataset.json, or TotalSegmentator folder.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="DIR", help="Folder for results.csv, summary.md and plots (created; a rerun resumes).")
    ],
    checkpoints: Annotated[
        list[Path] | None,
        checkpoint_option(
            "Model weights of any family, VISTA3D or SegVol (recognised from its tensors); repeatable. "
            "Omitted: only --demo-model and baselines."
        ),
    ] = None,
    demo_model: Annotated[
        bool, typer.Option("--demo-model", help="Evaluate the demo VISTA3D shipped in the package (its own spacing).")
    ] = False,
    mode: Annotated[
        list[str] | None,
        typer.Option(
            "--mode",
            metavar="MODES",
            help="VISTA3D: auto, point, auto+point, iterative; SegVol: box+text, points7, correction5, iterative; "
            "region-grow: point, iterative (repeatable or comma-separated); omitted: each model's main protocol "
            "(auto, box+text, point). A model runs the modes it supports.",
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
            help="Label mapping JSON ({dataset: [[value, class], ...]} or {value: class}; class null: a novel object, see --zero-shot); omitted: the dataset's label names through the class table, else labels are VISTA3D ids.",
        ),
    ] = None,
    dataset_name: Annotated[
        str | None, typer.Option("--dataset-name", metavar="NAME", help="Dataset name (tables, mapping lookup); omitted: the datalist's name key, else its file or folder name.")
    ] = None,
    split: Annotated[
        str | None, typer.Option("--split", metavar="NAME", help="Datalist split; omitted: the first labelled of validation, testing, training.")
    ] = None,
    classes: Annotated[
        str,
        typer.Option(
            "--classes", metavar="NAMES",
            help="Only these classes (names or ids, comma-separated; a novel object by its dataset label name); omitted: every labelled class.",
        ),
    ] = "",
    zero_shot: Annotated[
        bool,
        typer.Option(
            "--zero-shot/--no-zero-shot",
            help="Label values with no VISTA3D class: evaluate them as novel objects with the click protocols of --mode "
            "(point, iterative, points7; without --mode: VISTA3D iterative, SegVol points7), VISTA3D with its zero-shot "
            "class id and SegVol without text; --no-zero-shot ignores them.",
        ),
    ] = True,
    oracle_best_of: Annotated[
        int, typer.Option("--oracle-best-of", min=1, metavar="N", help="auto+point: keep the best of N trials by ground-truth Dice (official: 3).")
    ] = 1,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the simulated clicks.")] = 0,
    tolerance_mm: Annotated[float, typer.Option("--tolerance-mm", metavar="MM", help="NSD tolerance in mm.")] = 2.0,
    max_cases: Annotated[
        int | None, typer.Option("--max-cases", min=1, metavar="N", help="At most this many cases per dataset; omitted: all.")
    ] = None,
    correction_start: Annotated[
        str, typer.Option("--correction-start", metavar="box+text|points7", help="correction5 starts from the box+text or the points7 result.")
    ] = "box+text",
    segvol_checkpoints: Annotated[
        list[Path] | None, typer.Option("--segvol-checkpoint", metavar="PATH", hidden=True, help="Deprecated: use --checkpoint.")
    ] = None,
    device: DeviceOption = "auto",
    quiet: QuietOption = False,
    family_options: dict | None = None,
) -> None:
    """Evaluate VISTA3D and/or SegVol (and baselines) with the papers' protocols; resumable, writes CSV, tables and plots."""
    from voxelprompt.evaluation.datasets import load_dataset
    from voxelprompt.evaluation.models import load_eval_models, model_families, shared_catalog
    from voxelprompt.evaluation.runner import EvalConfig
    from voxelprompt.evaluation.runner import evaluate as run

    # Cheap checks first: modes, the dataset and class names, then the models.
    modes = tuple(m for text in mode or () for m in _split(text))
    settings = dict(
        clicks=clicks, seed=seed, tolerance_mm=tolerance_mm, oracle_best_of=oracle_best_of,
        max_cases=max_cases, progress=not quiet, correction_start=correction_start, zero_shot=zero_shot,
    )  # fmt: skip
    if modes:
        EvalConfig(modes=modes, **settings)
    every = [*(checkpoints or ()), *(segvol_checkpoints or ())]
    families = model_families(every, demo_model)
    fields = option_fields(family_options or {}, [f.name for f in families])  # a flag no model has is refused
    catalog = shared_catalog(families)  # label names are the evaluated family's own
    dataset = load_dataset(datalist, split=split, mapping=dataset_mapping, name=dataset_name, catalog=catalog)
    class_ids = _class_ids(_split(classes), dataset.mapping) if classes.strip() else None
    tune_process(device)
    models = load_eval_models(
        every, demo_model, [baseline] if baseline else [], device=device,
        options=fields,
    )  # fmt: skip
    defaults = not modes
    config = EvalConfig(
        modes=modes or tuple(dict.fromkeys(m.default_protocol for m in models)),
        zero_shot_modes=tuple(dict.fromkeys(m.zero_shot_protocol for m in models)) if defaults else None,
        classes=class_ids, **settings,
    )  # fmt: skip
    rows = run(models, [dataset], output, config)
    typer.echo(f"wrote {output}: {len(rows)} rows in results.csv, summary.md and plots")

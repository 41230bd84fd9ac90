"""``voxelprompt train`` and ``voxelprompt finetune``: thin adapters over :mod:`voxelprompt.training`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import QuietOption, _device

__all__ = ["train", "finetune"]


def _parse_class(text: str) -> tuple[int, int]:
    from voxelprompt.catalog import vista3d_catalog
    from voxelprompt.errors import InputError

    local, sep, glob = text.partition("=")
    if not sep or not local.strip().isdigit() or not glob.strip():
        raise InputError(f"--class must be LOCAL=GLOBAL such as 1=140 or 2=liver, got {text!r}")
    value = int(glob) if glob.strip().isdigit() else vista3d_catalog().index(glob)
    return int(local), value


def train(
    recipe: Annotated[
        str,
        typer.Argument(
            metavar="RECIPE",
            help="Recipe file (.json/.yaml) or a built-in: stage1..stage4 (VISTA3D), segvol-pretrain, segvol-supervised."
        ),
    ],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUTPUT_DIR/checkpoint.pt.")] = False,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", metavar="DIR", help="Run folder; omitted: the recipe's output_dir.")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=1, metavar="N", help="Optimisation steps; omitted: the recipe's.")] = None,
    datalist: Annotated[
        list[Path] | None,
        typer.Option("--datalist", metavar="PATH", help="Datalist JSON (repeatable); omitted: the recipe's datalists."),
    ] = None,
    init: Annotated[
        Path | None, typer.Option("--init", metavar="PATH", help="Start from this checkpoint (the previous stage); omitted: the recipe's init.")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            "--device", metavar="auto|cpu|cuda[:N]", callback=lambda v: None if v is None else _device(v),
            help="Where the network trains; omitted: the recipe's device (auto: a CUDA GPU when present, else the CPU).",
        ),
    ] = None,
    skip_bad: Annotated[bool, typer.Option("--skip-bad", help="Log and skip bad datalist entries (and unlabeled ones the stage cannot train on).")] = False,
    quiet: QuietOption = False,
) -> None:
    """Train VISTA3D (a stage recipe) or SegVol (SimMIM or supervised) on CPU, one GPU, or `torchrun`."""
    from voxelprompt.training import load_recipe
    from voxelprompt.families.vista3d.training import recipe_from_dict
    from voxelprompt.training import train as run

    r = load_recipe(recipe)
    changes: dict = {}
    if output_dir is not None:
        changes["output_dir"] = str(output_dir)
    if steps is not None:
        changes["steps"] = steps
    if init is not None:
        changes["init"] = str(init)
    if device is not None:
        changes["device"] = device
    data: dict = {}
    if datalist:
        data["datalists"] = [str(p) for p in datalist]
    if skip_bad:
        data["skip_bad"] = True
    if data:
        changes["data"] = data
    if changes:
        r = recipe_from_dict(changes, base=r)
    result = run(r, resume=resume, progress=not quiet)
    _report(result)


def finetune(
    checkpoint: Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="Trained VISTA3D checkpoint to start from ('demo': the shipped demo model).")],
    datalist: Annotated[
        Path, typer.Argument(metavar="DATALIST|DATASTORE", help="Datalist JSON of the new dataset, or a `voxelprompt serve --datastore` folder (its saved labels).")
    ],
    classes: Annotated[
        list[str] | None,
        typer.Option("--class", metavar="LOCAL=GLOBAL", help="Label mapping, e.g. 1=140 or 2=liver (repeatable); with a DATASTORE: NAME=ID fixes a structure's id (else: its catalog id or a free one)."),
    ] = None,
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", metavar="DIR", help="Run folder.")] = Path("runs/finetune"),
    cases: Annotated[
        int | None, typer.Option("--cases", min=1, metavar="N", help="Few-shot: use only the first N training cases; omitted: all.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", min=1, metavar="N", help="Optimisation steps.")] = 200,
    lr: Annotated[float, typer.Option("--lr", metavar="LR", help="Peak learning rate.")] = 1e-4,
    roi: Annotated[tuple[int, int, int], typer.Option("--roi", metavar="H W D", help="Patch size in voxels (multiples of 16).")] = (128, 128, 128),
    spacing: Annotated[
        tuple[float, float, float], typer.Option("--spacing", metavar="X Y Z", help="Training voxel size in mm.")
    ] = (1.5, 1.5, 1.5),
    init_from: Annotated[
        list[str] | None,
        typer.Option("--init-from", metavar="NEW=KNOWN", help="Start a new class's embedding from a known one (repeatable); omitted: the checkpoint's row for that id."),
    ] = None,
    train_encoder: Annotated[bool, typer.Option("--train-encoder", help="Also train the encoder (default: frozen).")] = False,
    scope: Annotated[
        str, typer.Option("--scope", metavar="embedding|auto", help="DATASTORE: train the automatic branch (paper) or only the new classes' embedding rows (existing classes unchanged, slow to learn).")
    ] = "auto",
    tag: Annotated[str, typer.Option("--tag", metavar="TAG", help="DATASTORE: the saved labels to train on.")] = "final",
    resume: Annotated[bool, typer.Option("--resume", help="DATASTORE: continue the run in OUTPUT_DIR (after a kill).")] = False,
    quiet: QuietOption = False,
) -> None:
    """Few-shot finetuning: add classes to the class embedding from N labelled cases (auto branch),
    from a datalist or from the labels a viewer saved in a server's datastore."""
    from voxelprompt.errors import InputError
    from voxelprompt.families.vista3d.training import finetune as run

    if datalist.is_dir():
        _finetune_datastore(checkpoint, datalist, classes or [], init_from or [], output_dir, steps, lr, roi, spacing, scope, tag, resume, quiet)
        return
    if str(checkpoint) == "demo":
        raise InputError("CHECKPOINT 'demo' is for a DATASTORE; give the demo model's file for a datalist")
    if not classes:
        raise InputError("a datalist needs --class LOCAL=GLOBAL (e.g. --class 1=140)")
    mapping = dict(_parse_class(c) for c in classes)
    seeds = dict(_parse_class(c) for c in (init_from or []))
    result = run(
        checkpoint,
        datalist,
        mapping,
        init_from=seeds,
        n_cases=cases,
        steps=steps,
        output_dir=output_dir,
        train_encoder=train_encoder,
        progress=not quiet,
        optim={"lr": lr},
        patch={"roi": list(roi), "spacing": list(spacing)},
    )
    _report(result)


def _finetune_datastore(checkpoint, folder, classes, init_from, output_dir, steps, lr, roi, spacing, scope, tag, resume, quiet) -> None:
    """``voxelprompt finetune CHECKPOINT DATASTORE``: :func:`~voxelprompt.families.vista3d.training.teach.teach`."""
    from voxelprompt.catalog import LAST_SUPPORTED, everything_classes, vista3d_catalog
    from voxelprompt.errors import InputError
    from voxelprompt.families.vista3d.training.teach import SCOPES, teach

    if scope not in SCOPES:
        raise InputError(f"--scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    fixed, related = {}, {}
    for text in classes:
        name, sep, value = text.rpartition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise InputError(f"--class with a datastore must be NAME=ID such as 'my lesion=140', got {text!r}")
        fixed[name.strip()] = int(value)
    for text in init_from:
        new, sep, known = text.partition("=")
        if not sep or not new.strip() or not known.strip():
            raise InputError(f"--init-from must be NEW=KNOWN such as 'my lesion=liver', got {text!r}")
        related[new.strip()] = known.strip()
    from voxelprompt.families.vista3d.inference.profiles import get_profile

    if str(checkpoint) == "demo":
        from voxelprompt.families.vista3d.inference.default_model import default_checkpoint, default_profile

        checkpoint, profile = default_checkpoint(), default_profile()
    else:
        from voxelprompt.api import check_checkpoint_path

        check_checkpoint_path(checkpoint)
        profile = get_profile("bundle")
    ids = profile.everything or everything_classes(LAST_SUPPORTED)
    known = {int(c): vista3d_catalog().name(c) for c in ids}
    given = (tuple(roi), tuple(spacing)) != ((128, 128, 128), (1.5, 1.5, 1.5))  # else the model's own window and spacing
    run = teach(
        checkpoint, folder, output_dir, known=known, tag=tag, fixed=fixed, related=related, scope=scope, steps=steps,
        lr=lr, patch={"roi": list(roi), "spacing": list(spacing)} if given else None, profile=profile, resume=resume,
        progress=not quiet,
    )  # fmt: skip
    typer.echo(f"classes: {', '.join(f'{n}={i}' for n, i in run.plan.ids.items())} (new: {', '.join(run.plan.new) or 'none'})")
    typer.echo(f"labelled images: {len(run.images)}")
    _report(run.result)


def _report(result) -> None:
    import math

    losses = [x for x in result.losses if not math.isnan(x)]
    typer.echo(f"steps: {result.steps} ({result.steps_per_second:.3f} steps/s)")
    if losses:
        typer.echo(f"loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")
    if result.val_dice:
        mean = sum(result.val_dice.values()) / len(result.val_dice)
        typer.echo(f"validation mean Dice: {mean:.3f} over {len(result.val_dice)} classes")
    typer.echo(f"model: {result.model}")
    typer.echo(f"checkpoint: {result.checkpoint}")

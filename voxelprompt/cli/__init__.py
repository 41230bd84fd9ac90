"""The ``voxelprompt`` command line: thin Typer adapters over the Python API.

Each command lives in its own module and is registered here; errors derived from
:class:`voxelprompt.errors.VoxelPromptError` become a one-line message and exit code 2.
"""

from __future__ import annotations

import logging
import sys

import typer

from voxelprompt.errors import VoxelPromptError

__all__ = ["app", "main"]

app = typer.Typer(
    name="voxelprompt",
    help="Promptable 3D CT segmentation (VISTA3D, SegVol).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from voxelprompt.cli import (
        catalog_cmd,
        demo_cmd,
        evaluate_cmd,
        model_cmd,
        phantom,
        segment_cmd,
        segvol_cmd,
        supervoxel_cmd,
        train_cmd,
    )

    app.command("demo")(demo_cmd.demo)
    app.command("segment")(segment_cmd.segment)
    app.command("segment-segvol")(segvol_cmd.segment_segvol)
    app.command("identify")(segvol_cmd.identify)
    app.command("classes")(catalog_cmd.classes)
    app.command("info")(model_cmd.info)
    app.command("random-checkpoint")(model_cmd.random_checkpoint)
    app.command("evaluate")(evaluate_cmd.evaluate)
    app.command("phantom")(phantom.phantom)
    app.command("supervoxels")(supervoxel_cmd.supervoxels)
    app.command("pseudo-masks")(supervoxel_cmd.pseudo_masks)
    app.command("train")(train_cmd.train)
    app.command("finetune")(train_cmd.finetune)


_register()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("voxelprompt")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        app(args=argv, standalone_mode=False)
    except VoxelPromptError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except (typer.Exit, SystemExit) as err:
        code = getattr(err, "exit_code", getattr(err, "code", 0))
        sys.exit(code or 0)
    except Exception as err:  # click usage errors carry their own exit code
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(1)
        raise

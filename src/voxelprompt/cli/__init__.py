"""The ``voxelprompt`` command line: thin Typer adapters over the Python API.

Each command lives in its own module and is registered here. Whatever goes wrong on the user's
side ends in one line on stderr and exit code 2: a :class:`voxelprompt.errors.VoxelPromptError`
(bad file, prompt, option value, checkpoint) or a usage error (unknown option, missing argument,
bad choice), whichever copy of click the installed Typer uses. The option vocabulary shared by all
commands is in ``README.md`` beside this file.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from voxelprompt._version import __version__
from voxelprompt.errors import VoxelPromptError

__all__ = ["app", "main"]

app = typer.Typer(
    name="voxelprompt",
    help="Promptable 3D CT segmentation (VISTA3D, SegVol).",
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: Typer's rich panels print Python types (<bool>, <list[str]>) beside options.
    rich_markup_mode=None,
)

#: Exit code for everything the user can fix: bad input, bad prompts, bad options.
USAGE_EXIT = 2


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"voxelprompt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Promptable 3D CT segmentation (VISTA3D, SegVol): `voxelprompt COMMAND --help` explains each command."""


def _register() -> None:
    from voxelprompt.cli import (
        batch_cmd,
        catalog_cmd,
        demo_cmd,
        evaluate_cmd,
        identify_cmd,
        model_cmd,
        overlay_cmd,
        phantom,
        segment_cmd,
        segvol_cmd,
        serve_cmd,
        supervoxel_cmd,
        train_cmd,
        weights_cmd,
    )

    app.command("demo")(demo_cmd.demo)
    app.command("segment")(segment_cmd.segment)
    app.command("batch")(batch_cmd.batch)
    app.command("segment-segvol")(segvol_cmd.segment_segvol)
    app.command("identify")(identify_cmd.identify)
    app.command("overlay")(overlay_cmd.overlay)
    app.command("classes")(catalog_cmd.classes)
    app.command("info")(model_cmd.info)
    app.command("random-checkpoint")(model_cmd.random_checkpoint)
    app.command("evaluate")(evaluate_cmd.evaluate)
    app.command("phantom")(phantom.phantom)
    app.command("supervoxels")(supervoxel_cmd.supervoxels)
    app.command("pseudo-masks")(supervoxel_cmd.pseudo_masks)
    app.command("serve")(serve_cmd.serve)
    app.command("train")(train_cmd.train)
    app.command("finetune")(train_cmd.finetune)
    app.add_typer(weights_cmd.app, name="weights")


_register()


def _configure_logging() -> None:
    """Library logging to stderr as plain lines (warnings stay visible next to progress bars)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("voxelprompt")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def _command_names() -> list[str]:
    commands = [info.name for info in app.registered_commands if info.name]
    return commands + [info.name for info in app.registered_groups if info.name]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_line(err: Exception) -> str:
    """One line for a click/Typer usage error: what is wrong and where the help is."""
    ctx = getattr(err, "ctx", None)
    path = getattr(ctx, "command_path", None) or "voxelprompt"
    message = err.format_message() if hasattr(err, "format_message") else str(err)
    message = message.replace("Value error, ", "")  # Typer 0.29 passes pydantic's prefix through
    return f"error: {_one_line(message)} (see '{path} --help')"


def _is_click_error(err: BaseException) -> bool:
    # Typer >= 0.29 ships its own copy of click (typer._click); older releases use click itself.
    # Both raise ClickException subclasses that carry exit_code and format_message.
    return any(cls.__name__ == "ClickException" for cls in type(err).__mro__)


#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED_EXIT = 130
_INTERRUPTED = "interrupted: nothing half-written was left behind"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run a command; user errors become one line and exit code 2."""
    _configure_logging()
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        names = ", ".join(_command_names())
        typer.echo(f"usage: voxelprompt COMMAND [ARGS]... (commands: {names}); 'voxelprompt --help' explains each", err=True)
        sys.exit(USAGE_EXIT)
    try:
        code = app(args=args, standalone_mode=False, prog_name="voxelprompt")
    except VoxelPromptError as err:
        from voxelprompt.cli.options import as_flags

        typer.echo(f"error: {as_flags(_one_line(err))}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo(_INTERRUPTED, err=True)
        sys.exit(INTERRUPTED_EXIT)
    except Exception as err:
        if _is_click_error(err):
            typer.echo(_usage_line(err), err=True)
            sys.exit(USAGE_EXIT)
        if type(err).__name__ == "Abort":
            typer.echo("aborted", err=True)
            sys.exit(130)
        if type(err).__name__ == "Exit":
            sys.exit(getattr(err, "exit_code", 0) or 0)
        raise
    if code == INTERRUPTED_EXIT:  # Typer turns Ctrl-C into Exit(130) and returns it
        typer.echo(_INTERRUPTED, err=True)
    if isinstance(code, int) and code:
        sys.exit(code)

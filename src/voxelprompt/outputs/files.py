"""Writing one result in a chosen format: checked before any model work, written atomically.

:func:`check_output` runs first (format chosen, pip extra present, path writable, input fit for the
format), :func:`write_output` writes the format's files into a hidden staging folder beside the
destination and moves each into place only when all are complete, so a failure leaves nothing
half-written. :func:`output_bytes` gives one file's bytes for an HTTP reply.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from voxelprompt.outputs.context import OutputContext
from voxelprompt.outputs.registry import OutputFormat, format_for_path

__all__ = ["check_output", "write_output", "output_bytes"]


def check_output(
    path: str | os.PathLike,
    name: str | None = None,
    *,
    source: str | os.PathLike | None = None,
    inputs: Sequence[str | os.PathLike] = (),
) -> OutputFormat:
    """Choose and check an output before any expensive work; create the output's folder.

    Args:
        path: the file to write.
        name: the format's name (``--output-format``); None: chosen by ``path``'s ending
            (:func:`~voxelprompt.outputs.registry.format_for_path`).
        source: the input (a file or a DICOM series folder), for formats that reference it;
            None: an in-memory image.
        inputs: files the command reads; writing over one of them is refused.

    Returns:
        The chosen format.

    Raises:
        PromptError: an unknown format name.
        InputError: an ending no format takes, a path that cannot be written, or an input the
            format cannot reference (an RT-STRUCT of an image file).
        MissingExtraError: the writer's pip extra is not installed.
    """
    from voxelprompt.imageio import check_output_path

    if Path(path).is_dir():  # say what is wrong with the path before what its ending lacks
        check_output_path(path, inputs=inputs)
    fmt = format_for_path(path, name)
    fmt.require_extra()
    fmt.check_source(source)
    check_output_path(path, suffixes=fmt.suffixes, inputs=inputs)
    return fmt


def write_output(context: OutputContext, path: str | os.PathLike, fmt: OutputFormat | str | None = None) -> list[Path]:
    """Write ``context`` at ``path`` in format ``fmt`` (a format or its name; None: by ``path``'s
    ending), with ``<stem>.label_names.json`` beside it for formats that hold no names.

    The files are written into a hidden staging folder beside ``path`` and each is moved into
    place (``os.replace``) once all are written: on failure none of them appears, and files already
    moved are removed again.

    Returns:
        The files written, the format's file first.

    Raises:
        VoxelPromptError: what the format's writer refuses; InputError: the folder cannot be written.
    """
    from voxelprompt.imageio import label_names_path, write_label_names

    path = Path(path)
    fmt = fmt if isinstance(fmt, OutputFormat) else format_for_path(path, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    stage = path.parent / f".{path.name}.{secrets.token_hex(4)}.partial"
    stage.mkdir()
    moved: list[Path] = []
    try:
        staged = fmt.write(context, stage / path.name)
        if fmt.label_names_beside:
            staged.append(write_label_names(context.label_names, label_names_path(stage / path.name)))
        for file in staged:
            final = path.parent / Path(file).relative_to(stage)
            os.replace(file, final)
            moved.append(final)
    except BaseException:
        for final in moved:  # both files or neither: a map without its names reads as "label N"
            with contextlib.suppress(OSError):
                final.unlink()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return moved


def output_bytes(context: OutputContext, fmt: OutputFormat | str) -> tuple[str, bytes]:
    """The format's file for ``context`` as ``(file name, bytes)`` (an HTTP reply), its
    companions dropped; written in a temporary folder that is removed.

    Raises:
        VoxelPromptError: what the format's writer refuses.
    """
    from voxelprompt.outputs.registry import get_output_format

    fmt = fmt if isinstance(fmt, OutputFormat) else get_output_format(fmt)
    with tempfile.TemporaryDirectory(prefix="voxelprompt-output-") as tmp:
        written = fmt.write(context, Path(tmp) / fmt.file_name)
        return Path(written[0]).name, Path(written[0]).read_bytes()

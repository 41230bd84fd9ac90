"""``voxelprompt weights list|fetch|verify|path``: the official checkpoints in the local cache.

A thin adapter over :mod:`voxelprompt.weights`; a registry name also works as ``-c NAME`` in the
commands that take a checkpoint once the file is fetched.
"""

from __future__ import annotations

from typing import Annotated

import typer

from voxelprompt.cli.options import OfflineOption, QuietOption
from voxelprompt.errors import WeightsError

__all__ = ["app", "download_bar"]

app = typer.Typer(
    name="weights",
    help="Official checkpoints (VISTA3D bundle and research, SegVol v1): list, fetch, verify, path.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

NamesArgument = Annotated[list[str], typer.Argument(metavar="NAME...", help="Registry names (`voxelprompt weights list`).")]



@app.callback(invoke_without_command=True)
def _group(ctx: typer.Context) -> None:
    """Official checkpoints (VISTA3D bundle and research, SegVol v1): list, fetch, verify, path."""
    if ctx.invoked_subcommand is None:
        typer.echo("usage: voxelprompt weights list|fetch|verify|path [ARGS]... ('voxelprompt weights --help' explains each)", err=True)
        raise typer.Exit(2)


@app.command("list")
def list_weights() -> None:
    """Show every known checkpoint: file, size, recorded hash and its trust, cache state, sources."""
    from voxelprompt.weights import WEIGHTS, home, offline_from_env, weight_path

    offline = " (offline: VOXELPROMPT_OFFLINE is set)" if offline_from_env() else ""
    typer.echo(f"cache: {home() / 'weights'} (set VOXELPROMPT_HOME to move it){offline}")
    for weight in WEIGHTS.values():
        path = weight_path(weight)
        state = "downloaded" if path.is_file() else "not downloaded"
        typer.echo(f"{weight.name}  [{weight.family}]  {weight.file_name}  {weight.size_note}  {state}")
        typer.echo(f"    {weight.description}")
        typer.echo(f"    hash: {weight.hash_summary}; from {weight.hash_source}")
        typer.echo(f"    urls: {', '.join(weight.urls)}")
        typer.echo(f"    licence: {weight.licence}; page: {weight.source_page}")


@app.command("path")
def path(name: Annotated[str, typer.Argument(metavar="NAME", help="Registry name (`voxelprompt weights list`).")]) -> None:
    """Print where NAME's file lives (or will live) in the cache; pass it to --checkpoint."""
    from voxelprompt.weights import get_weight, weight_path

    target = weight_path(get_weight(name))
    typer.echo(str(target))
    if not target.is_file():
        typer.echo(f"note: not downloaded yet ('voxelprompt weights fetch {name}')", err=True)


@app.command("fetch")
def fetch(
    names: NamesArgument,
    offline: OfflineOption = False,
    mirror: Annotated[
        list[str] | None,
        typer.Option(
            "--mirror",
            metavar="BASE_URL",
            help="Try BASE_URL/NAME/FILE instead of the published URLs (repeatable, in order; also "
            "VOXELPROMPT_WEIGHTS_MIRRORS); omitted: the published URLs.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Connection and read timeout.")] = 30.0,
    retries: Annotated[int, typer.Option("--retries", metavar="N", help="Retries per URL after the first try (backoff 1, 2, 4... s).")] = 3,
    quiet: QuietOption = False,
) -> None:
    """Download NAME... into the cache (resuming a partial download) and check each file's recorded digest."""
    from voxelprompt.weights import FetchSettings, get_weight, mirror_urls, mirrors_from_env, offline_from_env
    from voxelprompt.weights import fetch as fetch_weight

    weights = [get_weight(name) for name in names]  # every name checked before any download
    settings = FetchSettings(timeout=timeout, attempts=retries + 1)
    offline = offline or offline_from_env()
    bases = list(mirror or []) or mirrors_from_env()
    for weight in weights:
        urls = mirror_urls(weight, bases) if bases else None
        with download_bar(weight.name, quiet or offline) as progress:
            result = fetch_weight(weight, urls=urls, offline=offline, settings=settings, progress=progress)
        if result.downloaded:
            typer.echo(f"{weight.name}: downloaded {result.bytes_received:,} bytes from {result.url}; {result.detail}")
        else:
            typer.echo(f"{weight.name}: already in the cache; {result.detail}")
        typer.echo(f"{weight.name}: {result.path} (use -c {weight.name} or -c {result.path})")


@app.command("verify")
def verify(
    names: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME]...", help="Registry names; omitted: every known checkpoint (missing ones are listed, not failed)."),
    ] = None,
) -> None:
    """Hash cached checkpoints and compare them with the registry: one line per weight; exit 2 on a mismatch."""
    from voxelprompt.weights import WEIGHTS, Verdict, get_weight
    from voxelprompt.weights import verify as verify_weight

    weights = [get_weight(name) for name in names] if names else list(WEIGHTS.values())
    failed = []
    for weight in weights:
        result = verify_weight(weight)
        typer.echo(f"{weight.name}: {result.verdict.value}: {result.detail}")
        if result.verdict is Verdict.mismatch or (names and result.verdict is Verdict.missing):
            failed.append(f"{weight.name} ({result.verdict.value})")
    if failed:
        raise WeightsError(f"verification failed for {', '.join(failed)}")


class download_bar:  # noqa: N801 - used as a context manager like rich's
    """A Rich download bar on stderr for one file (a terminal, not quiet), else nothing; yields the progress callback."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.bar, self.task = label, quiet, None, None

    def __enter__(self):
        if self.quiet:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

        console = Console(stderr=True)
        if not console.is_terminal:  # logs and pipes get the result lines only
            return None
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=None)
        return self._update

    def _update(self, done: int, total: int | None) -> None:
        self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.stop()

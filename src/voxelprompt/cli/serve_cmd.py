"""``voxelprompt serve``: the interactive segmentation server, a thin adapter over
:mod:`voxelprompt.server` (settings -> models loaded once -> uvicorn)."""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Annotated

import typer

from voxelprompt.cli.options import DeviceOption, DownloadOption, OfflineOption, checkpoint_option, tune_process
from voxelprompt.errors import VoxelPromptError

__all__ = ["serve"]


class ItkSnapAccess(str, enum.Enum):
    """``--itksnap``: who may use ITK-SNAP's protocol."""

    loopback = "loopback"
    any = "any"
    off = "off"


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; the default serves this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    checkpoint: Annotated[
        list[Path] | None, checkpoint_option("Model weights of any family (repeatable); omitted: the official VISTA3D weights when cached (see --download), else the shipped demo VISTA3D.")
    ] = None,
    demo_model: Annotated[bool, typer.Option("--demo-model", help="Serve the shipped demo VISTA3D beside the --checkpoint models.")] = False,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="VOXELPROMPT_TOKEN", show_envvar=True, help="Bearer token every request needs (prefer the environment variable: a command line is visible to other users)."),
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", metavar="URL", help="Allow browser pages of this origin (repeatable); omitted: CORS off.")
    ] = None,
    datastore: Annotated[
        Path | None, typer.Option("--datastore", metavar="DIR", help="Folder that keeps uploaded images across restarts; omitted: a temporary folder.")
    ] = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest upload (413 beyond).")] = 1024.0,
    max_sessions: Annotated[int, typer.Option("--max-sessions", help="Interactive sessions kept (model x image).")] = 4,
    session_idle: Annotated[float, typer.Option("--session-idle", metavar="SECONDS", help="Close a session after this idle time.")] = 900.0,
    session_memory_mb: Annotated[float, typer.Option("--session-memory-mb", help="Cache budget of each session.")] = 2048.0,
    queue: Annotated[int, typer.Option("--queue", help="Requests that may wait for the compute lock (503 + Retry-After beyond).")] = 8,
    dicomweb: Annotated[
        str | None,
        typer.Option("--dicomweb", metavar="URL", help="A PACS's DICOMweb root: image ids that are SeriesInstanceUIDs are fetched from it (OHIF); credentials from VOXELPROMPT_DICOMWEB_USER/_PASSWORD or --dicomweb-credentials."),
    ] = None,
    dicomweb_credentials: Annotated[
        Path | None, typer.Option("--dicomweb-credentials", metavar="FILE", help="File with user:password (or JSON user/password/token) for the PACS.")
    ] = None,
    max_leases: Annotated[int, typer.Option("--max-leases", help="nnInteractive clients at once (503 + Retry-After beyond).")] = 2,
    lease_idle: Annotated[float, typer.Option("--lease-idle", metavar="SECONDS", help="Reap an nnInteractive lease after this time without user actions.")] = 600.0,
    memory_mb: Annotated[
        float | None, typer.Option("--memory-mb", help="Memory budget of cached images, sessions and nnInteractive leases together (default: 80% of this machine's memory).")
    ] = None,
    max_image_mb: Annotated[float, typer.Option("--max-image-mb", help="Largest decoded image (float32) an upload or nnInteractive client may send (413 beyond).")] = 1024.0,
    body_timeout: Annotated[float, typer.Option("--body-timeout", metavar="SECONDS", help="Longest time a request body may take to arrive (408 beyond).")] = 300.0,
    max_connections: Annotated[int, typer.Option("--max-connections", help="Open connections at once (503 beyond).")] = 256,
    itksnap: Annotated[
        ItkSnapAccess, typer.Option("--itksnap", help="Who may use ITK-SNAP's deep-learning protocol, which has no authentication (no token): loopback clients (this machine, ITK-SNAP's SSH tunnel), any client, or off.")
    ] = ItkSnapAccess.loopback,
    device: DeviceOption = "auto",
    download: DownloadOption = False,
    offline: OfflineOption = False,
) -> None:
    """Serve models to 3D Slicer, OHIF (MONAI Label API), nnInteractive clients (/nninteractive), ITK-SNAP's deep-learning extension and the browser viewer at http://HOST:PORT/.

    Needs the "server" extra: pip install "voxelprompt[server]" (and "voxelprompt[pacs]" for --dicomweb).
    """
    from voxelprompt.server.launch import (
        ServeSettings,
        build_service,
        check_bind,
        describe,
        is_loopback,
        make_app,
        serve_forever,
        temporary_datastore,
    )

    settings = ServeSettings(
        host=host, port=port, checkpoints=tuple(checkpoint or ()), demo_model=demo_model, device=device,
        token=token, cors_origins=tuple(cors_origin or ()), datastore=datastore, max_upload_mb=max_upload_mb,
        max_sessions=max_sessions, session_idle_s=session_idle, session_memory_mb=session_memory_mb, max_waiting=queue,
        dicomweb=dicomweb, dicomweb_credentials=dicomweb_credentials,
        max_leases=max_leases, lease_idle_s=lease_idle, memory_mb=memory_mb, max_image_mb=max_image_mb,
        body_timeout_s=body_timeout, max_connections=max_connections, itksnap=itksnap.value,
    )  # fmt: skip
    for path in settings.checkpoints:
        if not path.is_file():
            raise VoxelPromptError(f"{path}: checkpoint file not found")
    check_bind(host, port)
    if not settings.checkpoints and not settings.demo_model:  # the default model (the demo one is served by name)
        from voxelprompt.cli.default_model import checkpoint_or_default
        from voxelprompt.families.vista3d.inference.default_model import is_demo_checkpoint

        default = checkpoint_or_default(None, None, download=download, offline=offline)
        demo = is_demo_checkpoint(default)
        settings = dataclasses.replace(settings, checkpoints=() if demo else (default,), demo_model=demo)
    if not is_loopback(host) and token is None:
        typer.echo(f"WARNING: listening on {host} without --token: anyone who reaches this port can upload and segment", err=True)
    if not is_loopback(host) and itksnap is ItkSnapAccess.any:
        typer.echo(f"WARNING: --itksnap any: ITK-SNAP's routes need no token; anyone who reaches {host}:{port} can use them", err=True)
    tune_process(device)
    with temporary_datastore(datastore) as folder:
        service = build_service(settings, folder)
        url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        for line in describe(service, url, folder, settings):
            typer.echo(line, err=True)
        try:
            serve_forever(make_app(service, settings), host, port, settings.max_connections)
        finally:
            service.close()  # in-flight model work ends, background threads stop: exit 0, not SIGABRT

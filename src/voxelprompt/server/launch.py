"""Build a server from settings and run it: in the foreground (``voxelprompt serve``) or in a
background thread (:class:`ServerThread`, for notebooks, tests and benchmarks)."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxelprompt.errors import VoxelPromptError

__all__ = ["ServeSettings", "build_service", "check_bind", "free_port", "serve_forever", "ServerThread", "temporary_datastore"]

logger = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``voxelprompt serve`` takes (see its ``--help`` for each).

    Args:
        checkpoints: model weights of any family; ``demo_model``: also serve the shipped one
            (the default when no checkpoint is given).
        datastore: the image store's folder; None: a temporary folder deleted at exit.
        max_sessions, session_idle_s, session_memory_mb: interactive session limits.
        max_waiting, wait_s: the compute queue (beyond it: 503 with Retry-After).
        dicomweb: a PACS's DICOMweb root; image ids that are SeriesInstanceUIDs are fetched from
            it (credentials: ``dicomweb_credentials`` or the environment, see
            :mod:`voxelprompt.dicomweb.connection`); ``dicomweb_cache_mb`` bounds the series kept.
        max_leases, lease_idle_s, lease_liveness_s: nnInteractive clients at once, and the
            timeouts that reap a lease without user actions / without any request.
        memory_mb: the one memory budget of cached volumes, sessions and leases (None: 80 % of
            the machine's memory); max_image_mb: largest decoded image (float32) an upload or an
            nnInteractive client may send.
        body_timeout_s: longest time a request body may take to arrive (408 beyond).
        max_connections: open connections at once (uvicorn's ``limit_concurrency``; 503 beyond).
        itksnap: who may use ITK-SNAP's protocol, which has no authentication: ``loopback``
            clients only (this machine and SSH tunnels), ``any`` client, or ``off``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    checkpoints: tuple[Path, ...] = ()
    demo_model: bool = False
    device: str = "auto"
    options: tuple[tuple[str, Any], ...] = ()
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    datastore: Path | None = None
    max_upload_mb: float = 1024.0
    max_images: int = 100
    max_sessions: int = 4
    session_idle_s: float = 900.0
    session_memory_mb: float = 2048.0
    max_waiting: int = 8
    wait_s: float = 300.0
    dicomweb: str | None = None
    dicomweb_credentials: Path | None = None
    dicomweb_cache_mb: float = 4096.0
    max_leases: int = 2
    lease_idle_s: float = 600.0
    lease_liveness_s: float = 60.0
    memory_mb: float | None = None
    max_image_mb: float = 1024.0
    body_timeout_s: float = 300.0
    max_connections: int = 256
    itksnap: str = "loopback"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise VoxelPromptError(f"--port must be 1..65535, got {self.port}")
        flags = {"max_upload_mb": "--max-upload-mb", "session_idle_s": "--session-idle", "session_memory_mb": "--session-memory-mb", "wait_s": "wait_s",
                 "lease_idle_s": "--lease-idle", "lease_liveness_s": "lease_liveness_s", "max_image_mb": "--max-image-mb",
                 "body_timeout_s": "--body-timeout", "max_connections": "--max-connections"}
        for name, flag in flags.items():
            if not getattr(self, name) > 0:
                raise VoxelPromptError(f"{flag} must be a positive number, got {getattr(self, name)}")
        if self.max_sessions < 1 or self.max_images < 1 or self.max_waiting < 0:
            raise VoxelPromptError("--max-sessions and --max-images must be >= 1, --queue >= 0")
        if self.memory_mb is not None and not self.memory_mb > 0:
            raise VoxelPromptError(f"--memory-mb must be a positive number, got {self.memory_mb}")
        if self.max_leases < 1:
            raise VoxelPromptError(f"--max-leases must be >= 1, got {self.max_leases}")
        if self.itksnap not in ("loopback", "any", "off"):
            raise VoxelPromptError(f"--itksnap must be loopback, any or off, got {self.itksnap!r}")
        if self.token is not None and len(self.token) < 8:
            raise VoxelPromptError("the token must have at least 8 characters")


def check_bind(host: str, port: int) -> None:
    """Fail fast, before models load, when ``host:port`` cannot be bound.

    Raises:
        VoxelPromptError: the port is in use or the address is not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise VoxelPromptError(f"cannot listen on {host}:{port} ({err.strerror})") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of ``host`` that nothing listens on now (the system's pick for port 0)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def build_service(settings: ServeSettings, datastore: Path, tune_allocator: bool = False) -> Any:
    """Load the models once and assemble the service (models, store, sessions, compute gate).

    Raises:
        CheckpointError: a missing or foreign checkpoint.
        MissingExtraError: ``dicomweb`` without the "pacs" extra.
        VoxelPromptError: a bad device, option or datastore folder.
    """
    from voxelprompt.api import load_named_models
    from voxelprompt.server.budget import MemoryBudget
    from voxelprompt.server.compute import ComputeGate
    from voxelprompt.server.datastore import ImageStore
    from voxelprompt.server.service import SegmentationService
    from voxelprompt.server.sessions import SessionPool

    budget = MemoryBudget(int(memory_budget_mb(settings) * 2**20), int(settings.max_image_mb * 2**20))
    store = ImageStore(datastore, max_images=settings.max_images, budget=budget)  # a bad folder fails before models load
    pacs = None
    if settings.dicomweb is not None:
        from voxelprompt.dicomweb import parse_source
        from voxelprompt.extras import require

        require("pacs", "serve --dicomweb")
        from voxelprompt.server.pacs import PacsBridge

        source = parse_source(settings.dicomweb, settings.dicomweb_credentials)
        pacs = PacsBridge(source, Path(datastore) / "dicomweb", settings.dicomweb_cache_mb)
    models = load_named_models(
        settings.checkpoints, default_model=settings.demo_model or not settings.checkpoints,
        device=settings.device, options=dict(settings.options), tune_allocator=tune_allocator,
    )  # fmt: skip
    gate = ComputeGate(settings.max_waiting, settings.wait_s)
    sessions = SessionPool(settings.max_sessions, settings.session_idle_s, settings.session_memory_mb, turns=(gate,), budget=budget)
    service = SegmentationService(models, store, sessions, gate, pacs)
    from voxelprompt.server.training import TrainingService

    service.training = TrainingService(service, Path(datastore) / "models", budget)
    service.training.reopen()  # serve what earlier runs taught, as they left it
    return service


def memory_budget_mb(settings: ServeSettings) -> float:
    """``--memory-mb``, or 80 % of the machine's physical memory when it is not given."""
    if settings.memory_mb is not None:
        return settings.memory_mb
    import psutil

    return 0.8 * psutil.virtual_memory().total / 2**20


def make_app(service: Any, settings: ServeSettings) -> Any:
    from voxelprompt.server.app import ServerOptions, create_app
    from voxelprompt.server.itksnap import ItkSnapSettings
    from voxelprompt.server.nninteractive import LeaseLimits

    leases = LeaseLimits(settings.max_leases, settings.lease_idle_s, settings.lease_liveness_s)
    # ITK-SNAP sends no heartbeat: its sessions have the idle time only.
    itksnap = ItkSnapSettings(settings.itksnap, LeaseLimits(settings.max_leases, settings.lease_idle_s, settings.lease_idle_s))
    options = ServerOptions(
        settings.token, settings.cors_origins, settings.max_upload_mb, extra={"nninteractive": leases, "itksnap": itksnap},
        body_timeout_s=settings.body_timeout_s,
    )  # fmt: skip
    return create_app(service, options)


@contextlib.contextmanager
def temporary_datastore(folder: Path | None) -> Iterator[Path]:
    """``folder``, or a temporary one removed afterwards."""
    if folder is not None:
        yield Path(folder)
        return
    tmp = Path(tempfile.mkdtemp(prefix="voxelprompt-datastore-"))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def serve_forever(app: Any, host: str, port: int, max_connections: int | None = None) -> None:
    """Run ``app`` with uvicorn until interrupted (our middleware writes the access log)."""
    import signal

    import uvicorn

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(0)

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; handled here it
    # ends the process through Python, so the temporary datastore is removed as on Ctrl-C.
    signal.signal(signal.SIGTERM, terminate)
    # limit_concurrency bounds open connections (half-open ones included): beyond it, 503.
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, timeout_graceful_shutdown=5,
                limit_concurrency=max_connections, timeout_keep_alive=5)  # fmt: skip


class ServerThread:
    """A uvicorn server on a background thread, stopped by :meth:`stop` or the ``with`` block.

    Args:
        app: the ASGI application; ``host``/``port``: where to listen (port 0: a free one).
        limit_concurrency: uvicorn's cap on open connections (beyond it: 503).

    Attributes:
        url: ``http://host:port`` once started.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, limit_concurrency: int | None = None) -> None:
        import uvicorn

        port = port or free_port(host)
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, limit_concurrency=limit_concurrency,
            timeout_graceful_shutdown=2,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self.server.run, name="voxelprompt-server", daemon=True)

    def start(self, timeout_s: float = 30.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout_s)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def describe(service: Any, url: str, datastore: Path, settings: ServeSettings) -> Sequence[str]:
    """The lines ``voxelprompt serve`` prints at start."""
    lines = [f"voxelprompt serve: {url}/ (browser viewer), MONAI Label API at {url} (3D Slicer, OHIF)"]
    lines.append(f"  nnInteractive protocol at {url}/nninteractive/<model> (napari-nninteractive, SlicerNNInteractive)")
    if settings.itksnap != "off":
        who = "loopback clients only: this machine and ITK-SNAP's SSH tunnel" if settings.itksnap == "loopback" else "ANY client, without authentication"
        lines.append(f"  ITK-SNAP deep-learning extension at {url} ({who})")
    from voxelprompt.server.monailabel.tasks import TaskTable

    for name, task in TaskTable(service).all().items():
        lines.append(f"  model {name} ({task.kind}, {len(task.labels)} labels)")
    lines.append(f"  datastore: {datastore}{'' if settings.datastore else ' (temporary, deleted at exit)'}")
    lines.append("  token: required (Authorization: Bearer ...)" if settings.token else "  token: none")
    return lines

"""The web application of ``voxelprompt serve``: MONAI Label routes, the nnInteractive protocol
(under ``/nninteractive``), ITK-SNAP's deep-learning protocol (at the root, loopback clients
only unless asked), the browser viewer and ``/healthz`` over one :class:`~voxelprompt.server.service.SegmentationService`.

Every error a client can cause is a 4xx reply with a one-line ``detail`` and the server keeps
serving: unknown model, image or session 404; bad prompts, params or uploads 400; a body over the
upload limit 413; a full compute queue 503 with ``Retry-After``; a PACS that refuses or cannot be
reached 502. CORS is off unless origins are
given.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse

from voxelprompt._version import __version__
from voxelprompt.dicomweb.connection import PacsError
from voxelprompt.errors import TooLargeError, VoxelPromptError
from voxelprompt.server.compute import Busy
from voxelprompt.server.datastore import NotFound
from voxelprompt.server.itksnap import ItkSnapSettings, is_itksnap_path, itksnap_router
from voxelprompt.server.middleware import ServerMiddleware
from voxelprompt.server.monailabel.routes import monailabel_router
from voxelprompt.server.nninteractive import nninteractive_router
from voxelprompt.server.service import SegmentationService

__all__ = ["ServerOptions", "create_app"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    """How the web layer behaves.

    Args:
        token: bearer token every non-public route needs (None: open, for loopback use).
        cors_origins: origins allowed by CORS (empty: CORS off).
        max_upload_mb: largest request body, in MiB.
        viewer: serve the browser viewer at ``/``.
        extra: adapter settings; ``"nninteractive"``: its
            :class:`~voxelprompt.server.nninteractive.LeaseLimits`; ``"itksnap"``: its
            :class:`~voxelprompt.server.itksnap.ItkSnapSettings` (access ``"off"``: not mounted).
        body_timeout_s: longest time a request body may take to arrive (408 beyond).
    """

    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_upload_mb: float = 1024.0
    viewer: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    body_timeout_s: float = 300.0


def create_app(service: SegmentationService, options: ServerOptions | None = None) -> Any:
    """The ASGI application (FastAPI wrapped in :class:`~voxelprompt.server.middleware.ServerMiddleware`)."""
    options = options or ServerOptions()
    app = FastAPI(title="voxelprompt", version=__version__, docs_url="/docs", redoc_url=None)
    app.state.service = service
    _error_replies(app)
    monailabel = monailabel_router(service, options.token)
    app.include_router(monailabel)
    nninteractive = nninteractive_router(service, options.extra.get("nninteractive"))
    app.state.leases = nninteractive.leases
    app.include_router(nninteractive)
    itksnap = options.extra.get("itksnap") or ItkSnapSettings()
    if itksnap.access != "off":  # no token: the routes guard themselves (loopback clients only, unless asked)
        itksnap_routes = itksnap_router(service, itksnap)
        app.state.itksnap_leases = itksnap_routes.leases
        app.include_router(itksnap_routes)

    @app.get("/healthz", summary="Liveness and load")
    def healthz() -> dict[str, Any]:
        import psutil

        gate = service.gate.stats
        return {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - service.started, 1),
            "models": [m.name for m in service.models],
            "entries": list(monailabel.tasks.all()),  # the MONAI Label model entries of /info/
            "sessions": len(service.sessions),
            "images": len(service.store.images()),
            "compute": {"running": gate.running, "waiting": gate.waiting, "served": gate.served, "refused_busy": gate.refused},
            "rss_mb": round(psutil.Process(os.getpid()).memory_info().rss / 2**20, 1),
            **_budget_stats(service),
        }

    @app.get("/catalog", summary="Class ids, names and 3D Slicer colours (for legends)")
    def catalog() -> list[dict[str, Any]]:
        from voxelprompt.catalog import class_color, vista3d_catalog

        return [{"id": i, "name": n, "color": list(class_color(i))} for i, n in vista3d_catalog().names.items()]

    if options.viewer:
        from fastapi.staticfiles import StaticFiles

        folder = resources.files("voxelprompt.server").joinpath("viewer")
        app.mount("/viewer", StaticFiles(directory=str(folder), html=True), name="viewer")

        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/viewer/")

    if options.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware, allow_origins=list(options.cors_origins), allow_methods=["*"], allow_headers=["*"]
        )
    return ServerMiddleware(
        app, token=options.token, max_body_bytes=int(options.max_upload_mb * 2**20), body_timeout_s=options.body_timeout_s,
        open_path=is_itksnap_path if itksnap.access != "off" else None,
    )


def _budget_stats(service: SegmentationService) -> dict[str, Any]:
    """The memory budget's use for ``/healthz`` (``--memory-mb``), when the service has one."""
    budget = service.budget
    if budget is None:
        return {}
    return {"memory_budget": {"limit_mb": round(budget.limit / 2**20, 1), "used_mb": round(budget.used / 2**20, 1)}}


def _error_replies(app: FastAPI) -> None:
    def one_line(text: str) -> str:
        return " ".join(str(text).split())[:500]

    @app.exception_handler(NotFound)
    async def not_found(request: Request, err: NotFound) -> JSONResponse:
        return JSONResponse({"detail": one_line(err)}, status_code=404)

    @app.exception_handler(Busy)
    async def busy(request: Request, err: Busy) -> JSONResponse:
        return JSONResponse({"detail": one_line(err)}, status_code=503, headers={"Retry-After": str(err.retry_after_s)})

    @app.exception_handler(PacsError)
    async def pacs_failed(request: Request, err: PacsError) -> JSONResponse:
        return JSONResponse({"detail": one_line(err)}, status_code=502)  # the upstream PACS failed

    @app.exception_handler(TooLargeError)
    async def too_large(request: Request, err: TooLargeError) -> JSONResponse:
        return JSONResponse({"detail": one_line(err)}, status_code=413)

    @app.exception_handler(VoxelPromptError)
    async def bad_input(request: Request, err: VoxelPromptError) -> JSONResponse:
        return JSONResponse({"detail": one_line(err)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"detail": one_line(f"{where}: {first.get('msg', 'invalid request')}")}, status_code=400)

    @app.exception_handler(Exception)
    async def internal(request: Request, err: Exception) -> JSONResponse:
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": one_line(f"internal error: {type(err).__name__}: {err}")}, status_code=500)

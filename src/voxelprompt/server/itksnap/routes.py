"""ITK-SNAP's deep-learning protocol (the ``itksnap-dls`` server's API) over one
:class:`~voxelprompt.server.service.SegmentationService`.

Both route generations: ITK-SNAP 4.4.0's (``/status``, ``/start_session``, ``/upload_raw/{id}``,
``/process_point_interaction/{id}?x=&y=&z=``, ``/process_scribble_interaction/{id}``,
``/process_lasso_interaction/{id}``, ``/reset_interactions/{id}``, ``/end_session/{id}``) and the
``/v2`` routes of ITK-SNAP master (``/v2/models``, ``/v2/start_session/{model}``,
``/v2/process_point_interaction/{id}?point=&point=&point=``, ``/v2/reset_interactions/{id}``,
``/v2/end_session/{id}``, ``/v2/upload_raw/{id}``). Bodies: :mod:`.wire`; entries: :mod:`.entries`.

An ITK-SNAP session is a lease (:mod:`voxelprompt.server.nninteractive.leases`: at most
``max_leases``, reaped after ``idle_s`` without a request, its image charged to the memory budget);
its clicks and strokes become :class:`~voxelprompt.types.Prompts` on the lease's image, answered by
:meth:`~voxelprompt.server.service.SegmentationService.segment_interactive` (the session pool,
pre-encoding, compute gate and checks every protocol shares), like an nnInteractive client's. Interactions accumulate on one object until ``reset_interactions``.

**Errors** are a JSON ``{"error": "<one line>"}`` with a 4xx/5xx status (400 bad input, 403 not
served to this client, 404 unknown session or model, 413 too large, 503 busy with
``Retry-After``): ITK-SNAP shows a non-200 answer's body as the error message and changes nothing,
while an answer 200 without a ``result`` makes it paint from an empty buffer
(``UpdateSegmentation``). **No authentication**: the protocol has none, so these routes answer
loopback clients only (this machine, and ITK-SNAP's own SSH tunnel) unless the server was started
with ``--itksnap any``; they need no ``--token``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile

from voxelprompt._version import __version__
from voxelprompt.errors import PromptError, TooLargeError, VoxelPromptError
from voxelprompt.imageio.policy import UNTRUSTED
from voxelprompt.server.compute import Busy
from voxelprompt.server.datastore import NotFound
from voxelprompt.server.itksnap.entries import ModelEntry, model_entries
from voxelprompt.server.itksnap.wire import ImageHeader, decode_array, decode_volume, encode_mask, parse_metadata
from voxelprompt.server.nninteractive import interactions as ia
from voxelprompt.server.nninteractive.leases import Lease, LeaseGone, LeaseManager
from voxelprompt.server.nninteractive.routes import LeaseLimits
from voxelprompt.server.service import SegmentationService

__all__ = ["ACCESS", "ItkSnapSettings", "PROTOCOL_VERSION", "is_itksnap_path", "itksnap_router"]

logger = logging.getLogger(__name__)

#: The ``itksnap-dls`` API version these routes implement (``/status``; ITK-SNAP master needs >= 0.1.2).
PROTOCOL_VERSION = "0.1.6"
#: Who may use these routes: loopback clients only (default), anyone, or nobody (not mounted).
ACCESS = ("loopback", "any", "off")
_EXACT = frozenset(["/status", "/start_session"])
_PREFIXES = (
    "/v2/", "/upload_raw/", "/process_point_interaction/", "/process_scribble_interaction/",
    "/process_lasso_interaction/", "/reset_interactions/", "/end_session/",
)  # fmt: skip


@dataclass(frozen=True)
class ItkSnapSettings:
    """``voxelprompt serve``'s ITK-SNAP settings.

    Args:
        access: one of :data:`ACCESS` (``--itksnap``).
        limits: sessions at once and their idle time (``--max-leases``, ``--lease-idle``); ITK-SNAP
            sends no heartbeat, so the idle time is the only timeout.
    """

    access: str = "loopback"
    limits: LeaseLimits = field(default_factory=LeaseLimits)

    def __post_init__(self) -> None:
        if self.access not in ACCESS:
            raise ValueError(f"ITK-SNAP access must be one of {', '.join(ACCESS)}, got {self.access!r}")


def is_itksnap_path(path: str) -> bool:
    """Whether ``path`` is one of this protocol's routes (open without the bearer token)."""
    return path in _EXACT or path.startswith(_PREFIXES)


def is_loopback_client(host: str | None) -> bool:
    """Whether a peer address is this machine's loopback (IPv4-mapped IPv6 included)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


class AccessRefused(Exception):
    """The client may not use these routes (HTTP 403)."""


def error_reply(err: Exception) -> JSONResponse:
    """``{"error": ...}`` with the status that makes ITK-SNAP report it (see the module docstring)."""
    text = " ".join(str(err).split())[:500]
    if isinstance(err, AccessRefused):
        status = 403
    elif isinstance(err, NotFound | LeaseGone):
        status = 404
    elif isinstance(err, TooLargeError):
        status = 413
    elif isinstance(err, Busy):
        return JSONResponse({"error": text}, status_code=503, headers={"Retry-After": str(err.retry_after_s)})
    elif isinstance(err, VoxelPromptError):
        status = 400
    elif isinstance(err, RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        text = f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', 'invalid request')}"
        status = 400
    else:
        logger.exception("internal error in the ITK-SNAP protocol")
        text, status = f"internal error: {type(err).__name__}: {text}", 500
    return JSONResponse({"error": text}, status_code=status)


class _ItkSnapRoute(APIRoute):
    """Every error of these routes, validation included, as :func:`error_reply`."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Any:
            try:
                return await handler(request)
            except Exception as err:  # noqa: BLE001 - each kind is mapped, the rest logged as 500
                return error_reply(err)

        return answer


def itksnap_router(service: SegmentationService, settings: ItkSnapSettings | None = None) -> APIRouter:
    """The protocol's routes (see the module docstring); ``router.leases`` holds its sessions."""
    settings = settings or ItkSnapSettings()

    def guard(request: Request) -> None:
        client = request.client.host if request.client else None
        if settings.access != "any" and not is_loopback_client(client):
            raise AccessRefused(
                f"ITK-SNAP's protocol has no authentication: this server answers it on loopback only (client {client}); "
                "connect through ITK-SNAP's SSH tunnel, or start the server with --itksnap any"
            )

    routes = _Routes(service, settings.limits)
    router = APIRouter(route_class=_ItkSnapRoute, dependencies=[Depends(guard)])
    router.leases = routes.leases  # type: ignore[attr-defined]
    r = router
    r.get("/status")(routes.status)
    r.get("/v2/models")(routes.models)
    r.get("/start_session")(routes.start_legacy)
    r.get("/v2/start_session/{model_id}")(routes.start)
    for prefix in ("", "/v2"):
        r.post(prefix + "/upload_raw/{session_id}")(routes.upload)
        r.get(prefix + "/reset_interactions/{session_id}")(routes.reset)
        r.get(prefix + "/end_session/{session_id}")(routes.end)
    r.get("/process_point_interaction/{session_id}")(routes.point_legacy)
    r.get("/v2/process_point_interaction/{session_id}")(routes.point)
    r.post("/process_scribble_interaction/{session_id}")(routes.scribble)
    r.post("/process_lasso_interaction/{session_id}")(routes.lasso)
    return router


class _Routes:
    """The handlers (a class so they share the entries, the leases and the helpers)."""

    def __init__(self, service: SegmentationService, limits: LeaseLimits) -> None:
        self.service = service
        self.entries: dict[str, ModelEntry] = model_entries(service.models, service.classes)
        budget = service.budget
        self.policy = UNTRUSTED.with_budget(budget.max_image_bytes if budget is not None else None)
        self.leases = LeaseManager(
            limits.max_leases, limits.idle_s, limits.idle_s, on_reap=self._closed, budget=budget, protocol="ITK-SNAP"
        )  # fmt: skip

    def _closed(self, lease: Lease) -> None:
        if lease.image_key:
            self.service.close_interactive(lease.image_key)

    # ---- sessions -------------------------------------------------------------------------------

    def status(self) -> dict[str, str]:
        return {"status": "ok", "version": PROTOCOL_VERSION, "server": f"voxelprompt {__version__}"}

    def models(self) -> dict[str, list]:
        return {"models": [e.listing() for e in self.entries.values()]}

    def start(self, model_id: str) -> dict[str, str]:
        entry = self.entries.get(model_id)
        if entry is None:
            raise NotFound(f"unknown model {model_id[:100]!r}; /v2/models lists this server's")
        lease = self.leases.claim(entry.id)
        lease.prompts = self._fresh(entry)
        return {"session_id": lease.token}

    def start_legacy(self) -> dict[str, str]:
        """ITK-SNAP 4.4.0 names no model: the first entry (the first served model, clicks alone)."""
        if not self.entries:
            raise NotFound("this server has no model that takes clicks")
        return self.start(next(iter(self.entries)))

    def end(self, session_id: str) -> dict[str, str]:
        return {"message": "Session ended" if self.leases.release(session_id) else "Invalid session"}

    def reset(self, session_id: str) -> dict[str, str]:
        lease = self.leases.get(session_id)
        with lease.lock:
            lease.prompts = self._fresh(self.entries[lease.model])
        return {"status": "success"}

    @staticmethod
    def _fresh(entry: ModelEntry) -> ia.ObjectPrompts:
        return ia.ObjectPrompts(classes=entry.classes, text=entry.text)

    # ---- image ----------------------------------------------------------------------------------

    async def upload(self, session_id: str, request: Request) -> dict[str, str]:
        lease = self.leases.get(session_id)
        header, data = await self._parts(request)
        await run_in_threadpool(self._set_image, lease, header, data)
        return {"message": "image received"}

    def _set_image(self, lease: Lease, header: ImageHeader, data: bytes) -> None:
        with lease.lock:  # one body of this session decoded at a time
            if lease.image_key:
                self.service.close_interactive(lease.image_key)
            lease.volume = None
            self.leases.charge(lease, "image", extra=header.nbytes)  # before the voxels are allocated
            try:
                volume = decode_volume(data, header, self.policy.max_decoded_bytes)
            except BaseException:
                self.leases.charge(lease, "image")  # a refused upload keeps no charge
                raise
            lease.volume = volume
            lease.image_key = f"itksnap:{lease.token}"
            lease.image_sha256 = hashlib.sha256(data).hexdigest()
            lease.prompts = self._fresh(self.entries[lease.model])
            self.leases.charge(lease, "image")
            model = self.entries[lease.model].model.name  # pre-process and encode once, now
            self.service.open_interactive(model, lease.image_key, lease.image_sha256, lambda: lease.volume)

    @staticmethod
    async def _parts(request: Request) -> tuple[ImageHeader, bytes]:
        """The ``file`` and ``metadata`` parts of an upload, the metadata checked first."""
        form = await request.form(max_files=1, max_fields=1)
        upload, metadata = form.get("file"), form.get("metadata")
        if not isinstance(upload, UploadFile) or metadata is None:
            raise PromptError("the upload needs the multipart parts 'file' (gzip float32 buffer) and 'metadata' (JSON)")
        header = parse_metadata(metadata if isinstance(metadata, str) else await metadata.read())
        return header, await upload.read()

    # ---- interactions ---------------------------------------------------------------------------

    def point_legacy(self, session_id: str, x: int, y: int, z: int, foreground: bool = False) -> dict[str, str]:
        return self._click(session_id, [x, y, z], foreground)

    def point(self, session_id: str, point: list[int] = Query(...), foreground: bool = False) -> dict[str, str]:
        if len(point) != 3:
            raise PromptError(f"a 3D model needs three point coordinates (i, j, k), got {len(point)}")
        return self._click(session_id, point, foreground)

    def _click(self, session_id: str, ijk: list[int], foreground: bool) -> dict[str, str]:
        lease = self.leases.get(session_id)
        entry = self._allowed(lease, "point", foreground)
        point = tuple(float(v) for v in ijk)
        return self._act(lease, entry, lambda p: p.with_points([point], foreground))

    async def scribble(self, session_id: str, request: Request, foreground: bool = False) -> dict[str, str]:
        return await self._stroke(session_id, request, foreground, "scribble")

    async def lasso(self, session_id: str, request: Request, foreground: bool = False) -> dict[str, str]:
        return await self._stroke(session_id, request, foreground, "lasso")

    async def _stroke(self, session_id: str, request: Request, foreground: bool, kind: str) -> dict[str, str]:
        lease = self.leases.get(session_id)
        entry = self._allowed(lease, kind, foreground)
        header, data = await self._parts(request)
        shape = self._volume(lease).shape
        if header.dimensions != shape:
            raise PromptError(f"the {kind} layer has dimensions {list(header.dimensions)}, the image {list(shape)}")
        return await run_in_threadpool(self._stroke_work, lease, entry, header, data, foreground, kind)

    def _stroke_work(self, lease: Lease, entry: ModelEntry, header: ImageHeader, data: bytes, foreground: bool, kind: str) -> dict[str, str]:
        with lease.lock:  # one body of this session decoded at a time
            mask = decode_array(data, header, self.policy.max_decoded_bytes, kind) > 0
            if kind == "scribble":
                points = ia.scribble_points(mask)
                return self._act(lease, entry, lambda p: p.with_points(points, foreground))
            box = ia.mask_box(mask)
            return self._act(lease, entry, lambda p: p.replace(box=box))

    def _allowed(self, lease: Lease, kind: str, foreground: bool) -> ModelEntry:
        """The session's entry, when it answers this interaction (else a one-line refusal)."""
        entry = self.entries[lease.model]
        if kind not in entry.interactions:
            raise PromptError(f"{entry.id} does not take a {kind} ({entry.model.family.name} models; see /v2/models)")
        caps, family = entry.model.family.capabilities, entry.model.family.name
        if not foreground and kind == "lasso":
            raise PromptError(f"a negative lasso is not supported by {family} models")
        ia.require(caps, "points" if foreground else "negative_points", f"a {'positive' if foreground else 'negative'} {kind}", family)
        return entry

    def _volume(self, lease: Lease):
        if lease.volume is None:
            raise PromptError("no image in this session: ITK-SNAP uploads it first (upload_raw)")
        return lease.volume

    def _act(self, lease: Lease, entry: ModelEntry, change) -> dict[str, str]:
        """Segment the object with ``change`` applied to its prompts; the prompts change only
        when the segmentation succeeds."""
        with lease.lock:
            volume = self._volume(lease)
            new = change(lease.prompts)
            prompts = new.to_prompts()
            result = self.service.segment_interactive(
                entry.model.name, lease.image_key, lease.image_sha256, lambda: volume, prompts
            )  # fmt: skip
            lease.prompts = new
            mask = np.asarray(result.labels.array) != 0
        return {"status": "success", "result": encode_mask(mask)}

"""The nnInteractive remote protocol's routes over one :class:`~voxelprompt.server.service.SegmentationService`.

``nnInteractive/inference/remote/`` of ``nninteractive-client`` 2.6 is the spec. Each served model
answers under ``/nninteractive/<model name>``; the first model also under ``/nninteractive``. The
client takes that URL as its server URL. The routes parse the wire format into
:class:`~voxelprompt.types.Prompts` on the lease's image and call the service
(:meth:`~voxelprompt.server.service.SegmentationService.segment_interactive`: checks, the compute
gate and the session pool shared with every other protocol); leases are :mod:`.leases`.

Replies of predictions (``add_*``, ``/predict``, ``/undo``) carry ``X-Meta`` ``{"ran_prediction",
"bbox"}`` and, when voxels changed, the target buffer inside ``bbox`` (half-open, per axis) as a
packed array; nothing else. Errors: a bad body, meta or prompt 400; an unsupported interaction
400 (and False in ``/capabilities``); a lease of another model 409; a missing, released or
expired lease 410; all leases taken 503 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Body, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from voxelprompt._version import __version__
from voxelprompt.api import NamedModel
from voxelprompt.errors import PromptError
from voxelprompt.families import check_capabilities
from voxelprompt.prompts import check_points_inside
from voxelprompt.server.fields import json_object
from voxelprompt.server.nninteractive import interactions as ia
from voxelprompt.server.nninteractive.geometry import DEFAULT_ORIENTATION, client_volume
from voxelprompt.server.nninteractive.leases import Lease, LeaseGone, LeaseManager, Step
from voxelprompt.server.nninteractive.wire import MAX_ELEMENTS, pack, unpack
from voxelprompt.server.service import SegmentationService
from voxelprompt.types import Prompts

__all__ = ["LeaseLimits", "PREFIX", "nninteractive_router"]

PREFIX = "/nninteractive"
#: dtypes a target buffer may have (a label map's: at most 4 bytes a voxel).
TARGET_DTYPES = frozenset(["bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"])
META, LEASE, OCTET = "X-Meta", "X-Lease-Token", "application/octet-stream"


@dataclass(frozen=True)
class LeaseLimits:
    """``voxelprompt serve``'s nnInteractive settings: leases at once, idle and liveness timeouts (s)."""

    max_leases: int = 2
    idle_s: float = 600.0
    liveness_s: float = 60.0


def nninteractive_router(service: SegmentationService, limits: LeaseLimits | None = None) -> APIRouter:
    """The routes of every served model (see the module docstring); ``router.leases`` is the lease manager."""
    limits = limits or LeaseLimits()

    def close_session(lease: Lease) -> None:
        if lease.image_key:
            service.close_interactive(lease.image_key)

    leases = LeaseManager(limits.max_leases, limits.idle_s, limits.liveness_s, on_reap=close_session, budget=service.budget)
    router = APIRouter()
    router.leases = leases  # type: ignore[attr-defined]
    mounts = [(f"{PREFIX}/{m.name}", m) for m in service.models] + [(PREFIX, service.models[0])]
    for prefix, model in mounts:
        router.include_router(_ModelRoutes(service, leases, model).router, prefix=prefix)
    return router


def capabilities(model: NamedModel) -> dict[str, Any]:
    """``/capabilities`` of one model: what its family answers, honestly (see :mod:`.interactions`)."""
    caps = model.family.capabilities
    weights = model.checkpoint.name if model.checkpoint else "voxelprompt demo model"
    return {
        "supported_interactions": {
            "points": caps.points, "bbox2d": caps.box, "bbox3d": caps.box, "scribble": caps.points, "lasso": caps.box,
        },
        "channel_mapping": {},
        "num_interaction_channels": 0,
        "supports_initial_label": caps.previous_mask,
        "supports_zero_shot_label_refinement": caps.previous_mask,
        "preferred_scribble_thickness": [2, 2, 2],
        "interaction_decay": None,
        "patch_size": None,
        "do_autozoom": False,
        "inference_session_version": f"voxelprompt {__version__}",
        "license": f"the license of the served {model.family.name} weights ({weights})",
        "supports_undo": True,
        "voxelprompt": {
            "model": model.name,
            "family": model.family.name,
            "prompt_path": "/voxelprompt_prompt",
            "classes": caps.classes,
            "text": caps.text,
            "everything": caps.everything,
            "scribble": f"up to {ia.SCRIBBLE_POINTS} clicks sampled along the scribble",
            "lasso": "its bounding box as the box prompt" if caps.box else "unsupported",
            "default_orientation": DEFAULT_ORIENTATION,
        },
    }  # fmt: skip


def _flag(payload: Mapping[str, Any], name: str, default: bool) -> bool:
    value = payload.get(name, default)
    if not isinstance(value, bool):
        raise PromptError(f"{name} must be true or false, got {value!r}"[:200])
    return value


def changed_bbox(before: np.ndarray, after: np.ndarray) -> list[list[int]] | None:
    """``[[lo, hi), ...]`` per axis around the voxels that differ, or None."""
    diff = before != after
    if not diff.any():
        return None
    bbox = []
    for axis in range(diff.ndim):
        hit = np.flatnonzero(diff.any(axis=tuple(a for a in range(diff.ndim) if a != axis)))
        bbox.append([int(hit[0]), int(hit[-1]) + 1])
    return bbox


def _slices(bbox: list[list[int]]) -> tuple[slice, ...]:
    return tuple(slice(lo, hi) for lo, hi in bbox)


class _ModelRoutes:
    """The protocol's routes for one model (a class so the handlers share its helpers)."""

    def __init__(self, service: SegmentationService, leases: LeaseManager, model: NamedModel) -> None:
        self.service, self.leases, self.model = service, leases, model
        self.router = APIRouter()
        r = self.router
        r.get("/healthz")(lambda: {"ok": True, "model": model.name})
        r.get("/capabilities")(lambda: capabilities(model))
        r.post("/claim")(self.claim)
        r.post("/release")(self.release)
        r.post("/heartbeat")(self.heartbeat)
        r.get("/lease_status")(self.lease_status)
        r.post("/set_image")(self.set_image)
        r.post("/set_target_buffer")(self.set_target_buffer)
        r.post("/set_do_autozoom")(self.set_do_autozoom)
        r.post("/reset_interactions")(self.reset_interactions)
        r.post("/undo")(self.undo)
        r.post("/predict")(self.predict)
        r.post("/add_point_interaction")(self.add_point)
        r.post("/add_bbox_interaction")(self.add_bbox)
        r.post("/add_scribble_interaction")(self.add_scribble)
        r.post("/add_lasso_interaction")(self.add_lasso)
        r.post("/add_initial_seg_interaction")(self.add_initial_seg)
        r.post("/voxelprompt_prompt")(self.voxelprompt_prompt)

    # ---- leases ----------------------------------------------------------------------------

    def lease(self, token: str | None, active: bool = True) -> Lease:
        try:
            lease = self.leases.get(token, active)
        except LeaseGone as err:
            raise HTTPException(410, str(err)) from None
        if lease.model != self.model.name:
            raise HTTPException(409, f"this lease belongs to model {lease.model!r}; use its URL {PREFIX}/{lease.model}")
        return lease

    def claim(self) -> dict[str, Any]:
        lease = self.leases.claim(self.model.name)
        return {
            "lease_token": lease.token, "idle_timeout_seconds": self.leases.idle_s,
            "liveness_timeout_seconds": self.leases.liveness_s, "max_sessions": self.leases.max_leases,
        }  # fmt: skip

    def release(self, x_lease_token: str | None = Header(None)) -> dict[str, bool]:
        return {"released": self.leases.release(x_lease_token)}

    def heartbeat(self, x_lease_token: str | None = Header(None)) -> dict[str, float]:
        return {"remaining_seconds": self.leases.remaining_s(self.lease(x_lease_token, active=False))}

    def lease_status(self, x_lease_token: str | None = Header(None)) -> dict[str, float]:
        try:
            lease = self.leases.peek(x_lease_token)
        except LeaseGone as err:
            raise HTTPException(410, str(err)) from None
        return {"remaining_seconds": self.leases.remaining_s(lease), "idle_timeout_seconds": self.leases.idle_s}

    # ---- image and buffer --------------------------------------------------------------------

    async def set_image(self, request: Request, x_lease_token: str | None = Header(None), x_meta: str | None = Header(None)) -> dict:
        lease = self.lease(x_lease_token)
        meta = json_object(x_meta, f"{META} header")
        body = await request.body()
        return await run_in_threadpool(self._set_image, lease, meta, body)

    def _set_image(self, lease: Lease, meta: dict[str, Any], body: bytes) -> dict[str, Any]:
        with lease.lock:  # one body of this lease decoded at a time
            image = unpack(body, max_elements=self._max_image_voxels())
            volume = client_volume(image, meta.get("image_properties") or {})
            if lease.image_key:
                self.service.close_interactive(lease.image_key)
            lease.volume, lease.target, lease.history = None, None, []
            self.leases.charge(lease, "image and target buffer", extra=image.nbytes + image.size)
            lease.volume = volume
            lease.image_key = f"nninteractive:{lease.token}"
            lease.image_sha256 = hashlib.sha256(np.ascontiguousarray(image).view(np.uint8)).hexdigest()
            lease.target = np.zeros(volume.shape, dtype=np.uint8)
            lease.prompts, lease.pending = ia.ObjectPrompts(), False
            # pre-process and encode once, now
            self.service.open_interactive(self.model.name, lease.image_key, lease.image_sha256, lambda: lease.volume)
        return {"original_image_shape": list(image.shape)}

    def _max_image_voxels(self) -> int:
        """Voxels of the largest image a client may send (``--max-image-mb`` as float32)."""
        budget = self.leases.budget
        return budget.max_image_bytes // 4 if budget is not None else MAX_ELEMENTS

    def set_target_buffer(self, payload: dict = Body(...), x_lease_token: str | None = Header(None)) -> dict:
        lease = self.lease(x_lease_token)
        shape, name = payload.get("shape"), payload.get("dtype")
        if not isinstance(name, str) or name not in TARGET_DTYPES:
            raise PromptError(f"the target buffer's dtype must be one of {', '.join(sorted(TARGET_DTYPES))}, got {name!r}"[:200])
        dtype = np.dtype(name)
        with lease.lock:
            volume = self._volume(lease)
            if not isinstance(shape, list) or tuple(shape) != volume.shape:
                raise PromptError(f"the target buffer must have the image's shape {list(volume.shape)}, got {shape!r}"[:200])
            lease.target, lease.history = None, []
            self.leases.charge(lease, "target buffer", extra=volume.array.size * dtype.itemsize)
            lease.target = np.zeros(volume.shape, dtype=dtype)
        return {"ok": True}

    def set_do_autozoom(self, payload: dict = Body(...), x_lease_token: str | None = Header(None)) -> dict:
        lease = self.lease(x_lease_token)
        lease.do_autozoom = _flag(payload, "do_autozoom", False)
        return {"ok": True, "applied": False, "note": "voxelprompt's models have no auto-zoom; the setting has no effect"}

    def reset_interactions(self, x_lease_token: str | None = Header(None)) -> dict:
        lease = self.lease(x_lease_token)
        with lease.lock:
            if lease.target is not None:
                lease.target.fill(0)
            lease.prompts, lease.pending, lease.history = ia.ObjectPrompts(), False, []
        return {"ok": True}

    def _volume(self, lease: Lease):
        if lease.volume is None or lease.target is None:
            raise PromptError("no image on this lease: send one with /set_image first")
        return lease.volume

    # ---- interactions ------------------------------------------------------------------------

    def add_point(self, payload: dict = Body(...), x_lease_token: str | None = Header(None)) -> Response:
        lease = self.lease(x_lease_token)
        coords = payload.get("coordinates")
        if not (isinstance(coords, list) and len(coords) == 3 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in coords)):
            raise PromptError(f"coordinates must be [x, y, z] voxel indices, got {coords!r}"[:200])
        positive = _flag(payload, "include_interaction", True)
        ia.require(self.model.family.capabilities, "points" if positive else "negative_points", "a point", self.model.family.name)
        point = tuple(float(v) for v in coords)
        return self._act(lease, lambda p: p.with_points([point], positive), _flag(payload, "run_prediction", True))

    def add_bbox(self, payload: dict = Body(...), x_lease_token: str | None = Header(None)) -> Response:
        lease = self.lease(x_lease_token)
        ia.require(self.model.family.capabilities, "box", "a bounding box", self.model.family.name)
        if not _flag(payload, "include_interaction", True):
            raise PromptError(f"a negative bounding box is not supported by {self.model.family.name} models")
        run = _flag(payload, "run_prediction", True)
        return self._act(lease, lambda p: p.replace(box=ia.box_from_client(payload.get("bbox_coords"), self._volume(lease).shape)), run)

    async def add_scribble(self, request: Request, x_lease_token: str | None = Header(None), x_meta: str | None = Header(None)) -> Response:
        return await self._mask_interaction(request, x_lease_token, x_meta, "scribble")

    async def add_lasso(self, request: Request, x_lease_token: str | None = Header(None), x_meta: str | None = Header(None)) -> Response:
        return await self._mask_interaction(request, x_lease_token, x_meta, "lasso")

    async def add_initial_seg(self, request: Request, x_lease_token: str | None = Header(None), x_meta: str | None = Header(None)) -> Response:
        return await self._mask_interaction(request, x_lease_token, x_meta, "initial")

    async def _mask_interaction(self, request: Request, token: str | None, raw_meta: str | None, kind: str) -> Response:
        lease = self.lease(token)
        meta = json_object(raw_meta, f"{META} header")
        caps, family = self.model.family.capabilities, self.model.family.name
        needed = {"scribble": ("points", "a scribble"), "lasso": ("box", "a lasso"), "initial": ("previous_mask", "an initial segmentation")}
        ia.require(caps, *needed[kind], family)
        body = await request.body()
        return await run_in_threadpool(self._mask_work, lease, meta, body, kind)

    def _mask_work(self, lease: Lease, meta: dict[str, Any], body: bytes, kind: str) -> Response:
        with lease.lock:  # one body of this lease decoded at a time, its shape checked before allocation
            try:
                mask = unpack(body, shape=self._volume(lease).shape)
            except PromptError as err:
                raise PromptError(f"the {kind} mask: {err}") from None
            return self._mask_prompt(lease, meta, mask, kind)

    def _mask_prompt(self, lease: Lease, meta: dict[str, Any], mask: np.ndarray, kind: str) -> Response:
        positive = _flag(meta, "include_interaction", True)
        run = _flag(meta, "run_prediction", kind != "initial")
        if kind == "scribble":
            points = ia.scribble_points(mask)
            return self._act(lease, lambda p: p.with_points(points, positive), run)
        if kind == "lasso":
            if not positive:
                raise PromptError(f"a negative lasso is not supported by {self.model.family.name} models")
            return self._act(lease, lambda p: p.replace(box=ia.mask_box(mask)), run)
        return self._initial(lease, mask)

    def _initial(self, lease: Lease, mask: np.ndarray) -> Response:
        """The initial segmentation replaces the object (nnInteractive resets interactions) and
        becomes the previous mask later clicks edit; it needs no prediction of its own."""
        with lease.lock:
            self.leases.charge(lease, "initial segmentation", extra=lease.target.nbytes + mask.size)
            lease.push(Step(lease.prompts, [[0, s] for s in lease.target.shape], lease.target.copy()))
            lease.target[...] = mask.astype(lease.target.dtype, copy=False)
            lease.prompts, lease.pending = ia.ObjectPrompts(previous=mask != 0), False
            self.leases.charge(lease, "undo history")
        return self._reply(lease, None, ran=False)

    def voxelprompt_prompt(self, payload: dict = Body(...), x_lease_token: str | None = Header(None)) -> Response:
        """voxelprompt extension: classes (names or ids), a text or everything for the current object."""
        from voxelprompt.prompts import build_prompts

        lease = self.lease(x_lease_token)
        classes = payload.get("classes") or []
        if not isinstance(classes, list):
            raise PromptError(f"classes must be a list of class names or ids, got {classes!r}"[:200])
        ids = self.service.classes(self.model.name).resolve(classes)  # the family's own class names
        text, everything = payload.get("text"), _flag(payload, "everything", False)
        built = build_prompts(ids, text=text, everything=everything, catalog=self.service.classes(self.model.name).catalog) if (classes or text or everything) else Prompts()
        run = _flag(payload, "run_prediction", True)
        return self._act(lease, lambda p: p.replace(classes=built.classes, text=built.text, everything=built.everything), run)

    def predict(self, payload: dict = Body(default={}), x_lease_token: str | None = Header(None)) -> Response:
        lease = self.lease(x_lease_token)
        force = _flag(payload, "force_full_refine", False)
        if not (lease.pending or force) or lease.prompts.empty:
            return self._reply(lease, None, ran=False)
        return self._act(lease, lambda p: p, True)

    def undo(self, x_lease_token: str | None = Header(None)) -> Response:
        lease = self.lease(x_lease_token)
        with lease.lock:
            if not lease.history:
                return self._reply(lease, None, ran=False)
            step = lease.history.pop()
            lease.prompts, lease.pending = step.prompts, False
            if step.bbox is not None and lease.target is not None:
                lease.target[_slices(step.bbox)] = step.before
            return self._reply(lease, step.bbox, ran=True)

    # ---- prediction and replies ----------------------------------------------------------------

    def _act(self, lease: Lease, change, run: bool) -> Response:
        """Apply ``change`` to the object's prompts; with ``run``, segment and update the buffer.
        Nothing changes when the prompts are refused."""
        with lease.lock:
            volume = self._volume(lease)
            new = change(lease.prompts)
            prompts = new.to_prompts()
            if not run:
                # Kept for a later prediction: refused now if it can never be answered (a click
                # outside the image would otherwise refuse every later prediction).
                check_capabilities(prompts, self.model.family)  # e.g. a box for a family without boxes
                if prompts.points is not None:
                    check_points_inside(prompts.points, volume)
                lease.push(Step(lease.prompts))
                lease.prompts, lease.pending = new, True
                return self._reply(lease, None, ran=False)
            result = self.service.segment_interactive(
                self.model.name, lease.image_key, lease.image_sha256, lambda: volume, prompts
            )  # fmt: skip
            labels = np.asarray(result.labels.array)
            values = labels if (prompts.everything or len(prompts.classes) > 1) else labels != 0
            values = values.astype(lease.target.dtype, copy=False)
            bbox = changed_bbox(lease.target, values)
            before = lease.target[_slices(bbox)].copy() if bbox else None
            lease.push(Step(lease.prompts, bbox, before))
            if bbox:
                lease.target[_slices(bbox)] = values[_slices(bbox)]
            lease.prompts, lease.pending = new, False
            self.leases.charge(lease, "undo history")
            return self._reply(lease, bbox, ran=True)

    @staticmethod
    def _reply(lease: Lease, bbox: list[list[int]] | None, ran: bool) -> Response:
        meta: dict[str, Any] = {"ran_prediction": ran, "bbox": bbox}
        content = b""
        if bbox is not None and lease.target is not None:
            sub = lease.target[_slices(bbox)]
            meta.update(dtype=str(sub.dtype), shape=list(sub.shape))
            content = pack(sub)
        return Response(content, media_type=OCTET, headers={META: json.dumps(meta, separators=(",", ":"))})

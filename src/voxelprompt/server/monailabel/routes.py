"""The MONAI Label REST API subset that 3D Slicer's MONAILabel module, the OHIF v3 plugin and the
``monailabel`` Python client call (``monailabel/client/client.py`` of MONAI Label 0.8 is the spec):
``/info/``, ``/auth/``, ``/train/``, ``/activelearning/``, ``/datastore/``, ``/session/`` and
``/infer/{model}``. Handlers parse, call :class:`~voxelprompt.server.service.SegmentationService`
and serialise; errors become 4xx replies with a one-line ``detail`` (see
:mod:`voxelprompt.server.app`).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Body, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from voxelprompt._version import __version__
from voxelprompt.errors import InputError, PromptError
from voxelprompt.outputs import OUTPUT_FORMATS
from voxelprompt.server.activelearning import STRATEGIES
from voxelprompt.server.datastore import NotFound
from voxelprompt.server.fields import json_object
from voxelprompt.server.monailabel.replies import infer_reply
from voxelprompt.server.monailabel.tasks import TaskTable
from voxelprompt.server.service import SegmentationService

__all__ = ["monailabel_router"]


def monailabel_router(service: SegmentationService, token: str | None = None) -> APIRouter:
    """The routes, bound to one service (``token``: the ``--token``, for the login routes)."""
    router = APIRouter()
    tasks = TaskTable(service)
    router.tasks = tasks  # type: ignore[attr-defined]

    @router.get("/info/", summary="Server, models and labels (MONAI Label app info)")
    def info() -> dict[str, Any]:
        entries = tasks.all()
        models = {name: task.info() for name, task in entries.items()}
        labels = list(dict.fromkeys(n for task in entries.values() for n in task.labels))
        # No top-level "config": 3D Slicer's module refuses servers that send one.
        return {
            "name": "voxelprompt",
            "description": "VISTA3D and SegVol promptable 3D CT segmentation (voxelprompt)",
            "version": __version__,
            "labels": labels,
            "models": models,
            "trainers": service.training.trainers() if service.training else {},
            "strategies": {name: {"description": s.description} for name, s in STRATEGIES.items()},
            "scoring": {},
            "train_stats": service.training.train_stats() if service.training else {},
            "datastore": {"total": len(service.store.images()), "completed": 0},
        }

    # ---- auth: MONAI Label's login flow, with the --token as the password ----------------------

    @router.get("/auth/", summary="Whether a token is needed")
    def auth() -> Response:
        if token is None:
            return JSONResponse({"detail": "authentication is off"}, status_code=404)
        return JSONResponse({"enabled": True, "client_id": "voxelprompt"})

    @router.post("/auth/token", summary="A bearer token for the server's --token (given as password)")
    def auth_token(password: str = Form(""), username: str = Form("")) -> Response:
        import hmac

        if token is None:
            return JSONResponse({"detail": "authentication is off"}, status_code=404)
        if not hmac.compare_digest(password.encode(), token.encode()):
            return JSONResponse({"detail": "wrong password: give the server's --token"}, status_code=401)
        return JSONResponse({"access_token": token, "token_type": "Bearer"})

    @router.get("/auth/token/valid", summary="Whether the request's bearer token is valid")
    def auth_valid() -> dict[str, bool]:
        return {"valid": True}  # the middleware has checked it

    # ---- training and active learning (voxelprompt/server/training.py, activelearning.py) ------

    def trainer() -> Any:
        if service.training is None:
            raise NotFound("training is off on this server")
        return service.training

    @router.get("/train/", summary="Training status: the latest task, all, or the running one (404 when none)")
    def train_status(check_if_running: bool = False, all: bool = False) -> Any:
        return trainer().status(check_if_running=check_if_running, all_tasks=all)

    @router.post("/train/{model}", summary="Start few-shot finetuning of a model on the datastore's labels")
    def train_start(model: str, params: dict[str, Any] | None = Body(None)) -> dict[str, Any]:
        return trainer().start(tasks.model_name(model), params or {})

    @router.post("/train/", summary="Start finetuning every model that can learn (MONAI Label's deprecated form)")
    def train_all(params: dict[str, Any] | None = Body(None)) -> dict[str, Any]:
        names = list(trainer().trainers())
        if not names:
            raise NotFound("no loaded model can be finetuned")
        return {names[0]: {"result": trainer().start(names[0], (params or {}).get(names[0], params or {})), "detail": None}}

    @router.delete("/train/", summary="Stop the running training task (it resumes from its checkpoint)")
    def train_stop() -> Any:
        stopped = trainer().stop()
        if stopped is None:
            raise NotFound("no training task is running")
        return stopped

    @router.get("/model/{model}/versions", summary="Finetuned versions of a model and the one served")
    def model_versions(model: str) -> dict[str, Any]:
        return trainer().versions(tasks.model_name(model))

    @router.put("/model/{model}/versions", summary="Serve another version of a model (0: as loaded)")
    def model_restore(model: str, version: int = Query(..., ge=0)) -> dict[str, Any]:
        return trainer().restore(tasks.model_name(model), version)

    @router.post("/activelearning/{strategy}", summary="The next image to label (first, random, confidence)")
    def next_sample(strategy: str, params: dict[str, Any] | None = Body(None)) -> dict[str, Any]:
        from voxelprompt.server.activelearning import next_sample as pick

        return pick(service, strategy, params or {})

    # ---- datastore ---------------------------------------------------------------------------

    @router.put("/datastore/", summary="Upload an image (multipart file + params)")
    def upload_image(image: str | None = Query(None), file: UploadFile = File(...), params: str = Form("{}")) -> dict[str, Any]:
        record = service.upload(image, file.file, file.filename, json_object(params, "params"))
        return {"image": record.image_id, "shape": list(record.shape), "spacing": list(record.spacing), "sha256": record.sha256}

    @router.get("/datastore/", summary="List images (output=all|ids|stats)")
    def datastore(output: str = "stats") -> dict[str, Any]:
        images = service.store.images()
        if output == "ids":
            return {"images": [r.image_id for r in images]}
        if output != "all":
            return {"total": len(images), "completed": sum(1 for r in images if r.labels), "label_tags": {}}
        return {
            "name": "voxelprompt",
            "images": [r.image_id for r in images],
            "objects": {
                r.image_id: {
                    "image": {"ext": r.suffix, "info": {**r.info, "shape": list(r.shape), "spacing": list(r.spacing), "ts": int(r.added)}},
                    "labels": {t: {"ext": lab.suffix, "info": lab.info} for t, lab in r.labels.items()},
                }
                for r in images
            },
        }

    @router.delete("/datastore/", summary="Delete an image and its labels")
    def delete_image(id: str = Query(...)) -> dict[str, str]:
        service.forget_image(id)
        return {"deleted": id}

    @router.get("/datastore/image", summary="Download an image")
    def download_image(image: str = Query(...)) -> FileResponse:
        record = service.store.image(image)
        return FileResponse(service.store.image_path(image), filename=f"image{record.suffix}")

    @router.put("/datastore/label", summary="Save a label for an image (multipart label + params)")
    def save_label(image: str = Query(...), tag: str = Query("final"), label: UploadFile = File(...), params: str = Form("{}")) -> dict[str, Any]:
        saved = service.store.add_label(image, tag, label.file, label.filename, json_object(params, "params"))
        return {"image": image, "label": image, "tag": saved.tag}

    @router.get("/datastore/label", summary="Download a saved label")
    def download_label(label: str = Query(...), tag: str = Query("final")) -> FileResponse:
        path = service.store.label_path(label, tag)
        suffix = service.store.image(label).labels[tag].suffix
        return FileResponse(path, filename=f"label_{tag}{suffix}")

    # ---- MONAI Label sessions ----------------------------------------------------------------

    @router.put("/session/", summary="Start a session with an uploaded image (multipart files)")
    def create_session(files: list[UploadFile] = File(...)) -> dict[str, Any]:
        if len(files) != 1:
            raise InputError(f"a session takes one image file, got {len(files)}")
        record = service.store.add_session(files[0].file, files[0].filename)
        return _session_json(record)

    @router.get("/session/{session_id}", summary="A session's details")
    def get_session(session_id: str) -> dict[str, Any]:
        return _session_json(service.store.session(session_id))

    @router.delete("/session/{session_id}", summary="End a session")
    def delete_session(session_id: str) -> dict[str, Any]:
        return _session_json(service.end_session(session_id))

    # ---- inference ---------------------------------------------------------------------------

    @router.post("/infer/{model}", summary="Segment a stored image, a session's image or an uploaded file")
    def infer(
        model: str,
        request: Request,
        image: str = Query(""),
        session_id: str = Query(""),
        output: str | None = Query(None),
        params: str = Form("{}"),
        file: UploadFile | None = File(None),
        label: UploadFile | None = File(None),
    ) -> Response:
        if request.headers.get("content-type", "").startswith("application/json"):
            raise PromptError("send params as the multipart form field 'params' (MONAI Label's convention), not as a JSON body")
        values = json_object(params, "params")
        task = tasks.get(model)  # an unknown model fails before any upload is kept
        if label is not None:
            raise PromptError("a label input is not used by voxelprompt's models; send clicks or a roi in params")
        temporary = None
        if session_id:
            image_id = service.store.session(session_id).image_id
        elif file is not None:
            temporary = service.store.add_image(None, file.file, file.filename).image_id
            image_id = temporary
        elif image:
            image_id = image
        else:
            raise PromptError("give image=ID, session_id=ID or a file to segment")
        try:
            result = service.infer(task.model.name, image_id, lambda volume: task.plan(values, volume))
            if output == "dicom_seg" or values.get("store_dicom_seg"):
                data, seg = service.dicom_seg(result, image_id, store=bool(values.get("store_dicom_seg")))
                if output == "dicom_seg":
                    return Response(data, media_type="application/dicom", headers={"Content-Disposition": 'attachment; filename="seg.dcm"'})
                result.notes["dicom_seg"] = seg
            if output == "rtstruct" or values.get("store_rtstruct"):
                data, rt = service.rtstruct(result, task.model.name, image_id, store=bool(values.get("store_rtstruct")))
                if output == "rtstruct":
                    return Response(data, media_type="application/dicom", headers={"Content-Disposition": 'attachment; filename="rtstruct.dcm"'})
                result.notes["rtstruct"] = rt
            if output is not None and output.lower() in OUTPUT_FORMATS:  # a registered format's file
                return _format_reply(service, result, task.model, image_id, output.lower())
            return infer_reply(result, model, image or image_id, values, output)
        finally:
            if temporary is not None:
                service.forget_image(temporary)

    return router


def _format_reply(service: SegmentationService, result, model, image_id: str, name: str) -> Response:
    """``output=NAME`` of the output registry (:mod:`voxelprompt.outputs`, plugins included): the
    format's file alone. Formats that reference a DICOM series answer ``output=dicom_seg`` and
    ``rtstruct`` only (PACS images); a format needing one is refused (4xx)."""
    from voxelprompt.inference.protocol import demo_mark
    from voxelprompt.outputs import OutputContext, output_bytes

    fmt = OUTPUT_FORMATS[name]
    reason = fmt.unavailable(dicom_series=False)
    if reason is not None:
        raise PromptError(f"output={name} {reason}; ask for output=dicom_seg or rtstruct of a PACS image")
    context = OutputContext(
        labels=result.labels, label_names={v: n for n, v in result.label_names.items()}, image=service.store.volume(image_id),
        model=model.name, demo_mark=demo_mark(model.segmenter), title=f"{image_id}: {model.name}",
    )  # fmt: skip
    file_name, data = output_bytes(context, fmt)
    return Response(data, media_type=fmt.media_type, headers={"Content-Disposition": f'attachment; filename="{file_name}"'})


def _session_json(record) -> dict[str, Any]:
    return {
        "session_id": record.session_id,
        "image": record.image_id,
        "created": int(record.created),
        "expiry": int(record.expiry),
        "expires_in_s": max(0, int(record.expiry - time.time())),
    }


"""Replies of ``/infer`` as the MONAI Label clients read them.

The default reply is ``multipart/form-data`` with a ``params`` JSON part and one file part with a
file name (the Python client parses it with ``cgi.FieldStorage`` and keeps the part that has a file
name); ``output=image`` sends the file alone, ``output=json`` the params alone. The file is the
label map on the uploaded image's exact grid in the format the request asks for: 3D Slicer always
sends ``result_extension: ".nrrd"`` and ``result_dtype: "uint8"``, the OHIF plugin the same.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from starlette.responses import Response
from urllib3 import encode_multipart_formdata

from voxelprompt.errors import PromptError
from voxelprompt.server.service import InferResult

__all__ = ["encode_labels", "infer_reply", "RESULT_EXTENSIONS", "RESULT_DTYPES"]

RESULT_EXTENSIONS = {".nrrd": "application/octet-stream", ".nii.gz": "application/gzip", ".nii": "application/octet-stream"}
RESULT_DTYPES = ("uint8", "uint16", "int16", "int32")


def encode_labels(result: InferResult, extension: Any = ".nrrd", dtype: Any = "uint8") -> tuple[str, bytes]:
    """The label map as a file: ``(file name, bytes)``.

    Args:
        extension: ``.nrrd`` (default), ``.nii.gz`` or ``.nii``.
        dtype: ``uint8`` (default), ``uint16``, ``int16`` or ``int32``.

    Raises:
        PromptError: another extension or type, or values that do not fit the type.
    """
    extension = ".nrrd" if extension in (None, "") else extension
    dtype = "uint8" if dtype in (None, "") else dtype
    if extension not in RESULT_EXTENSIONS:
        raise PromptError(f"result_extension must be one of {', '.join(RESULT_EXTENSIONS)}, got {extension!r}")
    if dtype not in RESULT_DTYPES:
        raise PromptError(f"result_dtype must be one of {', '.join(RESULT_DTYPES)}, got {dtype!r}")
    top = int(np.max(result.labels.array, initial=0))
    if top > np.iinfo(dtype).max:
        raise PromptError(f"result values reach {top}, which does not fit result_dtype {dtype}; ask for uint16")
    from voxelprompt.imageio import write_volume

    name = f"label_{secrets.token_hex(8)}{extension}"
    with tempfile.TemporaryDirectory(prefix="voxelprompt-reply-") as tmp:
        path = write_volume(result.labels, Path(tmp) / name, dtype=np.dtype(dtype))
        return name, path.read_bytes()


def reply_params(result: InferResult, model: str, image_id: str) -> dict[str, Any]:
    """The JSON ``params`` of a reply: ``label_names`` (name -> value), times, session reuse."""
    return {
        "label_names": result.label_names,
        "model": model,
        "image": image_id,
        "latencies": {k: round(v, 4) for k, v in result.seconds.items()},
        "session_reused": result.session_reused,
        **result.notes,
    }


def infer_reply(result: InferResult, model: str, image_id: str, params: dict[str, Any], output: str | None) -> Response:
    """The HTTP reply of one ``/infer`` call (``output``: None/``all``, ``image`` or ``json``).

    Raises:
        PromptError: an unknown ``output`` or result format.
    """
    body = reply_params(result, model, image_id)
    if output == "json":
        return Response(json.dumps(body), media_type="application/json")
    if output not in (None, "", "all", "image"):
        raise PromptError(f"output must be image, json, all, dicom_seg or rtstruct, got {output!r}")
    name, data = encode_labels(result, params.get("result_extension"), params.get("result_dtype"))
    mime = RESULT_EXTENSIONS[next(e for e in RESULT_EXTENSIONS if name.endswith(e))]
    if output == "image":
        return Response(data, media_type=mime, headers={"Content-Disposition": f'attachment; filename="{name}"'})
    payload, content_type = encode_multipart_formdata([("params", json.dumps(body)), ("image", (name, data, mime))])
    return Response(payload, media_type=content_type)

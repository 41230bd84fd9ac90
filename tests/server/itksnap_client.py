"""A Python stand-in for ITK-SNAP's deep-learning client that sends its requests byte for byte.

Written from ITK-SNAP's C++ (pyushkevich/itksnap): ``GUI/Model/DeepLearningSegmentationModel.cxx``
(which routes, in which order, ``EncodeImage``, ``UpdateSegmentation``) and
``Logic/WorkspaceAPI/RESTClient.cxx`` (libcurl: ``GET`` with only ``Host`` and ``Accept: */*``;
``curl_mime`` multipart with the parts in ``std::map`` order, ``file`` then ``metadata``). The
metadata is written as ITK-SNAP's bundled jsoncpp 0.10.6 writes it (``operator<<``: keys sorted,
tab indentation, every array on its own lines, doubles ``%.17g``). Success is HTTP 200, as in
``RESTClient::Get``; a 200 reply is then parsed and painted as ``UpdateSegmentation`` does.
Requests go over a raw ``http.client`` connection with exactly these headers; every call has a
timeout.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import secrets
import string
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

__all__ = ["ItkSnapClient", "ItkSnapError", "itk_geometry", "jsoncpp_styled"]


class ItkSnapError(RuntimeError):
    """What ITK-SNAP would raise (an IRISException with the server's text)."""


def jsoncpp_styled(value, indent: str = "") -> str:
    """``value`` as jsoncpp 0.10.6's ``operator<<`` writes it (its ``BuiltStyledStreamWriter``
    with the ``StreamWriterBuilder`` defaults: comment style All, so arrays are always multi-line)."""
    inner = indent + "\t"
    if isinstance(value, dict):
        members = [f"\n{inner}{json.dumps(k)} : {jsoncpp_styled(v, inner)}" for k, v in sorted(value.items())]
        return "{" + ",".join(members) + f"\n{indent}}}"
    if isinstance(value, list):
        items = [f"\n{inner}{jsoncpp_styled(v, inner)}" for v in value]
        return f"\n{indent}[" + ",".join(items) + f"\n{indent}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.17g}"
    return json.dumps(value)


def itk_geometry(affine: np.ndarray) -> dict:
    """ITK's spacing, origin and direction (LPS+) of a voxel -> RAS+ affine."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing
    return {"spacing": [float(s) for s in spacing], "origin": [float(v) for v in lps[:3, 3]], "direction": direction}


def encode_image(array_ijk: np.ndarray, affine: np.ndarray) -> tuple[bytes, str]:
    """``EncodeImage``: gzip of the float32 ITK buffer (x fastest) and the metadata text."""
    buffer = np.asarray(array_ijk, dtype="<f4").transpose(2, 1, 0).tobytes()  # C order of (z, y, x)
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15 | 16, 8, zlib.Z_DEFAULT_STRATEGY)
    data = deflater.compress(buffer) + deflater.flush(zlib.Z_FINISH)
    geometry = itk_geometry(affine)
    meta = {
        "dimensions": [int(s) for s in array_ijk.shape],
        "origin": geometry["origin"],
        "spacing": geometry["spacing"],
        "direction": [float(geometry["direction"][i, j]) for i in range(3) for j in range(3)],  # (i, j): row-major
        "components_per_pixel": 1,
        "component_type": "float32",
    }
    return data, jsoncpp_styled(meta)


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


class ItkSnapClient:
    """One ITK-SNAP talking to one server (``http://host:port``), as the C++ does.

    Args:
        url: the server URL ITK-SNAP builds from hostname and port.
        v2: ITK-SNAP master's routes (``/v2/...``, a model id); False: 4.4.0's.
        timeout_s: every request's socket timeout.
    """

    def __init__(self, url: str, v2: bool = True, timeout_s: float = 120.0) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.v2, self.timeout_s = v2, timeout_s
        self.session: str | None = None
        self.extra_headers: list[tuple[str, str]] = []  # only for tests of what a proxy adds
        self.sent: list[bytes] = []  # every request's bytes, as sent

    # ---- transport (libcurl's bytes) ----------------------------------------------------------

    def _send(self, method: str, target: str, body: bytes = b"", content_type: str | None = None) -> Reply:
        head = [f"{method} /{target} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: */*"]
        if method == "POST":
            head.append(f"Content-Length: {len(body)}")
            head.append(f"Content-Type: {content_type}")
            if len(body) > 1024 * 1024:
                head.append("Expect: 100-continue")  # libcurl's default for bodies over 1 MiB
        head += [f"{k}: {v}" for k, v in self.extra_headers]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        self.sent.append(request)
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        try:
            connection.connect()
            connection.sock.sendall(request)
            response = http.client.HTTPResponse(connection.sock, method=method)
            response.begin()
            while response.status == 100:  # the interim answer to Expect
                response = http.client.HTTPResponse(connection.sock, method=method)
                response.begin()
            return Reply(response.status, response.read())
        finally:
            connection.close()

    def get(self, target: str) -> Reply:
        return self._send("GET", target)

    def post_multipart(self, target: str, data: bytes, metadata: str) -> Reply:
        """``RESTClient::PostMultipart`` of ``EncodeImage``'s two parts."""
        boundary = "-" * 24 + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(22))
        body = b"".join([
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="file"; filename="image.gz"\r\n',
            b"Content-Type: application/gzip\r\n\r\n", data, b"\r\n",
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="metadata"\r\n',
            b"Content-Type: application/json\r\n\r\n", metadata.encode(), b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ])  # fmt: skip
        return self._send("POST", target, body, f"multipart/form-data; boundary={boundary}")

    @staticmethod
    def _ok(reply: Reply, what: str) -> Reply:
        if reply.status != 200:
            raise ItkSnapError(f"{what}: HTTP {reply.status}: {reply.body.decode(errors='replace')}")
        return reply

    # ---- the model's calls ----------------------------------------------------------------------

    def status(self) -> dict:
        return self._ok(self.get("status"), "status").json()

    def models(self) -> dict[str, dict]:
        listing = self._ok(self.get("v2/models"), "Error requesting list of models from DLS server").json()
        return {m["id"]: m for m in listing["models"]}

    def start_session(self, model_id: str | None = None) -> str:
        if self.session is not None and self.v2:
            self.get(f"v2/end_session/{self.session}")
        target = f"v2/start_session/{model_id}" if self.v2 else "start_session"
        self.session = self._ok(self.get(target), "Error creating session on DLS server").json()["session_id"]
        return self.session

    def upload(self, array_ijk: np.ndarray, affine: np.ndarray) -> dict:
        data, metadata = encode_image(array_ijk, affine)
        reply = self.post_multipart(f"upload_raw/{self.session}?filename=upload.nii.gz", data, metadata)
        return self._ok(reply, "Error uploading image to DSL server").json()

    def point(self, ijk, foreground: bool = True) -> np.ndarray:
        i, j, k = (int(v) for v in ijk)
        fg = "true" if foreground else "false"
        if self.v2:
            target = f"v2/process_point_interaction/{self.session}?point={i}&point={j}&point={k}&foreground={fg}"
        else:
            target = f"process_point_interaction/{self.session}?x={i}&y={j}&z={k}&foreground={fg}"
        return self._result(self._ok(self.get(target), "Failed to send current coordinate to the server"))

    def stroke(self, kind: str, mask_ijk: np.ndarray, affine: np.ndarray, foreground: bool = True) -> np.ndarray:
        """A scribble or lasso: the whole segmentation-sized layer, cast to float32, as the image."""
        data, metadata = encode_image((np.asarray(mask_ijk) != 0).astype(np.float32), affine)
        fg = "true" if foreground else "false"
        reply = self.post_multipart(f"process_{kind}_interaction/{self.session}?foreground={fg}", data, metadata)
        return self._result(self._ok(reply, "Failed to send current coordinate to the server"))

    def reset(self) -> dict:
        return self._ok(self.get(f"reset_interactions/{self.session}"), "Failed to reset interactions").json()

    def end(self) -> dict:
        reply = self.get(f"{'v2/' if self.v2 else ''}end_session/{self.session}")
        self.session = None
        return reply.json()

    def _result(self, reply: Reply) -> np.ndarray:
        """``UpdateSegmentation``: base64 -> gzip -> int8 in ITK buffer order, as an (I, J, K) mask
        (it needs the image's shape: the caller reshapes with :meth:`paint`)."""
        root = reply.json()
        if not isinstance(root.get("result"), str):
            raise ItkSnapError(f"a 200 reply without 'result' (ITK-SNAP would paint from an empty buffer): {root}")
        return np.frombuffer(gzip.decompress(base64.b64decode(root["result"])), dtype=np.int8)


def paint(raw: np.ndarray, shape: tuple[int, int, int], segmentation: np.ndarray, label: int) -> np.ndarray:
    """ITK-SNAP's painting of a 3D reply into ``segmentation`` ((I, J, K)) with the active
    ``label``: voxels > 0 become ``label``, the label's other voxels become clear (0)."""
    if raw.size != int(np.prod(shape)):
        raise ItkSnapError(f"the reply holds {raw.size} voxels, the segmentation {int(np.prod(shape))}")
    mask = raw.reshape(shape[::-1]).transpose(2, 1, 0) > 0
    out = segmentation.copy()
    out[(out == label) & ~mask] = 0
    out[mask] = label
    return out

"""A connection to a PACS over DICOMweb (QIDO-RS, WADO-RS, STOW-RS) on ``dicomweb-client``.

Credentials never come from the command line: they are read from the environment
(``VOXELPROMPT_DICOMWEB_USER`` / ``VOXELPROMPT_DICOMWEB_PASSWORD``, or ``VOXELPROMPT_DICOMWEB_TOKEN``
for a bearer token) or from a file (``user:password`` on its first line, or a JSON object with
``user``/``password`` or ``token``), and never appear in messages or logs. Every request has a
timeout; failed connections and 408/429/503/504 answers are retried with exponential backoff
(dicomweb-client's own retrying). What goes wrong becomes one line (:class:`PacsError`): refused credentials,
an unreachable host, a timeout, or another HTTP error, naming the server but not the secret.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voxelprompt.errors import VoxelPromptError

__all__ = ["PacsError", "DicomWebSource", "connect", "pacs_errors", "parse_source"]

#: ``voxelprompt batch`` and ``serve`` take a PACS as ``dicomweb+http(s)://HOST/ROOT``.
SCHEME_PREFIX = "dicomweb+"


class PacsError(VoxelPromptError):
    """The PACS refused a request or could not be reached (one line, no secrets)."""


@dataclass(frozen=True)
class DicomWebSource:
    """Where the PACS is and how to log in.

    Args:
        url: the DICOMweb root, e.g. ``http://127.0.0.1:8042/dicom-web``.
        user, password: HTTP basic credentials (None: none); ``token``: a bearer token instead.
        timeout_s: connect and read timeout of each request.
        retries: further tries after a failed connection or a 408/429/503/504, with
            exponential backoff starting near ``backoff_s``.
    """

    url: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PacsError(f"DICOMweb URL must be http(s)://HOST[:PORT]/ROOT, got {self.url!r}")
        if parts.username or parts.password:
            raise PacsError("put PACS credentials in VOXELPROMPT_DICOMWEB_USER/_PASSWORD or a credentials file, not in the URL")

    def __repr__(self) -> str:  # never show the secret
        return f"DicomWebSource(url={self.url!r}, user={self.user!r}, auth={'token' if self.token else 'basic' if self.password else 'none'})"


def parse_source(text: str, credentials: str | os.PathLike | None = None, timeout_s: float = 30.0, retries: int = 3) -> DicomWebSource:
    """A source from ``dicomweb+http://HOST/ROOT`` (or a plain http URL) with credentials from
    ``credentials`` (a file) or else the environment (see the module docstring).

    Raises:
        PacsError: a malformed URL, credentials in it, or an unreadable credentials file.
    """
    url = text.removeprefix(SCHEME_PREFIX).rstrip("/")
    user = os.environ.get("VOXELPROMPT_DICOMWEB_USER")
    password = os.environ.get("VOXELPROMPT_DICOMWEB_PASSWORD")
    token = os.environ.get("VOXELPROMPT_DICOMWEB_TOKEN")
    if credentials is not None:
        user, password, token = _read_credentials(Path(credentials))
    return DicomWebSource(url, user, password, token, timeout_s, retries)


def _read_credentials(path: Path) -> tuple[str | None, str | None, str | None]:
    try:
        text = path.read_text().strip()
    except OSError as err:
        raise PacsError(f"{path}: cannot read the credentials file ({err.strerror})") from None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise PacsError(f"{path}: credentials file is neither user:password nor JSON") from None
        return data.get("user"), data.get("password"), data.get("token")
    user, sep, password = text.splitlines()[0].partition(":")
    if not sep:
        raise PacsError(f"{path}: credentials file must hold user:password on its first line")
    return user, password, None


def connect(source: DicomWebSource) -> Any:
    """A ``dicomweb_client.DICOMwebClient`` with the source's login, timeouts and retries.

    Raises:
        MissingExtraError: dicomweb-client is not installed (the "pacs" extra).
    """
    from voxelprompt.extras import needs

    with needs("pacs", "a PACS (DICOMweb)"):
        import requests
        from dicomweb_client.api import DICOMwebClient

    session = requests.Session()
    if source.token:
        session.headers["Authorization"] = f"Bearer {source.token}"
    elif source.user is not None:
        session.auth = (source.user, source.password or "")
    session.mount("http://", _timeout_adapter(source.timeout_s))
    session.mount("https://", _timeout_adapter(source.timeout_s))
    client = DICOMwebClient(url=source.url, session=session)
    # dicomweb-client's own retrying: 429/408/503/504 answers and failed connections, with
    # exponential backoff (milliseconds).
    client.set_http_retry_params(
        retry=source.retries > 0, max_attempts=source.retries + 1, wait_exponential_multiplier=int(source.backoff_s * 1000)
    )
    client.source = source
    return client


def _timeout_adapter(timeout_s: float) -> Any:
    """requests' adapter with a default timeout for every request (dicomweb-client sets none);
    defined here since requests is imported only with a PACS (the "pacs" extra)."""
    from requests.adapters import HTTPAdapter

    class TimeoutAdapter(HTTPAdapter):
        def send(self, request: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = kwargs.get("timeout") or timeout_s
            return super().send(request, **kwargs)

    return TimeoutAdapter()


@contextlib.contextmanager
def pacs_errors(source: DicomWebSource, what: str) -> Iterator[None]:
    """Turn what ``requests`` raises while doing ``what`` into one :class:`PacsError` line."""
    import requests

    try:
        yield
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else 0
        if status in (401, 403):
            raise PacsError(f"the PACS at {source.url} refused the credentials (HTTP {status}) while {what}; check VOXELPROMPT_DICOMWEB_USER/_PASSWORD") from None
        raise PacsError(f"the PACS at {source.url} answered HTTP {status} while {what}") from None
    except requests.exceptions.Timeout:
        raise PacsError(f"the PACS at {source.url} did not answer within {source.timeout_s:g} s while {what}") from None
    except requests.exceptions.ConnectionError as err:
        reason = "connection refused" if "refused" in str(err).lower() else "cannot connect"
        raise PacsError(f"the PACS at {source.url} is unreachable ({reason}) while {what}") from None

"""Resumable, verified download of one official weights file into the cache.

Bytes go to ``FILE.part``; an interrupted download resumes with an HTTP ``Range`` request (the
next call, or the next retry of this one); only a complete file whose digest matches the registry
is renamed to ``FILE`` (``os.replace``, atomic on one file system). A digest mismatch deletes the
part. Transport errors, timeouts and 5xx/429 answers are retried with exponential backoff; other
HTTP errors move on to the next URL. Offline, nothing touches the network.

Uses the standard library's ``urllib.request``: no extra dependency (the HTTP clients in this
environment change under transformers/huggingface_hub), system CA certificates and the usual
``HTTPS_PROXY``/``NO_PROXY`` variables, and everything a ranged GET with timeouts needs.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxelprompt._version import __version__
from voxelprompt.errors import WeightsError, WeightsUnreachable
from voxelprompt.weights.cache import part_path, weight_path
from voxelprompt.weights.registry import WeightFile
from voxelprompt.weights.verify import Digests, Verdict, file_digests, judge

__all__ = ["FetchSettings", "FetchResult", "Progress", "fetch", "manual_route", "offline_message"]

log = logging.getLogger(__name__)

#: ``progress(done_bytes, total_bytes_or_None)``, called as bytes arrive (``done`` includes a resumed part).
Progress = Callable[[int, int | None], None]

#: HTTP answers worth retrying on the same URL.
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class FetchSettings:
    """How hard to try.

    Args:
        timeout: seconds to wait for a connection or for the next bytes (per socket operation).
        attempts: tries per URL (1 = no retry); each try resumes from the part file.
        backoff: seconds before the first retry; doubled for each further one, at most 30 s.
        chunk: bytes read per call.
    """

    timeout: float = 30.0
    attempts: int = 4
    backoff: float = 1.0
    chunk: int = 1 << 20

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise WeightsError(f"--timeout must be > 0 seconds, got {self.timeout}")
        if self.attempts < 1:
            raise WeightsError(f"--retries must be >= 0, got {self.attempts - 1}")
        if self.backoff < 0:
            raise WeightsError(f"backoff must be >= 0 seconds, got {self.backoff}")


@dataclass(frozen=True)
class FetchResult:
    """Where the verified file is, whether this call downloaded it, from which URL, how many bytes
    crossed the network in this call, the file's digests and the verification's one-line detail."""

    path: Path
    downloaded: bool
    url: str | None
    bytes_received: int
    digests: Digests
    detail: str


@dataclass
class _Tally:
    """Bytes received over the network during one :func:`fetch`, failed tries included."""

    received: int = 0


class _Retryable(Exception):
    """A failure worth another try on the same URL."""


class _NextUrl(Exception):
    """A failure that this URL will not recover from."""


class _Unreachable(_NextUrl):
    """The host's name does not resolve or nothing listens: no network, so no retry."""


def manual_route(weight: WeightFile, path: Path | None = None) -> str:
    """How to get ``weight`` by hand: the file, its size and digest, a URL, where to place it."""
    path = path or weight_path(weight)
    facts = [weight.size_note]
    if weight.digest is not None:
        algorithm, value = weight.digest
        facts.append(f"{algorithm} {value}")
    else:
        facts.append("no upstream hash")
    return (
        f"download {weight.file_name} ({'; '.join(facts)}) from {weight.urls[0]} on another machine, place it at "
        f"{path}, then run 'voxelprompt weights verify {weight.name}'"
    )


def offline_message(weight: WeightFile, path: Path | None = None) -> str:
    """One line telling an offline user which file to get from where and where to place it."""
    return f"{weight.name} is not in the cache and the network is off: {manual_route(weight, path)}"


def fetch(
    weight: WeightFile,
    *,
    urls: Sequence[str] | None = None,
    offline: bool = False,
    settings: FetchSettings | None = None,
    progress: Progress | None = None,
) -> FetchResult:
    """Make sure ``weight`` is in the cache and matches its registry digest; download it if not.

    Args:
        weight: the registry entry.
        urls: locations to try in order; None: the registry's ``weight.urls``.
        offline: never touch the network; a missing file is an error saying where to place it.
        settings: timeouts and retries (:class:`FetchSettings`).
        progress: called with (bytes so far, total bytes or None) while downloading.

    Returns:
        The verified file's :class:`FetchResult`.

    Raises:
        WeightsUnreachable: no URL's host resolves or accepts a connection (no network; not
            retried), the message naming the manual route.
        WeightsError: offline and missing; a cached file that does not match its record; every URL
            failed; the download's size or digest does not match (the part file is deleted).
    """
    settings = settings or FetchSettings()
    final, part = weight_path(weight), part_path(weight)
    if final.is_file():
        digests = file_digests(final)
        verdict, detail = judge(weight, digests)
        if verdict is Verdict.mismatch:
            raise WeightsError(f"cached {final} does not match {weight.name}: {detail}; delete it and fetch again")
        return FetchResult(final, False, None, 0, digests, detail)
    if offline:
        raise WeightsError(offline_message(weight, final))
    candidates = list(urls) if urls is not None else list(weight.urls)
    for url in candidates:
        if not url.startswith(("http://", "https://")):
            raise WeightsError(f"weights URL {url!r} is not http(s)")
    part.parent.mkdir(parents=True, exist_ok=True)
    tally, errors, unreachable = _Tally(), [], 0
    for url in candidates:
        for attempt in range(settings.attempts):
            if attempt:
                delay = min(30.0, settings.backoff * 2 ** (attempt - 1))
                log.info("retrying %s in %.1f s: %s", url, delay, errors[-1].removeprefix(f"{url}: "))
                time.sleep(delay)
            try:
                _download(weight, url, part, settings, progress, tally)
            except _Retryable as err:
                errors.append(f"{url}: {err}")
                continue
            except _Unreachable as err:
                errors.append(f"{url}: {err}")
                unreachable += 1
                break
            except _NextUrl as err:
                errors.append(f"{url}: {err}")
                break
            return _finish(weight, url, part, final, tally.received)
    if candidates and unreachable == len(candidates):
        reason = errors[-1].split(": ", 1)[-1]
        raise WeightsUnreachable(f"cannot reach any source of {weight.name} ({reason}); offline? {manual_route(weight, final)}")
    last = errors[-1] if errors else "no URL to try"
    kept = f"; {part.stat().st_size:,} bytes kept in {part.name} for the next try" if part.is_file() else ""
    raise WeightsError(f"could not download {weight.name} from {len(candidates)} URL(s): {last}{kept}")


def _finish(weight: WeightFile, url: str, part: Path, final: Path, received: int) -> FetchResult:
    """Check the complete part file and move it into place, or delete it."""
    digests = file_digests(part)
    verdict, detail = judge(weight, digests)
    if verdict is Verdict.mismatch:
        part.unlink(missing_ok=True)
        raise WeightsError(f"download of {weight.name} from {url} is corrupt ({detail}); the partial file was deleted")
    os.replace(part, final)
    return FetchResult(final, True, url, received, digests, detail)


def _download(
    weight: WeightFile, url: str, part: Path, settings: FetchSettings, progress: Progress | None, tally: _Tally
) -> None:
    """Append the rest of ``url`` to ``part``, counting bytes in ``tally``. Raises _Retryable/_NextUrl."""
    have = part.stat().st_size if part.is_file() else 0
    expected = weight.size_bytes
    if expected is not None and have > expected:
        part.unlink()
        have = 0
    if expected is not None and have == expected:
        return  # complete from an earlier call; the digest check decides
    request = urllib.request.Request(url, headers={"User-Agent": f"voxelprompt/{__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=settings.timeout)  # noqa: S310 - http(s) checked
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and have:
            return  # the part already holds every byte the server has
        if err.code in _RETRY_STATUS:
            raise _Retryable(f"HTTP {err.code}") from None
        raise _NextUrl(f"HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        cause = getattr(err, "reason", err)
        if isinstance(cause, socket.gaierror | ConnectionRefusedError):
            host = urllib.parse.urlsplit(url).netloc
            raise _Unreachable(f"{host}: {_reason(err)}") from None
        raise _Retryable(_reason(err)) from None
    with response:
        if have and response.status == 206:
            start = _range_start(response.headers.get("Content-Range"))
            if start != have:
                raise _NextUrl(f"asked for bytes from {have}, server sent from {start}")
            mode = "ab"
        else:
            have, mode = 0, "wb"  # the server ignored Range (or there was nothing to resume)
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else expected
        received = 0
        try:
            with open(part, mode) as out:
                while chunk := _read(response, settings.chunk, have + received):
                    out.write(chunk)
                    received += len(chunk)
                    tally.received += len(chunk)
                    if progress is not None:
                        progress(have + received, total)
                out.flush()
                os.fsync(out.fileno())
        except OSError as err:  # the network side raises _Retryable, so this is the disk
            raise WeightsError(f"cannot write {part}: {err}") from None
    if total is not None and have + received < total:
        raise _Retryable(f"connection closed after {have + received:,} of {total:,} bytes")


def _range_start(content_range: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes START-END/TOTAL``, or None when absent/malformed."""
    if not content_range or not content_range.startswith("bytes "):
        return None
    head = content_range[6:].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _read(response: http.client.HTTPResponse, size: int, offset: int) -> bytes:
    """The next bytes of the body (b"" at its end); a lost connection or timeout is retryable."""
    try:
        return response.read(size)
    except (OSError, http.client.HTTPException) as err:
        raise _Retryable(f"connection lost after {offset:,} bytes ({_reason(err)})") from None


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    text = " ".join(str(reason).split()) or type(err).__name__
    return text if len(text) < 160 else text[:157] + "..."

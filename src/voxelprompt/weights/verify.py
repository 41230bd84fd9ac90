"""Digests of a local weights file and their comparison with the registry's record."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.weights.cache import weight_path
from voxelprompt.weights.registry import HashTrust, WeightFile

__all__ = ["Digests", "Verdict", "VerifyResult", "file_digests", "judge", "verify"]

_CHUNK = 4 << 20


@dataclass(frozen=True)
class Digests:
    """A file's size in bytes and its SHA-256 and MD5 (lowercase hex)."""

    size: int
    sha256: str
    md5: str


def file_digests(path: Path) -> Digests:
    """Read ``path`` once and return its size, SHA-256 and MD5 (MD5 only because MONAI records it)."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return Digests(size=size, sha256=sha.hexdigest(), md5=md5.hexdigest())


class Verdict(str, enum.Enum):
    """Outcome of comparing a file with the registry: ``ok`` (its digest matches), ``unverifiable``
    (no digest is recorded; the size, where known, matches), ``mismatch``, ``missing``."""

    ok = "ok"
    unverifiable = "unverifiable"
    mismatch = "mismatch"
    missing = "missing"


@dataclass(frozen=True)
class VerifyResult:
    """A weight's verdict, its cache path, the local digests (None when missing) and a one-line reason."""

    weight: WeightFile
    path: Path
    verdict: Verdict
    digests: Digests | None
    detail: str


def judge(weight: WeightFile, digests: Digests) -> tuple[Verdict, str]:
    """Compare ``digests`` of a local file with ``weight``'s record: the verdict and a short reason."""
    if weight.size_bytes is not None and digests.size != weight.size_bytes:
        return Verdict.mismatch, f"size {digests.size:,} bytes, expected {weight.size_bytes:,}"
    recorded = weight.digest
    if recorded is None:
        return Verdict.unverifiable, f"no upstream hash to compare; local sha256 {digests.sha256}"
    algorithm, expected = recorded
    actual = getattr(digests, algorithm)
    if actual != expected:
        return Verdict.mismatch, f"{algorithm} {actual}, expected {expected}"
    flag = " (third-party record: unverified upstream hash)" if weight.trust is HashTrust.third_party else ""
    also = "" if algorithm == "sha256" else f"; sha256 {digests.sha256}"
    return Verdict.ok, f"{algorithm} matches{flag}{also}"


def verify(weight: WeightFile) -> VerifyResult:
    """Hash ``weight``'s cached file and judge it against the registry (never raises for a bad file)."""
    path = weight_path(weight)
    if not path.is_file():
        return VerifyResult(weight, path, Verdict.missing, None, f"not downloaded ({path})")
    digests = file_digests(path)
    verdict, detail = judge(weight, digests)
    return VerifyResult(weight, path, verdict, digests, detail)

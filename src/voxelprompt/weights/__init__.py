"""Official checkpoints: the registry (torch-free), the cache folder, resumable verified download.

``voxelprompt weights list|fetch|verify|path`` is the command-line face; README.md here says where
each file comes from and how far its recorded size and digest can be trusted.
"""

from __future__ import annotations

from voxelprompt.weights.cache import (
    home,
    mirror_urls,
    mirrors_from_env,
    offline_from_env,
    part_path,
    resolve_checkpoint,
    weight_path,
)
from voxelprompt.weights.download import FetchResult, FetchSettings, fetch, manual_route, offline_message
from voxelprompt.weights.registry import WEIGHTS, HashTrust, WeightFile, get_weight, weight_names
from voxelprompt.weights.verify import Digests, Verdict, VerifyResult, file_digests, verify

__all__ = [
    "WEIGHTS",
    "HashTrust",
    "WeightFile",
    "get_weight",
    "weight_names",
    "home",
    "weight_path",
    "part_path",
    "offline_from_env",
    "mirrors_from_env",
    "mirror_urls",
    "resolve_checkpoint",
    "FetchSettings",
    "FetchResult",
    "fetch",
    "manual_route",
    "offline_message",
    "Digests",
    "Verdict",
    "VerifyResult",
    "file_digests",
    "verify",
]

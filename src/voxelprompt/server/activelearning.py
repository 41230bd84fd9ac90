"""Active learning: which unlabelled image of the datastore to label next (``POST
/activelearning/{strategy}``, 3D Slicer's "Next Sample"). Strategies are objects in a registry:
``first`` (the first unlabelled id in sorted order), ``random`` (any unlabelled image, seeded by
the request's ``seed`` when given) and ``confidence`` (the unlabelled image whose automatic result
the model is least sure of: lowest mean foreground probability,
:meth:`~voxelprompt.families.vista3d.inference.segmenter.Vista3DSegmenter.foreground_confidence`; at most
``max_images`` images are scored, each as one request through the compute gate). The reply is
MONAI Label's: ``{"id": ...}`` plus the strategy's numbers, or ``{}`` when every image is labelled.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxelprompt.errors import PromptError
from voxelprompt.server.datastore import NotFound, StoredImage

if TYPE_CHECKING:
    from voxelprompt.server.service import SegmentationService

__all__ = ["Strategy", "STRATEGIES", "next_sample"]


@dataclass(frozen=True)
class Strategy:
    """One active learning strategy: ``pick(service, unlabelled images, params) -> reply``."""

    description: str
    pick: Callable[[SegmentationService, list[StoredImage], Mapping[str, Any]], dict[str, Any]]


def _first(service: SegmentationService, images: list[StoredImage], params: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": sorted(r.image_id for r in images)[0]}


def _random(service: SegmentationService, images: list[StoredImage], params: Mapping[str, Any]) -> dict[str, Any]:
    seed = params.get("seed")
    rng = random.Random(seed if isinstance(seed, int) and not isinstance(seed, bool) else None)
    ids = sorted(r.image_id for r in images)
    return {"id": rng.choice(ids), "weight": round(1.0 / len(ids), 6)}


def _confidence(service: SegmentationService, images: list[StoredImage], params: Mapping[str, Any]) -> dict[str, Any]:
    limit = params.get("max_images", 8)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise PromptError(f"max_images must be an integer >= 1, got {limit!r}"[:200])
    model = _scoring_model(service, params.get("model"))
    from voxelprompt.families import import_target

    score = import_target(model.family.confidence)
    scores = {}
    for record in sorted(images, key=lambda r: r.added)[:limit]:
        volume = service.store.volume(record.image_id)
        with service.gate.turn():
            scores[record.image_id] = score(model.segmenter, volume)
    chosen = min(scores, key=lambda i: (scores[i], i))
    return {"id": chosen, "confidence": round(scores[chosen], 6), "model": model.name, "scored": len(scores)}


def _scoring_model(service: SegmentationService, name: Any):
    candidates = [m for m in service.models if m.family.confidence is not None]  # the family says it can score
    if name is not None:
        candidates = [m for m in candidates if m.name == name]
    if not candidates:
        raise PromptError(f"no loaded model can score confidence{f' named {name!r}' if name is not None else ''}; use random or first")
    return candidates[0]


#: Strategy name -> strategy (``/info/``'s ``strategies``).
STRATEGIES: dict[str, Strategy] = {
    "first": Strategy("the first unlabelled image (sorted ids)", _first),
    "random": Strategy("a random unlabelled image", _random),
    "confidence": Strategy("the unlabelled image with the lowest mean foreground confidence of the automatic result", _confidence),
}


def next_sample(service: SegmentationService, strategy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The next image to label by ``strategy`` (images without a label tagged ``label_tag``,
    default ``final``; MONAI Label sessions' images are never offered).

    Raises:
        NotFound: unknown strategy.
        PromptError: bad params.
    """
    chosen = STRATEGIES.get(strategy)
    if chosen is None:
        raise NotFound(f"unknown active learning strategy {strategy!r}; this server has {', '.join(STRATEGIES)}")
    tag = params.get("label_tag", "final")
    images = [r for r in service.store.images() if tag not in r.labels and not r.image_id.startswith("session-")]
    if not images:
        return {}
    reply = chosen.pick(service, images, params)
    record = service.store.image(reply["id"])
    return {**reply, "strategy": strategy, "ts": int(record.added), "shape": list(record.shape), "spacing": list(record.spacing)}

"""The model used when none is named: the official VISTA3D bundle weights when cached, downloaded
with the user's consent, else the shipped demo model. One function for the API, CLI, server and batch.

Consent is what a user expects: an explicit ``download=True`` (the CLI's ``--download``), or a yes
to ``ask`` (the CLI asks only on a terminal; scripts, CI and piped stdin are never asked). Without
it, offline, or when no source of the weights can be reached, the demo model is used and the
reason comes back as one line naming how to get the real weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.errors import WeightsUnreachable
from voxelprompt.weights.cache import mirror_urls, mirrors_from_env, offline_from_env, weight_path
from voxelprompt.weights.download import FetchSettings, Progress, fetch, manual_route
from voxelprompt.weights.registry import WeightFile, get_weight

__all__ = ["DEFAULT_WEIGHTS", "DEMO_NOTICE", "DefaultModel", "Consent", "default_model", "download_question"]

#: The registry entry "the default model" stands for (the weights MONAI Label runs).
DEFAULT_WEIGHTS = "vista3d-bundle"

#: How every line about the demo model starts.
DEMO_NOTICE = (
    "WARNING: the shipped DEMO model segments this image: it was trained on synthetic CT phantoms only and its "
    "labels on a real CT are not meaningful"
)

#: ``ask(question) -> yes``: a person's consent to a download; None when nobody can be asked.
Consent = Callable[[str], bool]


@dataclass(frozen=True)
class DefaultModel:
    """What "no checkpoint" resolved to.

    Args:
        checkpoint: the file to load: the official weights in the cache, or the demo model's.
        demo: ``checkpoint`` is the shipped demo model.
        message: one line for the user (why the demo model, or what was downloaded); None when
            the cached official weights are used.
    """

    checkpoint: Path
    demo: bool
    message: str | None = None


def download_question(weight: WeightFile, path: Path) -> str:
    """The consent question: size, licence, source and destination of the download."""
    return (
        f"The official VISTA3D weights are not downloaded. Download {weight.file_name} ({weight.size_note}; "
        f"licence: {weight.licence}) from {weight.urls[0]} into {path}?"
    )


def default_model(
    *,
    download: bool = False,
    offline: bool = False,
    ask: Consent | None = None,
    urls: Sequence[str] | None = None,
    settings: FetchSettings | None = None,
    progress: Progress | None = None,
) -> DefaultModel:
    """Resolve the default model.

    Args:
        download: the user asked for the download (``--download``); fetched without a question.
        offline: never touch the network (also ``VOXELPROMPT_OFFLINE=1``).
        ask: asked once for consent when the weights are missing and ``download`` is False.
        urls: where to download from; None: ``VOXELPROMPT_WEIGHTS_MIRRORS``, else the registry's URLs.
        settings, progress: as :func:`voxelprompt.weights.fetch`.

    Returns:
        The cached (or just downloaded and verified) official weights, or the demo model with the
        one-line reason.

    Raises:
        WeightsError: a download that fails other than by an unreachable network (a corrupt
            file, HTTP errors on every URL), or a cached file that does not match its record.
    """
    from voxelprompt.families.vista3d.inference.default_model import default_checkpoint

    weight = get_weight(DEFAULT_WEIGHTS)
    path = weight_path(weight)
    if path.is_file():  # verified when it was fetched; 'voxelprompt weights verify' re-hashes it
        return DefaultModel(path, demo=False)

    def demo(reason: str) -> DefaultModel:
        return DefaultModel(default_checkpoint(), demo=True, message=f"{DEMO_NOTICE}; {reason}")

    if offline or offline_from_env():
        return demo(f"offline, and the official VISTA3D weights are not cached: {manual_route(weight, path)}")
    if not download and ask is not None:
        download = ask(download_question(weight, path))
    if not download:
        return demo(
            f"the official VISTA3D weights ({weight.size_note.split(' (')[0]}) are not downloaded: pass --download, run "
            f"'voxelprompt weights fetch {weight.name}', or pass --checkpoint FILE"
        )
    bases = mirrors_from_env()
    if urls is None and bases:
        urls = mirror_urls(weight, bases)
    try:
        result = fetch(weight, urls=urls, settings=settings, progress=progress)
    except WeightsUnreachable as err:
        return demo(str(err))
    return DefaultModel(result.path, demo=False, message=f"{weight.name}: downloaded to {result.path}; {result.detail}")

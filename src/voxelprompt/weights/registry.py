"""The official checkpoints voxelprompt knows how to fetch: where they are published, their
size and digests, and how much those digests can be trusted.

Torch-free data (``voxelprompt weights list`` is instant). Every fact below was read from a public
record named in the entry's ``hash_source`` / ``source_page``; where the publisher records no
digest the entry says so instead of inventing one (see README.md beside this file).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxelprompt.errors import WeightsError

__all__ = ["HashTrust", "WeightFile", "WEIGHTS", "get_weight", "weight_names"]


class HashTrust(str, enum.Enum):
    """Where a weight's recorded digest comes from.

    ``upstream``: the publisher's own record (a Hugging Face Git LFS pointer, a MONAI bundle's
    ``large_files.yml``). ``third_party``: recorded by others who downloaded the file; not read
    from the publisher, so flagged "unverified upstream hash". ``none``: no digest is known; a
    download is accepted on its size alone and ``verify`` can only report the local hash.
    """

    upstream = "upstream"
    third_party = "third_party"
    none = "none"


@dataclass(frozen=True)
class WeightFile:
    """One downloadable checkpoint file.

    Args:
        name: registry name (``voxelprompt weights fetch NAME``, ``-c NAME``).
        family: model family in :data:`voxelprompt.families.FAMILIES` that loads the file.
        description: one line on what the weights are.
        file_name: the file's name in the cache (``$VOXELPROMPT_HOME/weights/NAME/FILE``).
        urls: download locations, tried in order (mirrors of the same bytes).
        size_bytes: exact size in bytes where published, else None.
        size_note: human-readable size as published (also when only a rounded size is known).
        sha256: lowercase hex SHA-256 of the file, or None where no record gives one.
        md5: lowercase hex MD5 where that is the only digest the publisher records, else None.
        trust: where ``sha256``/``md5`` come from (:class:`HashTrust`).
        hash_source: the record the digests and size were read from.
        licence: the weights' licence as the source page states it.
        source_page: the page that documents the weights.
        manual: other places to get the file by hand (pages needing a browser), for offline users.
    """

    name: str
    family: str
    description: str
    file_name: str
    urls: tuple[str, ...]
    size_bytes: int | None
    size_note: str
    sha256: str | None
    md5: str | None
    trust: HashTrust
    hash_source: str
    licence: str
    source_page: str
    manual: tuple[str, ...] = ()

    @property
    def digest(self) -> tuple[str, str] | None:
        """The digest a download is checked against: ``("sha256", hex)``, else ``("md5", hex)``, else None."""
        if self.sha256:
            return "sha256", self.sha256
        if self.md5:
            return "md5", self.md5
        return None

    @property
    def hash_summary(self) -> str:
        """One phrase on what a download of this file is checked against."""
        if self.trust is HashTrust.none or self.digest is None:
            return "no upstream hash (size only; verify reports the local sha256)"
        algorithm, value = self.digest
        if self.trust is HashTrust.third_party:
            return f"{algorithm} {value[:12]}... from third-party records (unverified upstream hash)"
        extra = "" if algorithm == "sha256" else "; no upstream sha256"
        return f"{algorithm} {value[:12]}... (upstream{extra})"


_MODEL_ZOO = "https://github.com/Project-MONAI/model-zoo/tree/dev/models/vista3d"

WEIGHTS: dict[str, WeightFile] = {
    w.name: w
    for w in (
        WeightFile(
            name="vista3d-bundle",
            family="vista3d",
            description="VISTA3D, MONAI model zoo bundle models/model.pt (MONAI >= 1.4 layer names)",
            file_name="model.pt",
            urls=(
                "https://developer.download.nvidia.com/assets/Clara/monai/tutorials/model_zoo/model_vista3d.pt",
                "https://huggingface.co/MONAI/vista3d/resolve/main/models/model.pt",
            ),
            size_bytes=None,
            size_note="872 MB (rounded, Hugging Face MONAI/vista3d listing)",
            sha256=None,
            md5="6ce45a8edde4400c5d28d5e74d7b61d5",
            trust=HashTrust.upstream,
            hash_source="models/vista3d/large_files.yml of Project-MONAI/model-zoo (hash_type md5, bundle 0.4.6 onwards)",
            licence="NCLS v1 (weights; per the bundle README), code Apache-2.0",
            source_page=_MODEL_ZOO,
        ),
        WeightFile(
            name="vista3d-research",
            family="vista3d",
            description="VISTA3D research checkpoint model_monai1.3.pt (Project-MONAI/VISTA, MONAI 1.3 layer names)",
            file_name="model_monai1.3.pt",
            urls=("https://huggingface.co/nvidia/NV-Segment-CT/resolve/main/vista3d_pretrained_model/model_monai1.3.pt",),
            size_bytes=872_073_824,
            size_note="872,073,824 bytes (third-party records)",
            sha256="889042ab37dbb9f9b2467e4a91654fb3b56482b74b98d315fc89026ab1570af8",
            md5=None,
            trust=HashTrust.third_party,
            hash_source=(
                "two independent public download manifests of nvidia/NV-Segment-CT "
                "vista3d_pretrained_model/model_monai1.3.pt; the Hugging Face LFS page itself was not read"
            ),
            licence="NVIDIA Open Model License (per the VISTA README's model table)",
            source_page="https://github.com/Project-MONAI/VISTA/tree/main/vista3d",
            manual=(
                "https://huggingface.co/nvidia/NV-Segment-CT (Files: vista3d_pretrained_model/model_monai1.3.pt)",
            ),
        ),
        WeightFile(
            name="segvol-v1",
            family="segvol",
            description="SegVol v1 (BAAI-DCAI/SegVol), SegVol_v1.pth with the CLIP text tower",
            file_name="SegVol_v1.pth",
            # The file left the repository's main branch in commit 516701d (replaced by the
            # transformers-format pytorch_model.bin), so the URL pins the commit that added it.
            urls=("https://huggingface.co/BAAI/SegVol/resolve/f7b86a9d7abb4c8a0d5069ce7af81357b7ab1acc/SegVol_v1.pth",),
            size_bytes=1_660_308_695,
            size_note="1,660,308,695 bytes (Git LFS pointer)",
            sha256="b751dc95f1a0c0c6086c1e6fa7f8a17bbb87635e5226e15f5d156fbd364dbb85",
            md5=None,
            trust=HashTrust.upstream,
            hash_source="Git LFS pointer of SegVol_v1.pth in BAAI/SegVol commit f7b86a9 (Hugging Face)",
            licence="MIT (BAAI-DCAI/SegVol repository LICENSE; the Hugging Face card names none)",
            source_page="https://huggingface.co/BAAI/SegVol",
            manual=("Google Drive folder linked from the BAAI-DCAI/SegVol README (2023-11-24 news item)",),
        ),
    )
}


def weight_names() -> list[str]:
    """Registry names, in the order ``weights list`` shows them."""
    return list(WEIGHTS)


def get_weight(name: str) -> WeightFile:
    """The registry entry called ``name``.

    Raises:
        WeightsError: ``name`` is not in the registry (the message lists the known names).
    """
    try:
        return WEIGHTS[name]
    except KeyError:
        raise WeightsError(f"unknown weights {name!r}; known: {', '.join(WEIGHTS)}") from None

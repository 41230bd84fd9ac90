"""How far a reader trusts the file it is given: the one policy for files that come from others.

A file on the user's own disk (``voxelprompt segment``) may point at other files (a NRRD header's
``data file``, a DICOM folder) and may be as large as the machine allows. A file a client uploads
to the server may not: :data:`UNTRUSTED` reads only the bytes of the file itself, through the one
parser its suffix names, and refuses a header whose decoded volume exceeds a size budget before a
voxel is allocated (see :func:`voxelprompt.imageio.preflight.check_untrusted_header`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["ReadPolicy", "TRUSTED", "UNTRUSTED"]


@dataclass(frozen=True)
class ReadPolicy:
    """What a reader may follow and allocate.

    Args:
        external_files: follow references to other files (a NRRD ``data file``, a detached
            ``.nhdr`` header, a DICOM folder). False: the file's own bytes only, NRRD through
            ITK's NRRD reader alone (never a reader picked by sniffing the content).
        max_decoded_bytes: largest decoded volume, in bytes of the returned array (float32 or
            wider), checked from the header before allocation; None: only the machine's
            available memory limits it.
    """

    external_files: bool = True
    max_decoded_bytes: int | None = None

    def with_budget(self, max_decoded_bytes: int | None) -> ReadPolicy:
        """The same policy with another decoded-size budget."""
        return replace(self, max_decoded_bytes=max_decoded_bytes)


#: Files of the user's own (``voxelprompt segment``, the batch runner).
TRUSTED = ReadPolicy()
#: Files a client sent (the server's uploads): no references out of the file.
UNTRUSTED = ReadPolicy(external_files=False)

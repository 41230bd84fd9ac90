"""voxelprompt: promptable 3D CT segmentation (VISTA3D, SegVol) behind one API, CLI and server.

The public API (:mod:`voxelprompt.api`) is re-exported here and imported on first use, so that
``import voxelprompt`` stays instant::

    import voxelprompt
    model = voxelprompt.load_model("model.pt")          # any family; recognised from the file
    result = voxelprompt.segment("ct.nii.gz", segmenter=model, classes=["liver"])
"""

from __future__ import annotations

from typing import Any

from voxelprompt._version import __version__

__all__ = ["__version__", "load_model", "segment", "prepare_segment", "run_segment", "open_session", "identify"]

_API = {"load_model", "segment", "prepare_segment", "run_segment", "open_session", "identify"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from voxelprompt import api

        return getattr(api, name)
    raise AttributeError(f"module 'voxelprompt' has no attribute {name!r}")

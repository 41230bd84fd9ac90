"""voxelprompt: promptable 3D CT segmentation (VISTA3D, SegVol) behind one API, CLI and server."""

from __future__ import annotations

__version__ = "0.1.0"

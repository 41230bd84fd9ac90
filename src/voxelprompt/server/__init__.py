"""``voxelprompt serve``: one process that holds the models and answers viewers.

Layers, each usable alone: :mod:`.compute` (the compute lock and its queue), :mod:`.datastore`
(uploaded images under opaque keys), :mod:`.sessions` (interactive sessions per model and image),
:mod:`.service` (the one inference API), the MONAI Label adapter (:mod:`.monailabel`), the
browser viewer (``viewer/``), :mod:`.middleware` (token, upload limit, access log) and
:mod:`.app` (the FastAPI application). See ``README.md`` in this folder.

Its packages are the "server" extra: without them importing this package is one
:class:`~voxelprompt.extras.MissingExtraError` line naming ``pip install "voxelprompt[server]"``.
"""

from voxelprompt.extras import require

require("server", "voxelprompt serve")

"""The nnInteractive remote protocol (``nninteractive-client``) over voxelprompt's models (README.md)."""

from voxelprompt.server.nninteractive.routes import PREFIX, LeaseLimits, nninteractive_router

__all__ = ["PREFIX", "LeaseLimits", "nninteractive_router"]

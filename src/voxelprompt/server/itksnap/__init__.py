"""ITK-SNAP's deep-learning protocol (``itksnap-dls``) over voxelprompt's models (README.md)."""

from voxelprompt.server.itksnap.routes import ACCESS, ItkSnapSettings, is_itksnap_path, itksnap_router

__all__ = ["ACCESS", "ItkSnapSettings", "is_itksnap_path", "itksnap_router"]

"""The package version, in a module of its own so that any module may import it without importing
the package's lazy API (and with it an import circle)."""

__version__ = "0.1.0"

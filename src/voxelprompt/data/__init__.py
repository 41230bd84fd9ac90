"""Synthetic data: procedural CT phantoms with VISTA3D label maps for tests, demos and benchmarks."""

from __future__ import annotations

from voxelprompt.data.phantom import (
    LESION_CLASSES,
    ContrastPhase,
    PhantomConfig,
    make_phantom,
    resolve_phase,
    write_phantom_dataset,
)

__all__ = ["LESION_CLASSES", "ContrastPhase", "PhantomConfig", "make_phantom", "resolve_phase", "write_phantom_dataset"]

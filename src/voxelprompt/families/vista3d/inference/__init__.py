"""VISTA3D inference: the official pre- and post-processing (``profiles``, ``preprocess``,
``postprocess``), sliding windows and clicks (``windows``, ``refine``: Algorithm 1), the segmenter,
interactive sessions, the shipped demo model, and the performance ``engine`` (see README.md)."""

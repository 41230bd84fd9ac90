"""VISTA3D inference: the official pre- and post-processing (``profiles``, ``preprocess``,
``postprocess``), sliding windows and clicks (``windows``, ``refine``: Algorithm 1), the strategies
a segmenter is built from (``class_engines``: reference, exact, fast; ``click_windows``: centred,
grid; each chosen once by its builder), the segmenter (``segmenter``, with ``networks``,
``class_prompts`` and ``click_prompts``), interactive sessions, the shipped demo model, and the
performance ``engine`` (see README.md)."""

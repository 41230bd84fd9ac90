"""Output formats: one registry (:mod:`.registry`) of writers used by ``voxelprompt segment
--output-format``, the batch runner and the server's ``output=``.

A format is an :class:`~voxelprompt.outputs.registry.OutputFormat` record: its name, file
endings, one-line description, what it needs (a DICOM series, the image, label names, the model),
its pip extra, and a writer ``(OutputContext, path) -> list[Path]``. voxelprompt's own are in
:mod:`.builtin` (NIfTI, NRRD, ``.seg.nrrd``, DICOM-SEG, RT-STRUCT, statistics, preview); another
package adds one through the ``voxelprompt.outputs`` entry-point group, with no edit here.
"""

from voxelprompt.outputs.context import OutputContext, Provenance
from voxelprompt.outputs.files import check_output, output_bytes, write_output
from voxelprompt.outputs.registry import (
    BUILTIN_OUTPUTS,
    ENTRY_POINT_GROUP,
    NEEDS,
    OUTPUT_FORMATS,
    OutputFormat,
    check_output_formats,
    format_for_path,
    get_output_format,
)

__all__ = [
    "BUILTIN_OUTPUTS",
    "ENTRY_POINT_GROUP",
    "NEEDS",
    "OUTPUT_FORMATS",
    "OutputContext",
    "OutputFormat",
    "Provenance",
    "check_output",
    "check_output_formats",
    "format_for_path",
    "get_output_format",
    "output_bytes",
    "write_output",
]

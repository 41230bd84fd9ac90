"""How one label value is described in segmentation files: its name, colour, SNOMED CT codes and
RT ROI interpreted type.

DICOM-SEG, RT-STRUCT and 3D Slicer ``.seg.nrrd`` writers use this one rule, so all files describe a
label alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxelprompt.catalog.colors import Code, class_color, vista3d_colors
from voxelprompt.catalog.labels import normalize_name

__all__ = ["GENERIC_CATEGORY", "GENERIC_TYPE", "ORGAN", "SegmentStyle", "segment_style"]

#: Category and type of a label without a SNOMED CT code of its own: SCT 85756007 "Tissue" (the
#: generic concept dcmqi and 3D Slicer fall back to).
GENERIC_CATEGORY = Code(value="85756007", scheme="SCT", meaning="Tissue")
GENERIC_TYPE = Code(value="85756007", scheme="SCT", meaning="Tissue")

#: RT ROI Interpreted Type (DICOM defined term) of a coded anatomical class. Lesions and labels
#: without codes get "" (unknown, allowed: the attribute is type 2): GTV, OAR and the like are
#: planning decisions a model cannot make.
ORGAN = "ORGAN"

# Category of lesions (tumours, cysts) in the catalog's codes: never typed ORGAN.
_ALTERED_STRUCTURE = "49755003"


@dataclass(frozen=True)
class SegmentStyle:
    """The description of one label value in a segmentation file.

    Args:
        value: the label value (> 0).
        name: the label's name, as given.
        rgb: display colour, 0..255 per channel (:func:`voxelprompt.catalog.class_color` of the value,
            the colour overlays use).
        category: segmented property category (SNOMED CT).
        type: segmented property type (SNOMED CT).
        modifier: type modifier (laterality: SCT Left / Right), None when there is none.
        coded: True when the codes are the VISTA3D class's own; False for the generic "Tissue".
        rt_roi_type: RT ROI Interpreted Type: :data:`ORGAN` for a coded anatomical class, "" (unknown)
            for a lesion or an uncoded label.
    """

    value: int
    name: str
    rgb: tuple[int, int, int]
    category: Code
    type: Code
    modifier: Code | None
    coded: bool
    rt_roi_type: str = ""


def segment_style(value: int, name: str) -> SegmentStyle:
    """Colour and codes of label ``value`` named ``name``.

    The VISTA3D class codes of :func:`voxelprompt.catalog.vista3d_colors` (from 3D Slicer's General
    Anatomy list; a broader concept for some classes, e.g. "Rib" for "left rib 3") are used only
    when ``name`` names that class (compared after :func:`~voxelprompt.catalog.normalize_name`) and
    the table's codes describe it (mapping other than ``related``); any other label, such as an
    object id or a class of another model given its own value, is coded SCT 85756007 "Tissue"
    (:data:`GENERIC_CATEGORY`, :data:`GENERIC_TYPE`).

    Args:
        value: a label value >= 1.
        name: its name (the segment label written to the file).

    Raises:
        ValueError: ``value`` below 1.
    """
    rgb = class_color(value)  # raises for values below 1
    record = vista3d_colors().get(int(value))
    if record is not None and record.mapping != "related" and normalize_name(name) == normalize_name(record.name):
        rt_roi_type = "" if record.category.value == _ALTERED_STRUCTURE else ORGAN
        return SegmentStyle(int(value), name, rgb, record.category, record.type, record.modifier, True, rt_roi_type)
    return SegmentStyle(int(value), name, rgb, GENERIC_CATEGORY, GENERIC_TYPE, None, coded=False)

"""Write voxelprompt/catalog/vista3d_colors.json: a 3D Slicer anatomy colour for every VISTA3D class.

    python scripts/make_color_table.py SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json [-o OUT]

The input is dcmqi's ``doc/segContexts/SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json``
(BSD-3-Clause, copied to ``voxelprompt/catalog/SLICER_COLORS_LICENSE.txt``). Each VISTA3D class is
matched to one Slicer entry, by its name or by the hand mapping below, and keeps that entry's
colour and SNOMED CT category / type / modifier codes (what a DICOM-SEG writer needs).

Lightness rule: classes that land on the same Slicer colour (vertebrae of one spine segment, ribs,
muscles, arteries, veins, masses, left/right organ pairs) form a family, ordered by class id with
exact and synonym matches first (so the heart keeps Slicer's heart colour, not the atrial
appendage). Member n keeps the hue and saturation and has its HLS lightness moved by ``n % 3`` steps
of 0.12 away from the nearer end (darker when the base lightness is above 0.5, lighter otherwise),
so consecutive members, such as adjacent vertebrae, always differ and the first keeps Slicer's
colour exactly. Group classes (kidney, lung, bone) take their entry's colour unchanged: they never
share a label map with their subclasses.

Distinctness rule: Slicer gives many neighbouring organs near-identical salmon/brown colours
(liver, stomach, aorta, heart, right kidney, bladder). Classes are visited in the order above
(exact and synonym matches first, then by id); a class whose colour lies within ``MIN_DELTA_E``
(CIEDE2000) of a colour already placed for another Slicer entry moves to the nearest colour that
clears every placed one: hue steps of 0.02 (not for shaded family members, which keep their hue)
and lightness steps of 0.05, the smallest change winning. A class that clears them keeps its
colour, so the first of each look-alike set keeps Slicer's colour exactly.
"""

from __future__ import annotations

import argparse
import colorsys
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from voxelprompt.catalog import GROUPS, vista3d_catalog

OUT = Path(__file__).resolve().parents[1] / "voxelprompt" / "catalog" / "vista3d_colors.json"
SOURCE = (
    "QIICR/dcmqi doc/segContexts/SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json "
    "(3D Slicer General Anatomy colours; BSD-3-Clause, see SLICER_COLORS_LICENSE.txt)"
)
STEP = 0.12  # lightness change per family position
CYCLE = 3  # positions before the lightness pattern repeats
MIN_DELTA_E = 10.0  # CIEDE2000 between classes of different Slicer entries (~ clearly different)
HUE_STEP, HUE_STEPS = 0.02, 25  # candidate hue moves: +-0.02 .. +-0.5
LIGHT_STEP, LIGHT_STEPS = 0.05, 6  # candidate lightness moves: +-0.05 .. +-0.3

MAPPING_KINDS = {
    "exact": "the Slicer label is the VISTA3D name",
    "synonym": "same structure, other wording",
    "broader": "the Slicer concept includes the class (rib 3 -> rib, iliac artery -> artery)",
    "part of": "the class is a part of the Slicer structure (L1 -> lumbar spine)",
    "related": "a neighbouring concept lends its colour; its codes do not describe the class",
}

# VISTA3D name -> (Slicer label, mapping kind), for names that are not a Slicer label verbatim.
# The Slicer general anatomy list has no entry for the vena cava, portal, iliac, carotid or
# subclavian vessels, the long bones, hip bone, sacrum, gluteal or back muscles, the atrial
# appendage or the airway, so those take the nearest more general entry.
NAME_MAP: dict[str, tuple[str, str]] = {
    "bladder": ("urinary bladder", "synonym"),
    "left clavicula": ("left clavicle", "synonym"),
    "right clavicula": ("right clavicle", "synonym"),
    "left lung upper lobe": ("superior lobe of left lung", "synonym"),
    "left lung lower lobe": ("inferior lobe of left lung", "synonym"),
    "right lung upper lobe": ("superior lobe of right lung", "synonym"),
    "right lung middle lobe": ("middle lobe of right lung", "synonym"),
    "right lung lower lobe": ("inferior lobe of right lung", "synonym"),
    "inferior vena cava": ("vein", "broader"),
    "superior vena cava": ("vein", "broader"),
    "portal vein and splenic vein": ("vein", "broader"),
    "hepatic vessel": ("vein", "broader"),  # MSD Task08: intrahepatic portal and hepatic veins
    "left iliac vena": ("vein", "broader"),
    "right iliac vena": ("vein", "broader"),
    "left brachiocephalic vein": ("vein", "broader"),
    "right brachiocephalic vein": ("vein", "broader"),
    "pulmonary vein": ("vein", "broader"),
    "left iliac artery": ("artery", "broader"),
    "right iliac artery": ("artery", "broader"),
    "brachiocephalic trunk": ("artery", "broader"),
    "left common carotid artery": ("artery", "broader"),
    "right common carotid artery": ("artery", "broader"),
    "left subclavian artery": ("artery", "broader"),
    "right subclavian artery": ("artery", "broader"),
    "lung tumor": ("mass", "broader"),
    "pancreatic tumor": ("mass", "broader"),
    "hepatic tumor": ("mass", "broader"),
    "colon cancer primaries": ("mass", "broader"),
    "bone lesion": ("mass", "broader"),
    "left kidney cyst": ("cyst", "broader"),
    "right kidney cyst": ("cyst", "broader"),
    "left humerus": ("bone", "broader"),
    "right humerus": ("bone", "broader"),
    "left scapula": ("bone", "broader"),
    "right scapula": ("bone", "broader"),
    "left femur": ("bone", "broader"),
    "right femur": ("bone", "broader"),
    "left hip": ("bone", "broader"),  # TotalSegmentator's hip: the hip bone (os coxae)
    "right hip": ("bone", "broader"),
    "sacrum": ("bone", "broader"),
    "vertebrae S1": ("bone", "broader"),  # part of the sacrum; Slicer has no sacral spine entry
    "costal cartilages": ("cartilage", "broader"),
    "left atrial appendage": ("heart", "part of"),
    "airway": ("trachea", "related"),  # trachea and bronchi; Slicer lists only the trachea
    # group classes of voxelprompt.catalog (their Slicer types carry only left/right modifiers)
    "kidney": ("kidney", "exact"),
    "lung": ("lung", "exact"),
}
# Families matched by pattern: (regular expression on the VISTA3D name, Slicer label, kind).
PATTERN_MAP: list[tuple[str, str, str]] = [
    (r"vertebrae L\d+", "lumbar vertebral column", "part of"),
    (r"vertebrae T\d+", "thoracic vertebral column", "part of"),
    (r"vertebrae C\d+", "cervical vertebral column", "part of"),
    (r"(left|right) rib \d+", "ribs", "broader"),
    (r"(left|right) (gluteus (maximus|medius|minimus)|autochthon|iliopsoas)", "muscle", "broader"),
]
# Names that start with "left" without being one of a left/right pair.
NOT_LATERAL = {"left atrial appendage"}


@dataclass(frozen=True)
class SlicerEntry:
    """One colour of the Slicer list with its SNOMED CT codes (modifier None without laterality)."""

    label: str
    rgb: tuple[int, int, int]
    category: dict[str, str]
    type: dict[str, str]
    modifier: dict[str, str] | None


def _code(item: dict) -> dict[str, str]:
    return {k: str(item[k]) for k in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning")}


def read_slicer_entries(path: Path) -> dict[str, SlicerEntry]:
    """Slicer label (lower case) -> entry; the first of duplicated labels wins.

    A type that only has left/right modifiers (kidney, lung, adrenal gland, ...) is also listed
    under its lower-cased CodeMeaning, without modifier, with the colour its modifiers share.
    """
    raw = json.loads(path.read_text())
    entries: dict[str, SlicerEntry] = {}
    for category in raw["SegmentationCodes"]["Category"]:
        for typ in category["Type"]:
            found: list[SlicerEntry] = []
            if "3dSlicerLabel" in typ:
                found.append(_entry(typ["3dSlicerLabel"], typ["recommendedDisplayRGBValue"], category, typ, None))
            for mod in typ.get("Modifier", []):
                found.append(_entry(mod["3dSlicerLabel"], mod["recommendedDisplayRGBValue"], category, typ, mod))
            shared = {e.rgb for e in found}
            if "3dSlicerLabel" not in typ and len(shared) == 1:
                found.append(_entry(typ["CodeMeaning"], list(shared.pop()), category, typ, None))
            for e in found:
                entries.setdefault(e.label, e)
    return entries


def _entry(label: str, rgb: list[int], category: dict, typ: dict, mod: dict | None) -> SlicerEntry:
    return SlicerEntry(
        label=label.lower(),
        rgb=tuple(int(c) for c in rgb),  # type: ignore[arg-type]
        category=_code(category),
        type=_code(typ),
        modifier=None if mod is None else _code(mod),
    )


def match(name: str, entries: dict[str, SlicerEntry]) -> tuple[SlicerEntry, str]:
    """The Slicer entry of a VISTA3D class name and how it was matched (a key of MAPPING_KINDS)."""
    if name in NAME_MAP:
        label, kind = NAME_MAP[name]
    elif name.lower() in entries:
        label, kind = name.lower(), "exact"
    else:
        hits = [(lab, kind) for pattern, lab, kind in PATTERN_MAP if re.fullmatch(pattern, name)]
        if not hits:
            raise SystemExit(f"no Slicer colour for VISTA3D class {name!r}: add it to NAME_MAP")
        label, kind = hits[0]
    if label not in entries:
        raise SystemExit(f"{name!r} maps to {label!r}, which the Slicer file does not list")
    return entries[label], kind


def shade(rgb: tuple[int, int, int], position: int) -> tuple[int, int, int]:
    """Family member ``position``'s colour (the lightness rule of the module docstring)."""
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255.0 for c in rgb))
    direction = -1.0 if lightness > 0.5 else 1.0
    lightness = min(max(lightness + direction * STEP * (position % CYCLE), 0.0), 1.0)
    return tuple(int(round(c * 255.0)) for c in colorsys.hls_to_rgb(h, lightness, s))  # type: ignore[return-value]


def _lab(rgb) -> "np.ndarray":
    import numpy as np
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(rgb, dtype=float).reshape(-1, 1, 3) / 255.0).reshape(-1, 3)


def _candidates(rgb: tuple[int, int, int], keep_hue: bool) -> list[tuple[int, int, int]]:
    """Colours near ``rgb`` (hue and lightness moved), the colour itself first."""
    h, lightness, s = colorsys.rgb_to_hls(*(c / 255.0 for c in rgb))
    hues = [0] if keep_hue else [d * sign for d in range(HUE_STEPS + 1) for sign in (1, -1)][1:]
    lights = [d * sign for d in range(LIGHT_STEPS + 1) for sign in (1, -1)][1:]
    out = []
    for dh in hues:
        for dl in lights:
            hls = ((h + dh * HUE_STEP) % 1.0, min(max(lightness + dl * LIGHT_STEP, 0.12), 0.9), s)
            out.append(tuple(int(round(c * 255.0)) for c in colorsys.hls_to_rgb(*hls)))
    return out


def make_distinct(rgbs: dict[int, tuple[int, int, int]], family: dict[int, tuple], order: list[int], shaded: set[int]) -> dict[int, tuple[int, int, int]]:
    """The distinctness rule of the module docstring: ``rgbs`` (class -> colour) with look-alikes of
    other Slicer entries (``family``: class -> its entry's colour) moved, visiting classes in ``order``."""
    from skimage.color import deltaE_ciede2000

    placed: list[tuple[int, "np.ndarray"]] = []  # (class, Lab)
    out = {}
    for index in order:
        others = [lab for i, lab in placed if family[i] != family[index]]
        own = [lab for i, lab in placed if family[i] == family[index]]
        options = _candidates(rgbs[index], keep_hue=index in shaded)
        labs = _lab(options)
        original = labs[0]
        best, best_key = options[0], None
        for option, lab in zip(options, labs):
            clear = min((float(deltaE_ciede2000(lab, o)) for o in others), default=1e9)
            if own and min(float(deltaE_ciede2000(lab, o)) for o in own) < 1.0:
                continue  # would merge with a family member
            change = float(deltaE_ciede2000(lab, original))
            key = (clear < MIN_DELTA_E, change if clear >= MIN_DELTA_E else -clear)
            if best_key is None or key < best_key:
                best, best_key = option, key
            if clear >= MIN_DELTA_E and change == 0.0:
                break
        out[index] = best
        placed.append((index, _lab([best])[0]))
    return out


def build_table(path: Path) -> dict:
    """The colour table for every class of ``vista3d_catalog()`` (groups included)."""
    entries = read_slicer_entries(path)
    names = vista3d_catalog().names
    matched = {index: match(name, entries) for index, name in names.items()}
    families: dict[tuple[int, int, int], list[int]] = {}
    for index, (entry, _) in matched.items():
        if index not in GROUPS:
            families.setdefault(entry.rgb, []).append(index)
    # A class named like its entry keeps the entry's colour (heart before the atrial appendage).
    order = {i: (matched[i][1] not in ("exact", "synonym"), i) for i in names}
    position = {i: n for members in families.values() for n, i in enumerate(sorted(members, key=order.get))}
    shaded = {i for members in families.values() if len(members) > 1 for i in members}
    singles = [i for i in names if i not in GROUPS]
    colours = make_distinct(
        {i: shade(matched[i][0].rgb, position.get(i, 0)) for i in singles},
        {i: matched[i][0].rgb for i in singles}, sorted(singles, key=order.get), shaded,
    )  # fmt: skip
    classes = {}
    for index, name in names.items():
        entry, kind = matched[index]
        side = name.split(" ", 1)[0]
        classes[str(index)] = {
            "name": name,
            "rgb": list(colours.get(index, entry.rgb)),
            "slicer_rgb": list(entry.rgb),
            "slicer_label": entry.label,
            "mapping": kind,
            "laterality": side if side in ("left", "right") and name not in NOT_LATERAL else None,
            "category": entry.category,
            "type": entry.type,
            "modifier": entry.modifier,
        }
    for members in families.values():
        ordered = sorted(members, key=order.get)
        for a, b in zip(ordered, ordered[1:]):
            assert classes[str(a)]["rgb"] != classes[str(b)]["rgb"], (a, b)
    return {
        "source": SOURCE,
        "source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "lightness_rule": (
            f"classes sharing a Slicer colour, ordered by (not an exact or synonym match, id): member n "
            f"moves HLS lightness by (n % {CYCLE}) * {STEP} towards the middle (darker if above 0.5); "
            "groups keep the base colour"
        ),
        "distinctness_rule": (
            f"visited in the same order, a class within CIEDE2000 {MIN_DELTA_E} of a colour placed for another "
            f"Slicer entry moves to the nearest clear colour (hue steps {HUE_STEP}, not for shaded family "
            f"members; lightness steps {LIGHT_STEP})"
        ),
        "mapping_kinds": MAPPING_KINDS,
        "classes": classes,
    }


def dumps(table: dict) -> str:
    """JSON with one line per field of a class (codes and colours kept on their line)."""
    lines = ["{"]
    for key, value in table.items():
        if key != "classes":
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "classes": {')
    items = list(table["classes"].items())
    for n, (index, record) in enumerate(items):
        fields = [f"      {json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()]
        comma = "," if n < len(items) - 1 else ""
        lines.append(f"    {json.dumps(index)}: {{\n" + ",\n".join(fields) + f"\n    }}{comma}")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("slicer_json", type=Path, help="dcmqi's SlicerGeneralAnatomy segmentation context")
    parser.add_argument("-o", "--output", type=Path, default=OUT, help=f"table to write (default {OUT})")
    args = parser.parse_args(argv)
    args.output.write_text(dumps(build_table(args.slicer_json)))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""Model families: the registry (:mod:`.registry`) and one package per family.

A family package holds everything of one model design: its network (``network/``), inference
(``inference/``), training (``training/``), evaluation adapter, prompt checks, options record and
its registry entry ``FAMILY``. voxelprompt's own are :mod:`.vista3d` and :mod:`.segvol`; another
package registers its family through the ``voxelprompt.families`` entry-point group (see
:data:`~voxelprompt.families.registry.ENTRY_POINT_GROUP`), with no edit here.
"""

from voxelprompt.families.registry import (
    DEFAULT_FAMILY,
    ENTRY_POINT_GROUP,
    FAMILIES,
    Capabilities,
    ModelFamily,
    OptionSpec,
    check_capabilities,
    families_with,
    family_of_keys,
    get_family,
    import_target,
    option,
    option_flags,
    option_specs,
)

__all__ = [
    "DEFAULT_FAMILY",
    "ENTRY_POINT_GROUP",
    "FAMILIES",
    "Capabilities",
    "ModelFamily",
    "OptionSpec",
    "check_capabilities",
    "families_with",
    "family_of_keys",
    "get_family",
    "import_target",
    "option",
    "option_flags",
    "option_specs",
]

"""The three views of one loaded VISTA3D network: as loaded, prepared for the engines, and MONAI's.

The exact and fast engines run a copy prepared for channels-last kernels (or the network itself,
prepared in place, when nothing else holds it); MONAI's inferers need MONAI's modules and layout.
Each view beyond the loaded network is made on first use, so only callers that need it pay for it.
"""

from __future__ import annotations

import copy
import threading

from monai.networks.nets.vista3d import VISTA3D

from voxelprompt.families.vista3d.inference.engine.layout import prepare_network, restore_network
from voxelprompt.families.vista3d.inference.engine.point_head import FastPointHead

__all__ = ["Vista3DNetworks"]


class Vista3DNetworks:
    """One VISTA3D network and the views the engines and MONAI's inferers run.

    Args:
        net: the network, in eval mode on its device.
        in_place: prepare ``net`` itself for the engines now (give True only when nothing else
            uses it): one copy of the weights instead of two; its state dict stays the checkpoint's.
        lock: taken while a view is made (the owning segmenter's lock).
    """

    def __init__(self, net: VISTA3D, in_place: bool, lock: threading.RLock) -> None:
        self.net = net
        self.in_place = in_place
        self.lock = lock
        self._engine_net: VISTA3D | None = None
        self._monai_net: VISTA3D | None = None
        if in_place:  # now, so that no caller ever holds the unprepared modules of net
            prepare_network(self.net, channels_last=True)

    def engine_net(self) -> VISTA3D:
        """The network prepared for the exact/fast engines (channels-last weights, fused layers).

        In place it shares every module of :attr:`net` (only the point head is wrapped, in this
        view, so the state dict keeps its keys). Otherwise it is a copy that costs the weights'
        memory once more (0.87 GB for the full-size model), made on first use, and :attr:`net`
        stays MONAI's for the reference inferers.
        """
        with self.lock:
            if self._engine_net is None:
                base = self.net if self.in_place else prepare_network(copy.deepcopy(self.net), channels_last=True)
                net = copy.copy(base)  # shares parameters and modules; only the point head slot differs
                net._modules = dict(base._modules)
                net._modules["point_head"] = FastPointHead(base.point_head)
                self._engine_net = net.eval()
            return self._engine_net

    def monai_net(self) -> VISTA3D:
        """MONAI's network for MONAI's forward and inferers: :attr:`net` itself, or when prepared
        in place a copy restored to MONAI's modules and layout
        (:func:`~voxelprompt.families.vista3d.inference.engine.layout.restore_network`; bit-equal
        outputs), made on first use."""
        with self.lock:
            if not self.in_place:
                return self.net
            if self._monai_net is None:
                self._monai_net = restore_network(copy.deepcopy(self.net)).eval()
            return self._monai_net

"""OpenEIE's hardware: Amaranth components of an EIE-style sparse accelerator,
all parametrised by `sw.Config`."""

from .accelerator import Accelerator, HardwareError
from .hostmap import HostMap

__all__ = ["Accelerator", "HardwareError", "HostMap"]

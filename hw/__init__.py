"""OpenEIE's hardware: Amaranth components of an EIE-style sparse accelerator,
all parametrised by `sw.Config`."""

from . import sources  # noqa: F401  (first: the sources as imported, the key of cached builds)
from .accelerator import Accelerator, HardwareError
from .hostmap import HostMap

__all__ = ["Accelerator", "HardwareError", "HostMap"]

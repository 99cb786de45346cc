"""Wishbone B4 (classic cycles) as an Amaranth interface signature.

Directions are the initiator's: the accelerator's host port is
``In(wishbone.Signature(...))``. ``adr`` is a word address; ``sel`` is
accepted and ignored (every access is a whole 32-bit word).
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Signature"]


class Signature(wiring.Signature):
    def __init__(self, *, addr_width: int, data_width: int = 32, granularity: int = 8):
        if data_width % granularity:
            raise ValueError(f"data_width {data_width} is not a multiple of granularity {granularity}")
        self.addr_width, self.data_width, self.granularity = addr_width, data_width, granularity
        super().__init__({
            "cyc": Out(1), "stb": Out(1), "we": Out(1), "adr": Out(addr_width),
            "dat_w": Out(data_width), "sel": Out(data_width // granularity),
            "dat_r": In(data_width), "ack": In(1),
        })

    def __eq__(self, other):
        return (isinstance(other, Signature) and (self.addr_width, self.data_width, self.granularity)
                == (other.addr_width, other.data_width, other.granularity))

    def __repr__(self):
        return f"wishbone.Signature(addr_width={self.addr_width}, data_width={self.data_width})"

"""The host port's address map (word addresses, 32-bit data).

The one definition of where things are on the Wishbone bus; the hardware's
decoder (`hw.hostport`) and the simulation bench (`sim`) both use it.

Global space (top address bit 0), region in the bits above the offset:

==========  =============================================  ==========
region      contents                                       access
==========  =============================================  ==========
0 regs      ``ID``, ``VERSION``, ``CTRL``, ``STATUS``,      see below
            ``CYCLES``, ``LAYERS_DONE``, ``CONFIG + i``
1 layer     per layer ``l``: word ``2l`` cycles,            read
counters    ``2l + 1`` broadcast stall cycles
2 PE busy   word ``pe * max_layers + l``                    read
3 layers    the layer-descriptor memory (``sw.format``)     write
4 codebook  the codebook memory (written into every PE)     write
==========  =============================================  ==========

PE space (top bit 1): ``[kind:2][pe][offset]``, kind 0 entries, 1 ptr_even,
2 ptr_odd, 3 bias; write only.

``CTRL`` (write): bit 0 start a run, bit 1 soft reset. ``STATUS`` (read):
bit 0 busy, bit 1 done (the last run finished), bit 2 error (a descriptor was
invalid), bit 3 ready (idle, a start is accepted).
"""

from __future__ import annotations

import dataclasses

from amaranth.utils import ceil_log2

from sw import format as fmt
from sw.config import Config

__all__ = ["HostMap", "ID_VALUE", "HW_VERSION"]

ID_VALUE = 0x4F454945          # "OEIE"
HW_VERSION = 1

REGS, LAYER_COUNTERS, PE_BUSY, LAYER_TABLE, CODEBOOK = range(5)
PE_KINDS = fmt.PE_MEMORIES     # entries, ptr_even, ptr_odd, bias
CONFIG_FIELDS = [f.name for f in dataclasses.fields(Config)]


class HostMap:
    ID, VERSION, CTRL, STATUS, CYCLES, LAYERS_DONE = range(6)
    CONFIG = 0x10
    CTRL_START, CTRL_RESET = 1, 2
    STATUS_BUSY, STATUS_DONE, STATUS_ERROR, STATUS_READY = 1, 2, 4, 8

    def __init__(self, config: Config):
        c = self.config = config
        self.pe_bits = ceil_log2(c.n_pe)
        self.pe_offset_bits = max(ceil_log2(c.entry_words), ceil_log2(c.pointer_depth // 2),
                                  ceil_log2(c.row_depth), 1)
        self.global_offset_bits = max(6, ceil_log2(2 * c.max_layers), ceil_log2(c.n_pe * c.max_layers),
                                      ceil_log2(fmt.DESC_WORDS * c.max_layers),
                                      ceil_log2(c.max_layers << c.code_bits))
        self.addr_width = 1 + max(3 + self.global_offset_bits, 2 + self.pe_bits + self.pe_offset_bits)

    # ---- addresses ---------------------------------------------------------

    def global_addr(self, region: int, offset: int) -> int:
        return (region << self.global_offset_bits) | offset

    def reg(self, offset: int) -> int:
        return self.global_addr(REGS, offset)

    def config_reg(self, field: str) -> int:
        return self.reg(self.CONFIG + CONFIG_FIELDS.index(field))

    def layer_cycles(self, layer: int) -> int:
        return self.global_addr(LAYER_COUNTERS, 2 * layer)

    def layer_stalls(self, layer: int) -> int:
        return self.global_addr(LAYER_COUNTERS, 2 * layer + 1)

    def pe_busy(self, pe: int, layer: int) -> int:
        return self.global_addr(PE_BUSY, pe * self.config.max_layers + layer)

    def pe_memory(self, pe: int, kind: str, offset: int = 0) -> int:
        top = 1 << (self.addr_width - 1)
        return top | (PE_KINDS.index(kind) << (self.pe_bits + self.pe_offset_bits)) \
            | (pe << self.pe_offset_bits) | offset

    def memory(self, name: str, offset: int = 0) -> int:
        """Base address of an image memory (`sw.format` names) plus `offset`."""
        if name == "layers":
            return self.global_addr(LAYER_TABLE, offset)
        if name == "codebook":
            return self.global_addr(CODEBOOK, offset)
        pe, kind = name.split(".")
        return self.pe_memory(int(pe[2:]), kind, offset)

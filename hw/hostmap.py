"""The host port's address map (word addresses, 32-bit data).

The one definition of where things are on the Wishbone bus; the hardware's
decoder (`hw.hostport`) and the simulation bench (`sim`) both use it.

Global space (top address bit 0), region in the bits above the offset:

==========  =============================================  ==========
region      contents                                       access
==========  =============================================  ==========
0 regs      ``ID``, ``VERSION``, ``CTRL``, ``STATUS``,      see below
            ``CYCLES``, ``LAYERS_DONE``, ``EXIT``,
            ``CONFIG + i``
1 layer     per layer ``l``: word ``2l`` cycles,            read
counters    ``2l + 1`` broadcast stall cycles
2 PE busy   word ``pe << layer_bits | l``                    read
3 layers    the layer-descriptor memory (``sw.format``)     read, write
4 codebook  the codebook memory (written into every PE)     read, write
==========  =============================================  ==========

PE space (top bit 1): ``[kind:2][pe][offset]``, kinds numbered as
`sw.format.PE_MEMORIES` (0 entries, 1 ptr_even, 2 ptr_odd; the pointer
banks also hold the biases); read and write. Memories are read back only
while the accelerator is not busy (``STATUS`` bit 0; a read then gives 0),
and written only while it is idle. `HostMap.fields` gives every field's
``(lsb, width)``: the decoder and the bench both use it.

``CTRL`` (write): bit 0 start a run, bit 1 soft reset. ``STATUS`` (read):
bit 0 busy, bit 1 done (the last run finished), bit 2 error (a descriptor was
invalid), bit 3 ready (idle, a start is accepted). ``EXIT`` (read): the exit
head the last run left by (0: none, its outputs are the last layer's;
docs/design.md §15).
"""

from __future__ import annotations

import dataclasses

from amaranth.utils import ceil_log2

from sw import format as fmt
from sw.config import Config

__all__ = ["HostMap", "ID_VALUE", "HW_VERSION"]

ID_VALUE = 0x4F454945          # "OEIE"
HW_VERSION = 2                 # 2: exit heads (the EXIT register, descriptors with banks and exit tests)

REGS, LAYER_COUNTERS, PE_BUSY, LAYER_TABLE, CODEBOOK = range(5)
PE_KINDS = fmt.PE_MEMORIES     # entries, ptr_even, ptr_odd
CONFIG_FIELDS = [f.name for f in dataclasses.fields(Config)]


class HostMap:
    ID, VERSION, CTRL, STATUS, CYCLES, LAYERS_DONE, EXIT = range(7)
    CONFIG = 0x10
    CTRL_START, CTRL_RESET = 1, 2
    STATUS_BUSY, STATUS_DONE, STATUS_ERROR, STATUS_READY = 1, 2, 4, 8
    PE_KIND_BITS = max(ceil_log2(len(PE_KINDS)), 1)
    REGION_BITS = 3

    def __init__(self, config: Config):
        c = self.config = config
        self.pe_bits = ceil_log2(c.n_pe)
        self.layer_bits = max(ceil_log2(c.max_layers), 1)
        self.pe_offset_bits = max(ceil_log2(c.entry_words), ceil_log2(c.bank_depth), 1)
        self.global_offset_bits = max(6, ceil_log2(2 * c.max_layers), self.pe_bits + self.layer_bits,
                                      ceil_log2(fmt.DESC_WORDS * c.max_layers),
                                      ceil_log2(c.max_layers << c.code_bits))
        self.addr_width = 1 + max(self.REGION_BITS + self.global_offset_bits,
                                  self.PE_KIND_BITS + self.pe_bits + self.pe_offset_bits)
        # (lsb, width) of each address field; "top" selects PE space
        self.fields = {
            "top": (self.addr_width - 1, 1),
            "offset": (0, self.global_offset_bits),
            "region": (self.global_offset_bits, self.REGION_BITS),
            "pe_offset": (0, self.pe_offset_bits),
            "pe": (self.pe_offset_bits, self.pe_bits),
            "kind": (self.pe_offset_bits + self.pe_bits, self.PE_KIND_BITS),
        }

    def field(self, address, name: str):
        """Field `name` of `address` (an Amaranth value)."""
        lsb, width = self.fields[name]
        return address[lsb:lsb + width]

    def address(self, **values) -> int:
        """An address from field values (``top=1, kind=..., pe=..., pe_offset=...``)."""
        out = 0
        for name, value in values.items():
            lsb, width = self.fields[name]
            if not 0 <= value < 1 << width:
                raise ValueError(f"host address field {name} = {value} does not fit {width} bits")
            out |= value << lsb
        return out

    # ---- addresses ---------------------------------------------------------

    def global_addr(self, region: int, offset: int) -> int:
        return self.address(region=region, offset=offset)

    def reg(self, offset: int) -> int:
        return self.global_addr(REGS, offset)

    def config_reg(self, field: str) -> int:
        return self.reg(self.CONFIG + CONFIG_FIELDS.index(field))

    def layer_cycles(self, layer: int) -> int:
        return self.global_addr(LAYER_COUNTERS, 2 * layer)

    def layer_stalls(self, layer: int) -> int:
        return self.global_addr(LAYER_COUNTERS, 2 * layer + 1)

    def pe_busy(self, pe: int, layer: int) -> int:
        return self.global_addr(PE_BUSY, (pe << self.layer_bits) | layer)

    def pe_memory(self, pe: int, kind: str, offset: int = 0) -> int:
        return self.address(top=1, kind=PE_KINDS.index(kind), pe=pe, pe_offset=offset)

    def memory(self, name: str, offset: int = 0) -> int:
        """Base address of an image memory (`sw.format` names) plus `offset`."""
        spec = fmt.memory_specs(self.config)[name]
        if spec.pe is None:
            return self.global_addr({"layers": LAYER_TABLE, "codebook": CODEBOOK}[spec.kind], offset)
        return self.pe_memory(spec.pe, spec.kind, offset)

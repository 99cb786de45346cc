"""Signal widths and stream payloads of the accelerator, all derived from
`sw.Config` (the one source of truth; nothing here is a free parameter)."""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import Out
from amaranth.utils import ceil_log2

from sw.config import Config
from sw.format import DESC_WORDS, kind_specs

__all__ = ["Widths", "input_layout", "activation_layout", "queued_layout", "column_layout", "entry_layout",
           "spec_memory", "descriptor_layout",
           "layer_control_layout", "pe_control_signature", "codebook_load_layout", "HOST_DATA_BITS",
           "COUNTER_BITS"]

HOST_DATA_BITS = 32
COUNTER_BITS = 32


class Widths:
    """Bit widths the hardware needs for a configuration."""

    def __init__(self, config: Config):
        c = self.config = config
        self.act = c.act_bits
        self.acc = c.acc_bits
        self.product = c.act_bits + c.weight_bits
        # an input index: layer 0 is bounded by the pointers, later layers by the buffers
        self.index = max(ceil_log2(c.pointer_depth), ceil_log2(c.max_outputs), 1)
        self.count = self.index + 1                   # holds n_in and n_out themselves
        self.gptr = max(ceil_log2(c.pointer_depth), 1)  # global pointer index
        self.bank_addr = max(ceil_log2(c.bank_depth), 1)     # a pointer-bank word (pointers, then biases)
        self.pointer = c.pointer_bits                 # an absolute entry address 0..weight_depth
        self.word_addr = max(ceil_log2(c.entry_words), 1)
        self.lane = ceil_log2(c.entries_per_word)
        self.row = max(ceil_log2(c.row_depth), 1)     # a local row
        self.layer = max(ceil_log2(c.max_layers), 1)
        self.shift = max(ceil_log2(c.max_shift + 1), 1)
        self.pe = ceil_log2(c.n_pe)
        # a PE's busy cycles in one layer: at most its entries of the layer (each
        # column is streamed once per layer), so no wider than a pointer
        self.busy = c.pointer_bits
        # what a PE answers a host read with: its widest memory word or busy count
        # (not the bus's 32 bits: the answers come back through an n_pe-way tree)
        self.pe_read = max(c.word_bits, c.bank_bits, self.busy)
        self.desc_addr = ceil_log2(DESC_WORDS * c.max_layers)
        self.codebook_addr = self.layer + c.code_bits
        self.act_addr = self.row + 1                  # ping-pong: bank bit on top


def input_layout(w: Widths) -> data.ArrayLayout:
    """A beat of layer 0's input stream: `input_width` values, the first the
    lowest-numbered."""
    return data.ArrayLayout(signed(w.act), w.config.input_width)


def activation_layout(w: Widths) -> data.StructLayout:
    """`(j, a_j)`: what the broadcast sends and the activation queues hold."""
    return data.StructLayout({"index": unsigned(w.index), "value": signed(w.act)})


def queued_layout(w: Widths) -> data.StructLayout:
    """`(g, a_j)` as the broadcast sends it to the PEs and their queues hold
    it: the global pointer index ``g = ptr_base + j`` (added once, centrally,
    not in every PE) and the value."""
    return data.StructLayout({"pointer": unsigned(w.gptr), "value": signed(w.act)})


def column_layout(w: Widths) -> data.StructLayout:
    """A nonempty column to stream: entries `start .. start + rest`, times
    `value`; `single` says it has one entry (``rest == 0``, worked out before
    the column FIFO, so the matrix reader need not compare on the FIFO's way
    out). `rest` is as wide as a row index: each entry of a column advances
    at least one row (docs/design.md §4), so a column holds at most
    `row_depth` entries (a narrow FIFO word: on an iCE40 each bit of it is
    a logic cell per slot)."""
    return data.StructLayout({"start": unsigned(w.pointer), "rest": unsigned(w.row),
                              "value": signed(w.act), "single": unsigned(1)})


def entry_layout(w: Widths) -> data.StructLayout:
    """One decoded entry on its way to the arithmetic unit."""
    c = w.config
    return data.StructLayout({"run": unsigned(c.run_bits), "code": unsigned(c.code_bits),
                              "value": signed(w.act), "first": unsigned(1)})


def descriptor_layout(w: Widths) -> data.StructLayout:
    """A decoded layer descriptor (`sw.format.DESCRIPTOR_FIELDS`), each field
    as wide as the hardware needs it."""
    return data.StructLayout({
        "n_in": unsigned(w.count), "n_out": unsigned(w.count), "ptr_base": unsigned(w.gptr),
        "bias_base": unsigned(w.bank_addr), "shift": unsigned(w.shift), "relu": unsigned(1), "last": unsigned(1),
        "src_bank": unsigned(1), "dst_bank": unsigned(1), "exit": unsigned(1),
        # a margin of two act_bits values is below 2**act_bits; without the exit test, none is read
        "threshold": unsigned(w.config.act_bits + 1 if w.config.exit_heads else 1),
    })


def layer_control_layout(w: Widths) -> data.StructLayout:
    """What every PE needs to know about the running layer (held by the
    control unit for the whole layer). The write-back's fields
    (`bias_base`, `shift`, `relu`, `overflow_mask`, `dst_bank`) are those
    of the layer being written back, held until its last row is written:
    the next layer starts while the write-back still runs."""
    return data.StructLayout({
        "layer": unsigned(w.layer), "n_in": unsigned(w.count),
        "bias_base": unsigned(w.bank_addr), "shift": unsigned(w.shift), "relu": unsigned(1),
        "overflow_mask": unsigned(w.acc - 1),      # `hw.writeback.overflow_mask` of the shift
        "src_bank": unsigned(1), "dst_bank": unsigned(1),
    })


def codebook_load_layout(w: Widths) -> data.StructLayout:
    """One value of the next layer's codebook on its way into every PE's copy."""
    c = w.config
    return data.StructLayout({"addr": unsigned(c.code_bits), "data": signed(c.weight_bits), "en": unsigned(1)})


def pe_control_signature(w: Widths) -> wiring.Signature:
    """The control unit's wires into every PE (directions as the control
    unit drives them; the same values reach all PEs)."""
    return wiring.Signature({
        "layer": Out(layer_control_layout(w)),
        "scan_start": Out(1),                      # start scanning the source bank (layers >= 1)
        "wb_valid": Out(1), "wb_row": Out(w.row),  # write back this local row
        "clear": Out(1), "clear_row": Out(w.row),  # zero this accumulator row (after a reset)
        "count_reset": Out(1), "count_save": Out(1),   # the busy counter, per layer
        "out_mode": Out(1),                        # the buffers serve the output stage
        "cb_load": Out(codebook_load_layout(w)),   # the next layer's codebook, one value a cycle
    })


def spec_memory(config: Config, kind: str, init=()) -> memory.Memory:
    """The memory of an image kind (`sw.format.kind_specs`: width, depth,
    signedness), initialised with `init` (values as the spec's signedness
    has them)."""
    spec = kind_specs(config)[kind]
    shape = signed(spec.width) if spec.signed else unsigned(spec.width)
    # the small global memories too go to block RAM (Yosys would make LUT RAM
    # of them on the ECP5): only there can a bitstream's copy be spliced
    attrs = {"ram_style": "block"} if spec.pe is None and kind in ("layers", "codebook") else None
    return memory.Memory(shape=shape, depth=spec.depth, init=init, attrs=attrs)

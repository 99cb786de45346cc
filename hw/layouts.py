"""Signal widths and stream payloads of the accelerator, all derived from
`sw.Config` (the one source of truth; nothing here is a free parameter)."""

from __future__ import annotations

from amaranth import signed, unsigned
from amaranth.lib import data
from amaranth.utils import ceil_log2

from sw.config import Config
from sw.format import DESC_WORDS

__all__ = ["Widths", "activation_layout", "column_layout", "entry_layout"]

HOST_DATA_BITS = 32


class Widths:
    """Bit widths the hardware needs for a configuration."""

    def __init__(self, config: Config):
        c = self.config = config
        self.act = c.act_bits
        self.weight = c.weight_bits
        self.acc = c.acc_bits
        self.product = c.act_bits + c.weight_bits
        # an input index: layer 0 is bounded by the pointers, later layers by the buffers
        self.index = max(ceil_log2(c.pointer_depth), ceil_log2(c.max_outputs), 1)
        self.count = self.index + 1                   # holds n_in and n_out themselves
        self.gptr = max(ceil_log2(c.pointer_depth), 1)  # global pointer index
        self.bank_addr = max(ceil_log2(c.pointer_depth // 2), 1)
        self.pointer = c.pointer_bits                 # an absolute entry address 0..weight_depth
        self.word_addr = max(ceil_log2(c.entry_words), 1)
        self.lane = ceil_log2(c.entries_per_word)
        self.row = max(ceil_log2(c.row_depth), 1)     # a local row
        self.rows = ceil_log2(c.row_depth + 1)        # a count of local rows
        self.layer = max(ceil_log2(c.max_layers), 1)
        self.shift = max(ceil_log2(c.max_shift + 1), 1)
        self.pe = ceil_log2(c.n_pe)
        self.desc_addr = ceil_log2(DESC_WORDS * c.max_layers)
        self.codebook_addr = self.layer + c.code_bits
        self.act_addr = self.row + 1                  # ping-pong: bank bit on top


def activation_layout(w: Widths) -> data.StructLayout:
    """`(j, a_j)`: what the broadcast sends and the activation queues hold."""
    return data.StructLayout({"index": unsigned(w.index), "value": signed(w.act)})


def column_layout(w: Widths) -> data.StructLayout:
    """A nonempty column to stream: entries `start .. end - 1`, times `value`."""
    return data.StructLayout({"start": unsigned(w.pointer), "end": unsigned(w.pointer),
                              "value": signed(w.act)})


def entry_layout(w: Widths) -> data.StructLayout:
    """One decoded entry on its way to the arithmetic unit."""
    c = w.config
    return data.StructLayout({"run": unsigned(c.run_bits), "code": unsigned(c.code_bits),
                              "value": signed(w.act), "first": unsigned(1)})

"""Arithmetic unit: row decode, codebook decode, multiply, accumulate."""

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .collisions import read_data
from .layouts import Widths, codebook_load_layout, entry_layout
from .parts import add_parts

__all__ = ["ArithmeticUnit"]


class ArithmeticUnit(wiring.Component):
    """Accumulates ``C[code] * a`` into the PE's local output rows.

    Stages (one entry per cycle, never stalls):

    * S1 (the entry arrives): local row ``= run`` for the first entry of a
      column, else ``previous row + run + 1``; the PE's copy of the running
      layer's codebook is read at ``code``.
    * S2: ``C[code]`` and ``a`` are registered again, beside the DSP (the
      codebook's LUT RAM may be placed away from it). `Config.short_pipeline`
      leaves this stage out: S2b multiplies straight from the codebook's
      read, and S3 and S4 come a cycle sooner.
    * S2b: ``product = C[code] * a`` (exact, ``weight_bits + act_bits`` wide).
    * S3: the accumulator is read at the row (padding entries, code 0, skip
      S3 and S4: they only move the row).
    * S4: ``acc[row] += product`` modulo ``2**acc_bits`` and written back.
      If the previous cycle's S4 wrote the same row, its sum is used instead
      of the (stale) memory read: back-to-back updates of one row (the last
      entry of a column and the first of the next) need no stall.

    Outside a layer's compute phase the accumulator is reached through the
    `wb_*` and `clear_*` ports: write-back reads it (data one cycle later on
    `acc_data`) and zeroes each row after reading it (a clear given in cycle
    ``t`` writes in ``t + 1``); and the codebook copy
    (``2**code_bits`` values, in LUT RAM or registers) is loaded through
    `cb_load` with the next layer's codebook (`hw.codebook`).
    """

    @staticmethod
    def last_stage(config) -> int:
        """S4 is this many cycles after S1 (the entry's arrival)."""
        return 4 - config.short_pipeline

    def __init__(self, widths: Widths):
        c = widths.config
        self._widths = widths
        self.codebook = memory.Memory(shape=signed(c.weight_bits), depth=c.n_codes, init=[])
        self.acc = memory.Memory(shape=signed(c.acc_bits), depth=c.row_depth, init=[])
        self.parts = {"codebook": self.codebook, "acc": self.acc}
        super().__init__({
            "entry": In(entry_layout(widths)),
            "entry_valid": In(1),
            "wb_read": In(1),
            "wb_row": In(widths.row),
            "acc_data": Out(signed(c.acc_bits)),
            "clear": In(1),
            "clear_row": In(widths.row),
            "busy": Out(1),
            "cb_load": In(codebook_load_layout(widths)),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()
        add_parts(m, self)
        cb_rd = self.codebook.read_port()
        cb_wr = self.codebook.write_port()
        acc_rd = self.acc.read_port()
        acc_wr = self.acc.write_port()
        m.d.comb += [cb_wr.addr.eq(self.cb_load.addr), cb_wr.data.eq(self.cb_load.data),
                     cb_wr.en.eq(self.cb_load.en)]
        weight, acc_word = read_data(m, cb_rd, cb_wr), read_data(m, acc_rd, acc_wr)

        # S1: row decode, codebook read
        prev_row = Signal(w.row, reset_less=True)       # data registers need no soft reset
        row = Signal(w.row)
        m.d.comb += [
            row.eq(Mux(self.entry.first, self.entry.run, prev_row + self.entry.run + 1)),
            cb_rd.addr.eq(self.entry.code),
        ]
        s2_valid, s2_row, s2_value = Signal(), Signal(w.row, reset_less=True), Signal(signed(w.act), reset_less=True)
        with m.If(self.entry_valid):
            m.d.sync += prev_row.eq(row)
        m.d.sync += [
            s2_valid.eq(self.entry_valid & (self.entry.code != 0)),
            s2_row.eq(row),
            s2_value.eq(self.entry.value),
        ]

        # S2: the multiplier's operands, registered beside it: FF -> DSP -> FF
        # is then the whole path through the multiplier
        if c.short_pipeline:
            s2b_valid, s2b_row, mul_a, mul_b = s2_valid, s2_row, weight, s2_value
        else:
            s2b_valid, s2b_row = Signal(), Signal(w.row, reset_less=True)
            mul_a, mul_b = Signal.like(weight, reset_less=True), Signal.like(s2_value, reset_less=True)
            m.d.sync += [s2b_valid.eq(s2_valid), s2b_row.eq(s2_row), mul_a.eq(weight), mul_b.eq(s2_value)]

        # S2b: multiply
        s3_valid, s3_row = Signal(), Signal(w.row, reset_less=True)
        s3_product = Signal(signed(w.product), reset_less=True)
        m.d.sync += [s3_valid.eq(s2b_valid), s3_row.eq(s2b_row), s3_product.eq(mul_a * mul_b)]

        # S3: read the accumulator (write-back borrows the port between layers);
        # decide here whether S4 must forward (this entry's row is the one S4
        # writes now), so S4 starts from a register
        s4_valid, s4_row = Signal(), Signal(w.row, reset_less=True)
        s4_product = Signal(signed(w.product), reset_less=True)
        forward = Signal(reset_less=True)
        m.d.comb += acc_rd.addr.eq(Mux(self.wb_read, self.wb_row, s3_row))
        m.d.sync += [s4_valid.eq(s3_valid), s4_row.eq(s3_row), s4_product.eq(Mux(s3_valid, s3_product, 0)),
                     forward.eq(s4_valid & (s4_row == s3_row))]

        # S4: accumulate, with forwarding from the previous cycle's write. A
        # clear writes 0 (no entry is in S4 then, so the product is 0): the
        # zeroing is folded into the operand, not a multiplexer after the adder
        # (the clear is registered here first: it comes from the write-back,
        # which may be placed away from the accumulator's LUT RAM)
        clear, clear_row = Signal(), Signal.like(self.clear_row, reset_less=True)
        m.d.sync += [clear.eq(self.clear), clear_row.eq(self.clear_row)]
        last_sum = Signal(signed(c.acc_bits), reset_less=True)
        total = Signal(signed(c.acc_bits))          # assignment wraps modulo 2**acc_bits
        base = Mux(forward, last_sum, acc_word) & ~clear.replicate(c.acc_bits)
        m.d.comb += total.eq(base.as_signed() + s4_product)
        m.d.sync += last_sum.eq(total)
        m.d.comb += [
            acc_wr.addr.eq(Mux(clear, clear_row, s4_row)),
            acc_wr.data.eq(total),
            acc_wr.en.eq(clear | s4_valid),
            self.acc_data.eq(acc_word),
            self.busy.eq(s2_valid | s2b_valid | s3_valid | s4_valid),
        ]
        return m

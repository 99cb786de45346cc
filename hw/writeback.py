"""Write-back: bias, round, shift, ReLU, saturate (docs/design.md §5)."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths

__all__ = ["WriteBack"]


class WriteBack(wiring.Component):
    """Turns accumulators into the layer's output activations, one row per
    cycle, in the same steps as `sw.fixedpoint.writeback`.

    Timing, for a row ``i`` presented on `row` with `valid` in cycle ``t``:

    * W0, ``t``: the accumulator (through the arithmetic unit's `wb_*` port)
      and the bias at pointer-bank word ``bias_base + i`` (`bias_read`,
      `bias_addr`: the pointer reader's banks, idle during write-back) are
      read.
    * W1, ``t + 1``: ``acc + bias`` modulo ``2**acc_bits``; the accumulator row
      is zeroed (`clear`).
    * W2, ``t + 2``: ``(sum + 2**(shift-1)) >> shift`` exactly.
    * W3, ``t + 3`` (``t + LATENCY``): ReLU, saturation to ``act_bits``, and
      the write of the output to `out_addr` (bank and row) of the activation
      buffer.
    """

    LATENCY = 3     # cycles from a row's `valid` to its output write

    def __init__(self, widths: Widths):
        c = widths.config
        self._widths = widths
        super().__init__({
            "valid": In(1),
            "row": In(widths.row),
            "bias_base": In(widths.bank_addr),
            "bias_read": Out(1),
            "bias_addr": Out(widths.bank_addr),
            "bias_data": In(signed(c.acc_bits)),
            "shift": In(widths.shift),
            "relu": In(1),
            "bank": In(1),
            "acc_data": In(signed(c.acc_bits)),
            "clear": Out(1),
            "clear_row": Out(widths.row),
            "out_en": Out(1),
            "out_addr": Out(widths.act_addr),
            "out_data": Out(signed(c.act_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()

        # W0
        m.d.comb += [self.bias_read.eq(self.valid), self.bias_addr.eq(self.bias_base + self.row)]
        w1_valid, w1_row = Signal(), Signal(w.row)
        m.d.sync += [w1_valid.eq(self.valid), w1_row.eq(self.row)]

        # W1. The sum is registered so that the adder's carry chain and the
        # barrel shifter are not one path (for Fmax; synth_ecp5's default
        # wide-LUT mapping also drops from 634 to 335 LUT4 for this block).
        w2_valid, w2_row = Signal(), Signal(w.row)
        w2_total = Signal(signed(c.acc_bits))               # wraps, like every accumulation
        m.d.comb += [self.clear.eq(w1_valid), self.clear_row.eq(w1_row)]
        m.d.sync += [w2_valid.eq(w1_valid), w2_row.eq(w1_row), w2_total.eq(self.acc_data + self.bias_data)]

        # W2: (x + 2**(s-1)) >> s == ((2x >> s) + 1) >> 1 for every s >= 0
        # (floors nest): one barrel shifter, no special case for s = 0, no
        # shifted rounding constant, and nothing can wrap.
        w3_valid, w3_row = Signal(), Signal(w.row)
        w3_shifted = Signal(signed(c.acc_bits + 1))
        m.d.sync += [w3_valid.eq(w2_valid), w3_row.eq(w2_row),
                     w3_shifted.eq(((Cat(C(0, 1), w2_total).as_signed() >> self.shift) + 1) >> 1)]

        # W3
        lo, hi = -(1 << (c.act_bits - 1)), (1 << (c.act_bits - 1)) - 1
        y = Signal(signed(c.acc_bits + 1))
        m.d.comb += y.eq(Mux(self.relu & (w3_shifted < 0), 0, w3_shifted))
        m.d.comb += [
            self.out_data.eq(Mux(y > hi, hi, Mux(y < lo, lo, y))),
            self.out_addr.eq(Cat(w3_row, self.bank)),
            self.out_en.eq(w3_valid),
            self.busy.eq(w1_valid | w2_valid | w3_valid),
        ]
        return m

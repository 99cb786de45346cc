"""Write-back: bias, round, shift, ReLU, saturate (docs/design.md §5)."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths
from .pipeline import delay_line
from .pointer_reader import PointerReader

__all__ = ["WriteBack"]


class WriteBack(wiring.Component):
    """Turns accumulators into the layer's output activations, one row per
    cycle, in the same steps as `sw.fixedpoint.writeback`.

    Timing, for a row ``i`` presented on `row` with `valid` in cycle ``t``:

    * W0, ``t``: the accumulator (through the arithmetic unit's `wb_*` port)
      and the bias at pointer-bank word ``bias_base + i`` (`bias_read`,
      `bias_addr`: the pointer reader's banks, idle during write-back) are
      read.
    * W1, ``t + 1``: the accumulator's value is registered and its row
      zeroed (`clear`).
    * W2, ``t + 2`` (the bias is there, `PointerReader.BIAS_LATENCY`):
      ``acc + bias`` modulo ``2**acc_bits``.
    * W3, ``t + 3``: ``(sum + 2**(shift-1)) >> shift`` exactly.
    * W4, ``t + 4`` (``t + LATENCY``): ReLU, saturation to ``act_bits``, and
      the write of the output to `out_addr` (bank and row) of the activation
      buffer.
    """

    BIAS_LATENCY = PointerReader.BIAS_LATENCY
    LATENCY = BIAS_LATENCY + 2     # cycles from a row's `valid` to its output write

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
        valid = delay_line(m, self.valid, self.LATENCY, "valid")       # valid[n]: in stage W(n + 1)
        row = delay_line(m, self.row, self.LATENCY, "row")
        m.d.comb += [self.clear.eq(valid[0]), self.clear_row.eq(row[0])]

        # W1: the accumulator's value waits for the bias
        acc = delay_line(m, self.acc_data, self.BIAS_LATENCY - 1, "acc")[-1].as_signed() \
            if self.BIAS_LATENCY > 1 else self.acc_data

        # W2. The sum is registered so that the adder's carry chain and the
        # barrel shifter are not one path (for Fmax; synth_ecp5's default
        # wide-LUT mapping also drops from 634 to 335 LUT4 for this block).
        w2_total = Signal(signed(c.acc_bits))               # wraps, like every accumulation
        m.d.sync += w2_total.eq(acc + self.bias_data)

        # W3: (x + 2**(s-1)) >> s == ((2x >> s) + 1) >> 1 for every s >= 0
        # (floors nest): one barrel shifter, no special case for s = 0, no
        # shifted rounding constant, and nothing can wrap.
        w3_shifted = Signal(signed(c.acc_bits + 1))
        m.d.sync += w3_shifted.eq(((Cat(C(0, 1), w2_total).as_signed() >> self.shift) + 1) >> 1)

        # W4
        lo, hi = -(1 << (c.act_bits - 1)), (1 << (c.act_bits - 1)) - 1
        y = Signal(signed(c.acc_bits + 1))
        m.d.comb += y.eq(Mux(self.relu & (w3_shifted < 0), 0, w3_shifted))
        m.d.comb += [
            self.out_data.eq(Mux(y > hi, hi, Mux(y < lo, lo, y))),
            self.out_addr.eq(Cat(row[-1], self.bank)),
            self.out_en.eq(valid[-1]),
            self.busy.eq(Cat(*valid).any()),
        ]
        return m

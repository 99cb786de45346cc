"""Write-back: bias, round, shift, ReLU, saturate (DESIGN.md section 5)."""

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths

__all__ = ["WriteBack"]


class WriteBack(wiring.Component):
    """Turns accumulators into the layer's output activations, one row per
    cycle, in the same steps as `sw.fixedpoint.writeback`.

    Timing, for a row ``i`` presented on `row` with `valid` in cycle ``t``:

    * W0, ``t``: the accumulator (through the arithmetic unit's `wb_*` port)
      and ``bias[bias_base + i]`` are read.
    * W1, ``t + 1``: ``acc + bias`` modulo ``2**acc_bits``; the accumulator row
      is zeroed (`clear`); ``(sum + 2**(shift-1)) >> shift`` exactly (computed
      as ``((2 * sum >> shift) + 1) >> 1``, which cannot wrap).
    * W2, ``t + 2``: ReLU, saturation to ``act_bits``, and the write of the
      output to `out_addr` (bank and row) of the activation buffer.
    """

    def __init__(self, widths: Widths, *, init_bias=()):
        c = widths.config
        self._widths = widths
        self.bias = memory.Memory(shape=signed(c.acc_bits), depth=c.row_depth, init=init_bias)
        super().__init__({
            "valid": In(1),
            "row": In(widths.row),
            "bias_base": In(widths.row),
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
            "host_bias": Out(memory.WritePort.Signature(addr_width=widths.row, shape=signed(c.acc_bits))),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()
        m.submodules.bias = self.bias
        rd = self.bias.read_port()
        wr = self.bias.write_port()
        m.d.comb += [wr.addr.eq(self.host_bias.addr), wr.data.eq(self.host_bias.data), wr.en.eq(self.host_bias.en)]

        # W0
        m.d.comb += rd.addr.eq(self.bias_base + self.row)
        w1_valid, w1_row = Signal(), Signal(w.row)
        m.d.sync += [w1_valid.eq(self.valid), w1_row.eq(self.row)]

        # W1
        # (x + 2**(s-1)) >> s == ((2x >> s) + 1) >> 1 for every s >= 0 (floors
        # nest), so one barrel shifter does it, with no special case for s = 0
        # and no shifted rounding constant.
        total = Signal(signed(c.acc_bits))                  # wraps, like every accumulation
        m.d.comb += [
            total.eq(self.acc_data + rd.data),
            self.clear.eq(w1_valid),
            self.clear_row.eq(w1_row),
        ]
        w2_valid, w2_row = Signal(), Signal(w.row)
        w2_shifted = Signal(signed(c.acc_bits + 1))
        m.d.sync += [w2_valid.eq(w1_valid), w2_row.eq(w1_row),
                     w2_shifted.eq(((Cat(C(0, 1), total).as_signed() >> self.shift) + 1) >> 1)]

        # W2
        lo, hi = -(1 << (c.act_bits - 1)), (1 << (c.act_bits - 1)) - 1
        y = Signal(signed(c.acc_bits + 1))
        m.d.comb += y.eq(Mux(self.relu & (w2_shifted < 0), 0, w2_shifted))
        m.d.comb += [
            self.out_data.eq(Mux(y > hi, hi, Mux(y < lo, lo, y))),
            self.out_addr.eq(Cat(w2_row, self.bank)),
            self.out_en.eq(w2_valid),
            self.busy.eq(w1_valid | w2_valid),
        ]
        return m

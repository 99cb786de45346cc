"""Write-back: bias, round, shift, ReLU, saturate (docs/design.md §5)."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths
from .pipeline import delay_line
from .pointer_reader import PointerReader

__all__ = ["WriteBack", "shift_window", "overflow_mask"]


def shift_window(x, shift, width: int, bits=None):
    """The low `width` bits of ``x >> shift`` (arithmetic; signed, and
    sign-extended to `width` where fewer bits remain), from a log
    shifter that takes the largest steps first and keeps, at each stage,
    only the bits the later stages can still reach. `bits` (default: all)
    are the bits of `shift` to apply, so a shift can be split over stages."""
    x = Value.cast(x).as_signed()
    bits = range(len(shift)) if bits is None else bits
    later = sum(1 << b for b in bits)                 # what the remaining stages can still shift
    value = x
    for b in sorted(bits, reverse=True):
        step = 1 << b
        later -= step
        keep = min(len(value), width + later)
        shifted = (value >> step) if step < len(value) else Mux(value[-1], -1, 0)
        value = Mux(shift[b], shifted, value)[:keep].as_signed()
    # narrower than `width` (an accumulator not much wider than the window):
    # signed, so that it sign-extends where it is assigned; a slice would not
    return value[:width].as_signed() if len(value) >= width else value


def overflow_mask(widths: Widths, shift):
    """Bit ``i`` (``0 <= i < acc_bits - 1``) set where a sign change of the
    sum at bit ``i`` means the shifted value does not fit the write-back's
    window: ``i >= shift + act_bits``."""
    c = widths.config
    return Cat(*(Value.cast(shift) + c.act_bits <= i for i in range(c.acc_bits - 1)))


class WriteBack(wiring.Component):
    """Turns accumulators into the layer's output activations, one row per
    cycle, in the same steps as `sw.fixedpoint.writeback`.

    Timing, for a row ``i`` presented on `row` with `valid` in cycle ``t``:

    * W0, ``t``: the accumulator (through the arithmetic unit's `wb_*` port)
      and the bias at pointer-bank word ``bias_base + i`` (`bias_read`,
      `bias_addr`: the pointer reader's banks, idle during write-back) are
      read.
    * W1, ``t + 1``: the accumulator's value arrives and waits in
      registers for the bias; its row's `clear` is given (the arithmetic
      unit writes the zero a cycle later).
    * W2, ``t + 3`` (the bias is there, `PointerReader.bias_latency`):
      ``acc + bias`` modulo ``2**acc_bits``, into a register.
    * W3, ``t + 4``, and W4, ``t + 5``: ``(sum + 2**(shift-1)) >> shift``
      exactly, the large steps of the shifter in W3, the small ones in W4.
    * W5, ``t + 6``: rounding, ReLU and saturation to ``act_bits``.
    * ``t + 7`` (``t + latency``): the output, from a register, is
      written to `out_addr` (bank and row) of the activation buffer (LUT RAM
      on the ECP5, whose write data wants a short path).

    With `Config.short_pipeline` the bias is there a cycle sooner (``t +
    2``), the whole shift is one stage (W3) and rounding and saturation the
    next (W4): the output is written in ``t + 5``. (The sum keeps its
    register: on the UP5K, block RAM -> adder -> shifter is 34 ns.)
    """

    LOW_STEPS = 3                  # shift bits of the second shifter stage (steps 1, 2, 4)

    @staticmethod
    def latency(config) -> int:
        """Cycles from a row's `valid` to its output write."""
        return PointerReader.bias_latency(config) + (3 if config.short_pipeline else 4)

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
            "overflow_mask": In(c.acc_bits - 1),
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
        c = self._widths.config
        m = Module()

        # W0
        latency, bias_latency = self.latency(c), PointerReader.bias_latency(c)
        m.d.comb += [self.bias_read.eq(self.valid), self.bias_addr.eq(self.bias_base + self.row)]
        valid = delay_line(m, self.valid, latency - 1, "valid")   # valid[n]: in stage W(n + 1), to the last
        row = delay_line(m, self.row, latency - 1, "row", data=True)
        m.d.comb += [self.clear.eq(valid[0]), self.clear_row.eq(row[0])]

        # W1: the accumulator's value waits for the bias
        acc = delay_line(m, self.acc_data, bias_latency - 1, "acc", data=True)[-1].as_signed() \
            if bias_latency > 1 else self.acc_data

        # W2. The sum is registered so that the adder's carry chain and the
        # barrel shifter are not one path (for Fmax; synth_ecp5's default
        # wide-LUT mapping also drops from 634 to 335 LUT4 for this block).
        w2_total = Signal(signed(c.acc_bits), reset_less=True)    # wraps, like every accumulation
        m.d.sync += w2_total.eq(acc + self.bias_data)

        # W3: (x + 2**(s-1)) >> s == ((2z) + 1) >> 1 with z = 2x >> s, for every
        # s >= 0 (floors nest): no special case for s = 0, nothing can wrap.
        # The result saturates unless z fits `window` bits, so only those are
        # shifted out (big shifts first, each stage no wider than needed);
        # the rest only decides whether z fits: x >> (s + window - 2) must be
        # 0 or -1, i.e. x has no sign change at or above bit s + window - 2
        # (the layer's `overflow_mask`, computed once by the control unit).
        window = c.act_bits + 2
        x2 = Cat(C(0, 1), w2_total)
        changes = (w2_total ^ (w2_total >> 1))[:c.acc_bits - 1]
        w3_outside = Signal(reset_less=True)
        w3_negative = Signal(reset_less=True)
        m.d.sync += [w3_outside.eq((changes & self.overflow_mask).any()), w3_negative.eq(w2_total < 0)]
        if c.short_pipeline:
            # the whole shift in W3
            w3_z = Signal(signed(window), reset_less=True)
            m.d.sync += w3_z.eq(shift_window(x2, self.shift, window))
        else:
            # the large steps in W3, the small ones (below LOW_STEPS) in W4
            low = range(min(self.LOW_STEPS, len(self.shift)))
            high = range(len(low), len(self.shift))
            w3_partial = Signal(signed(window + (1 << len(low)) - 1), reset_less=True)
            m.d.sync += w3_partial.eq(shift_window(x2, self.shift, len(w3_partial), high))
            shift = delay_line(m, self.shift, 1, "shift", data=True)[-1]     # constant in a layer; kept in step
            w4_z = Signal(signed(window), reset_less=True)
            w4_outside, w4_negative = Signal(reset_less=True), Signal(reset_less=True)
            m.d.sync += [w4_z.eq(shift_window(w3_partial, shift, window, low)),
                         w4_outside.eq(w3_outside), w4_negative.eq(w3_negative)]
            w3_z, w3_outside, w3_negative = w4_z, w4_outside, w4_negative

        # W5 (W3 when short): round, ReLU, saturate: y = (z + 1) >> 1; y <= hi iff z <= 2 hi,
        # y >= lo iff z >= 2 lo - 1, y < 0 iff z < -1
        lo, hi = -(1 << (c.act_bits - 1)), (1 << (c.act_bits - 1)) - 1
        above = Mux(w3_outside, ~w3_negative, w3_z > 2 * hi)
        below = Mux(w3_outside, w3_negative, w3_z < 2 * lo - 1)
        negative = Mux(w3_outside, w3_negative, w3_z < -1)          # y < 0
        rounded = Signal(signed(window))
        m.d.comb += rounded.eq((w3_z + 1) >> 1)
        out = Signal.like(self.out_data, reset_less=True)
        with m.If(self.relu & negative):
            m.d.sync += out.eq(0)
        with m.Elif(above):
            m.d.sync += out.eq(hi)
        with m.Elif(below):
            m.d.sync += out.eq(lo)
        with m.Else():
            m.d.sync += out.eq(rounded)

        # the write, from registers
        out_en = Signal()
        out_addr = Signal.like(self.out_addr, reset_less=True)
        m.d.sync += [out_en.eq(valid[-1]), out_addr.eq(Cat(row[-1], self.bank))]
        m.d.comb += [
            self.out_data.eq(out), self.out_addr.eq(out_addr), self.out_en.eq(out_en),
            self.busy.eq(Cat(*valid).any() | out_en),
        ]
        return m

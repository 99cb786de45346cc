"""The exit test: is an exit head confident enough to end the run?"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths

__all__ = ["ExitTest"]


class ExitTest(wiring.Component):
    """Keeps the largest and second-largest of the values given since
    `start` and says whether their difference (the margin) reaches
    `threshold`.

    Timing: `start` in cycle ``t`` empties it for values from ``t + 1``; a
    value given (`valid`) in cycle ``t`` is registered first (it comes
    straight from the output FIFO's read, which is far away: that path set
    the ECP5's Fmax), is among the top two from ``t + 2``, and `passed`
    (registered) counts it from ``t + 3``. The margin of two
    ``act_bits`` values fits ``act_bits + 1`` bits unsigned, as does
    `threshold` (``2**act_bits`` never passes)."""

    def __init__(self, widths: Widths):
        a = widths.config.act_bits
        super().__init__({
            "start": In(1),
            "valid": In(1), "value": In(signed(a)),
            "threshold": In(a + 1),
            "passed": Out(1),
        })
        self._bits = a

    def elaborate(self, platform):
        m = Module()
        # values are kept offset by 2**(act_bits - 1), so the lowest is 0 and a
        # compare is an unsigned one: a carry chain without the sign
        # correction after it (the compare's loop was the ECP5's critical
        # path); the margin is the same either way
        bias = 1 << (self._bits - 1)
        top1 = Signal(self._bits)
        top2 = Signal(self._bits)
        # a cycle without a value registers the lowest value, which changes
        # neither top1 nor top2: `valid` then stays out of the compare's loop
        v = Signal(self._bits)
        m.d.sync += v.eq(Mux(self.valid, self.value.as_unsigned() ^ bias, 0))
        with m.If(self.start):
            m.d.sync += [top1.eq(0), top2.eq(0)]
        with m.Elif(v > top1):
            m.d.sync += [top1.eq(v), top2.eq(top1)]
        with m.Elif(v > top2):
            m.d.sync += top2.eq(v)
        margin = Signal(self._bits + 1)
        m.d.comb += margin.eq(top1 - top2)          # top1 >= top2 always
        m.d.sync += self.passed.eq(margin >= self.threshold)
        return m

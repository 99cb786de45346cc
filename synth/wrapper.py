"""The accelerator behind three pins, for parts with fewer I/Os than its ports.

The iCE40 UP5K has 39 I/Os and nextpnr-ice40 has no out-of-context mode, so
the design is measured inside a wrapper: every input port is a bit of one
shift register fed from `sin`, every output port is captured into another
(`capture`) that shifts out on `sout`. The wrapper adds two registers of the
ports' width and a 2-input mux per output bit; the report says so.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SerialWrapper"]


class SerialWrapper(wiring.Component):
    def __init__(self, inner: wiring.Component):
        self.inner = inner
        super().__init__({"sin": In(1), "capture": In(1), "sout": Out(1)})

    def port_bits(self) -> tuple[int, int]:
        """Bits of the inner design's inputs and outputs."""
        ins, outs = self._ports()
        return sum(Value.cast(v).shape().width for v in ins), sum(Value.cast(v).shape().width for v in outs)

    def _ports(self):
        members = list(self.inner.signature.flatten(self.inner))
        return ([v for _, member, v in members if member.flow == wiring.In],
                [v for _, member, v in members if member.flow == wiring.Out])

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        ins, outs = self._ports()
        ins, outs = [Value.cast(v) for v in ins], [Value.cast(v) for v in outs]
        n_in, n_out = self.port_bits()
        chain = Signal(n_in)
        m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
        lsb = 0
        for v in ins:
            m.d.comb += v.eq(chain[lsb:lsb + len(v)])
            lsb += len(v)
        captured = Signal(n_out)
        with m.If(self.capture):
            m.d.sync += captured.eq(Cat(*outs))
        with m.Else():
            m.d.sync += captured.eq(captured >> 1)
        m.d.comb += self.sout.eq(captured[0])
        return m

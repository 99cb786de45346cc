"""Pointer reader: `ptr[j]` and `ptr[j+1]` in one cycle from two banks, which
also hold the biases."""

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths, activation_layout, column_layout, spec_memory
from .parts import add_parts

__all__ = ["PointerReader"]


class PointerReader(wiring.Component):
    """Turns `(j, a_j)` into the column to stream: entries
    ``ptr[g] .. ptr[g+1] - 1`` with ``g = ptr_base + j``.

    Pointers live in two banks, even ``g`` in `even`, odd in `odd`, so the two
    neighbours are always in different banks and read in the same cycle.

    Timing (a two-stage pipeline, P0 and P1):

    * P0, cycle ``t``: an activation is taken from `act` when P1 is free or
      being emptied; both banks are read.
    * P1, cycle ``t + 1``: the pointers are there. An empty column
      (``ptr[g] == ptr[g+1]``) is dropped in this cycle: it costs one cycle of
      this stage and nothing downstream. A nonempty one is offered on `col`
      and held until taken; while it is held, P0 does not advance.

    The banks also hold the biases (`sw.format`: low half in the even bank,
    high half in the odd one, at the same word). During write-back, when no
    activation arrives, `bias_read` in cycle ``t`` reads word `bias_addr` of
    both banks and `bias` holds the joined, signed value in ``t + 1``.
    """

    def __init__(self, widths: Widths, *, init_even=(), init_odd=()):
        c = widths.config
        self._widths = widths
        self.even = spec_memory(c, "ptr_even", init_even)
        self.odd = spec_memory(c, "ptr_odd", init_odd)
        self.image_memories = {"ptr_even": self.even, "ptr_odd": self.odd}
        bank = memory.WritePort.Signature(addr_width=widths.bank_addr, shape=self.even.shape)
        super().__init__({
            "act": In(stream.Signature(activation_layout(widths))),
            "col": Out(stream.Signature(column_layout(widths))),
            "ptr_base": In(widths.gptr),
            "busy": Out(1),
            "bias_read": In(1),
            "bias_addr": In(widths.bank_addr),
            "bias": Out(signed(c.acc_bits)),
            "host_even": Out(bank),
            "host_odd": Out(bank),
        })

    def elaborate(self, platform):
        m = Module()
        add_parts(m, self)
        rd_even, rd_odd = self.even.read_port(), self.odd.read_port()
        for host, mem in ((self.host_even, self.even), (self.host_odd, self.odd)):
            wr = mem.write_port()
            m.d.comb += [wr.addr.eq(host.addr), wr.data.eq(host.data), wr.en.eq(host.en)]

        p1_valid = Signal()
        p1_value = Signal.like(self.act.payload.value)
        p1_odd = Signal()                 # g was odd: ptr[g] is in the odd bank

        pb = self._widths.pointer
        start = Mux(p1_odd, rd_odd.data[:pb], rd_even.data[:pb])
        end = Mux(p1_odd, rd_even.data[:pb], rd_odd.data[:pb])
        empty = start == end
        taken = p1_valid & (empty | self.col.ready)
        advance = ~p1_valid | taken

        g = Signal(self._widths.gptr)
        c = self._widths.config
        low = c.bias_low_bits
        m.d.comb += [
            g.eq(self.ptr_base + self.act.payload.index),
            rd_odd.addr.eq(Mux(self.bias_read, self.bias_addr, g >> 1)),
            rd_even.addr.eq(Mux(self.bias_read, self.bias_addr, (g >> 1) + g[0])),
            rd_odd.en.eq(advance | self.bias_read),
            rd_even.en.eq(advance | self.bias_read),
            self.bias.eq(Cat(rd_even.data[:low], rd_odd.data[:c.acc_bits - low]).as_signed()),
            self.act.ready.eq(advance),
            self.col.valid.eq(p1_valid & ~empty),
            self.col.payload.start.eq(start),
            self.col.payload.end.eq(end),
            self.col.payload.value.eq(p1_value),
            self.busy.eq(p1_valid),
        ]
        with m.If(advance):
            m.d.sync += [
                p1_valid.eq(self.act.valid),
                p1_value.eq(self.act.payload.value),
                p1_odd.eq(g[0]),
            ]
        return m

"""Pointer reader: `ptr[j]` and `ptr[j+1]` in one cycle from two banks."""

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths, activation_layout, column_layout

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
    """

    def __init__(self, widths: Widths, *, init_even=(), init_odd=()):
        c = widths.config
        self._widths = widths
        self.even = memory.Memory(shape=unsigned(widths.pointer), depth=c.pointer_depth // 2, init=init_even)
        self.odd = memory.Memory(shape=unsigned(widths.pointer), depth=c.pointer_depth // 2, init=init_odd)
        bank = memory.WritePort.Signature(addr_width=widths.bank_addr, shape=unsigned(widths.pointer))
        super().__init__({
            "act": In(stream.Signature(activation_layout(widths))),
            "col": Out(stream.Signature(column_layout(widths))),
            "ptr_base": In(widths.gptr),
            "busy": Out(1),
            "host_even": Out(bank),
            "host_odd": Out(bank),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ptr_even = self.even
        m.submodules.ptr_odd = self.odd
        rd_even, rd_odd = self.even.read_port(), self.odd.read_port()
        for host, mem in ((self.host_even, self.even), (self.host_odd, self.odd)):
            wr = mem.write_port()
            m.d.comb += [wr.addr.eq(host.addr), wr.data.eq(host.data), wr.en.eq(host.en)]

        p1_valid = Signal()
        p1_value = Signal.like(self.act.payload.value)
        p1_odd = Signal()                 # g was odd: ptr[g] is in the odd bank

        start = Mux(p1_odd, rd_odd.data, rd_even.data)
        end = Mux(p1_odd, rd_even.data, rd_odd.data)
        empty = start == end
        taken = p1_valid & (empty | self.col.ready)
        advance = ~p1_valid | taken

        g = Signal(self._widths.gptr)
        m.d.comb += [
            g.eq(self.ptr_base + self.act.payload.index),
            rd_odd.addr.eq(g >> 1),
            rd_even.addr.eq((g >> 1) + g[0]),
            rd_odd.en.eq(advance),
            rd_even.en.eq(advance),
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

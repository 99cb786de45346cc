"""Output stage: the last layer's outputs leave in index order."""

from amaranth import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths

__all__ = ["OutputStage", "output_layout", "OUTPUT_FIFO_DEPTH"]

OUTPUT_FIFO_DEPTH = 4


def output_layout(w: Widths) -> data.StructLayout:
    return data.StructLayout({"data": signed(w.act), "last": unsigned(1)})


class OutputStage(wiring.Component):
    """After `start`, reads output ``j = 0 .. n_out - 1`` from row
    ``j // n_pe`` of PE ``j % n_pe`` (all PEs read the same row; one is
    picked) and queues it for the `o` stream, one per cycle while the stream
    keeps up.

    Timing: read in cycle ``t``, picked in ``t + 1``, queued in ``t + 2``
    (a ``OUTPUT_FIFO_DEPTH``-deep first-word-fall-through FIFO, readable in
    ``t + 3``). A read is issued only when the FIFO will have room for it,
    so nothing in flight is ever dropped. `done` is high once every output
    has left on `o`.
    """

    def __init__(self, widths: Widths):
        self._widths = widths
        c = widths.config
        super().__init__({
            "start": In(1),
            "n_out": In(widths.count),
            "bank": In(1),
            "read_en": Out(1),
            "read_addr": Out(widths.act_addr),
            "pe_data": In(signed(c.act_bits)).array(c.n_pe),
            "o": Out(stream.Signature(output_layout(widths))),
            "done": Out(1),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()
        layout = output_layout(w)
        m.submodules.fifo = q = fifo.SyncFIFO(width=layout.size, depth=OUTPUT_FIFO_DEPTH)

        j = Signal(w.count)
        active = Signal()
        o1_valid, o1_last, o1_pe = Signal(), Signal(), Signal(max(w.pe, 1))
        o2_valid = Signal()
        o2 = Signal(layout)

        in_flight = o1_valid.as_unsigned() + o2_valid
        issue = active & (q.level + in_flight < OUTPUT_FIFO_DEPTH)
        m.d.comb += [
            self.read_en.eq(issue),
            self.read_addr.eq(Cat((j >> w.pe)[:w.row], self.bank)),
            q.w_data.eq(o2), q.w_en.eq(o2_valid),
            self.o.payload.eq(q.r_data), self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready),
            self.done.eq(~active & ~o1_valid & ~o2_valid & (q.level == 0)),
        ]
        with m.If(self.start):
            m.d.sync += [j.eq(0), active.eq(1)]
        with m.Elif(issue):
            m.d.sync += [j.eq(j + 1), active.eq(j + 1 < self.n_out)]
        m.d.sync += [o1_valid.eq(issue), o1_last.eq(j + 1 == self.n_out), o1_pe.eq(j[:w.pe] if w.pe else 0)]
        picked = Array(self.pe_data)[o1_pe] if c.n_pe > 1 else self.pe_data[0]
        m.d.sync += [o2_valid.eq(o1_valid), o2.data.eq(picked), o2.last.eq(o1_last)]
        return m

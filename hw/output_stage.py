"""Output stage: the last layer's outputs leave in index order."""

from amaranth import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths
from .pipeline import delay_line, index_copies, reduce_stages, select

__all__ = ["OutputStage", "output_layout"]


def output_layout(w: Widths) -> data.StructLayout:
    """An output: its value, `last` on the run's final one, and which exit
    head the run left by (0: none, the last layer; docs/design.md §15)."""
    return data.StructLayout({"data": signed(w.act), "last": unsigned(1), "exit": unsigned(w.layer)})


class OutputStage(wiring.Component):
    """After `start`, reads output ``j = 0 .. n_out - 1`` from row
    ``j // n_pe`` of PE ``j % n_pe`` (all PEs read the same row; one is
    picked) and queues it for the `o` stream, one per cycle while the stream
    keeps up.

    Timing: a read issued in cycle ``t`` reaches the PEs `fanout` cycles
    later (the registered fan-out of `hw.pipeline`), their buffers answer a
    cycle after that, and a registered `hw.pipeline.select` tree picks the
    PE in ``reduce_stages(n_pe)`` more: the value is queued in
    ``t + LATENCY`` into a first-word-fall-through FIFO, readable a cycle
    later. A read is issued only when the FIFO will have room for it and
    every read before it, so nothing in flight is ever dropped, and the FIFO
    (``LATENCY + 2`` deep) lets one output leave per cycle. `done` is high
    once every output has left on `o`.
    """

    @staticmethod
    def latency_for(n_pe: int, fanout: int) -> int:
        """Cycles from a read's issue to its value entering the FIFO."""
        return fanout + 1 + reduce_stages(n_pe)

    def __init__(self, widths: Widths, fanout: int = 0):
        self._widths = widths
        c = widths.config
        self.latency = self.latency_for(c.n_pe, fanout)
        self._fanout = fanout
        self.fifo_depth = self.latency + 2
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
        w = self._widths
        m = Module()
        layout = data.StructLayout({"data": signed(w.act), "last": unsigned(1)})     # the exit is the core's
        m.submodules.fifo = q = fifo.SyncFIFO(width=layout.size, depth=self.fifo_depth)

        j = Signal(w.count)
        active = Signal()
        in_flight = Signal(range(self.latency + 1))
        issue = active & (q.level + in_flight < self.fifo_depth)
        arrive = delay_line(m, issue, self.latency, "arrive")[-1]
        last = delay_line(m, j + 1 == self.n_out, self.latency, "last")[-1]
        # the PE's number, a cycle ahead of the PEs' answers (as `select` takes it)
        pe = j[:w.pe] if w.pe else C(0, 1)
        pe = index_copies(m, pe, len(self.pe_data), self._fanout, "pe")
        value = select(m, list(self.pe_data), pe, "pick").as_signed()
        with m.If(issue & ~arrive):
            m.d.sync += in_flight.eq(in_flight + 1)
        with m.Elif(arrive & ~issue):
            m.d.sync += in_flight.eq(in_flight - 1)
        entry = Signal(layout)
        m.d.comb += [
            self.read_en.eq(issue),
            self.read_addr.eq(Cat((j >> w.pe)[:w.row], self.bank)),
            entry.data.eq(value), entry.last.eq(last),
            q.w_data.eq(entry), q.w_en.eq(arrive),
            self.o.payload.data.eq(q.r_data[:w.act]), self.o.payload.last.eq(q.r_data[w.act]),
            self.o.valid.eq(q.r_rdy), q.r_en.eq(self.o.ready),
            self.done.eq(~active & (in_flight == 0) & (q.level == 0)),
        ]
        with m.If(self.start):
            m.d.sync += [j.eq(0), active.eq(1)]
        with m.Elif(issue):
            m.d.sync += [j.eq(j + 1), active.eq(j + 1 < self.n_out)]
        return m

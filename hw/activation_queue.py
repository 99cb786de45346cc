"""The activation queue in front of each PE (EIE's per-PE FIFO)."""

from amaranth import *
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths, queued_layout

__all__ = ["ActivationQueue"]


class ActivationQueue(wiring.Component):
    """A first-word-fall-through FIFO of `(g, a_j)`, ``fifo_depth`` deep.

    Timing: a pair written in cycle ``t`` can be read in cycle ``t + 2``
    (`lib.fifo.SyncFIFOBuffered`: the memory is read into a register, so it
    can be block RAM, as on the iCE40, and no LUT-RAM read reaches the
    pointer reader).
    `almost_full` is high while the queue holds at least ``fifo_depth -
    slack`` pairs (straight from the level register, into the registered
    reduction of `hw.pipeline`): the broadcast sees it late and has pairs in
    flight, and `slack` (`hw.accelerator.queue_slack`) covers exactly those,
    so a write never meets a full queue. `empty` is ``level == 0``.
    """

    def __init__(self, widths: Widths, slack: int = 0):
        self._layout = queued_layout(widths)
        self._depth = widths.config.fifo_depth
        if slack >= self._depth:
            raise ValueError(f"fifo_depth {self._depth} leaves no room beside {slack} pairs in flight")
        self._threshold = self._depth - slack
        super().__init__({
            "w": In(stream.Signature(self._layout)),
            "r": Out(stream.Signature(self._layout)),
            "almost_full": Out(1),
            "empty": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=self._layout.size, depth=self._depth)
        m.d.comb += [
            q.w_data.eq(self.w.payload), q.w_en.eq(self.w.valid), self.w.ready.eq(q.w_rdy),
            self.r.payload.eq(q.r_data), self.r.valid.eq(q.r_rdy), q.r_en.eq(self.r.ready),
            self.empty.eq(q.level == 0),
            self.almost_full.eq(q.level >= self._threshold),
        ]
        return m

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
    slack`` pairs (into the registered reduction of `hw.pipeline`): the
    broadcast sees it late and has pairs in flight, and `slack`
    (`hw.accelerator.queue_slack`) covers exactly those, so a write never
    meets a full queue. `empty` is ``level == 0``.

    Both flags are registers, kept from a copy of the FIFO's level computed a
    cycle ahead, so they equal the compares on the level in every cycle: the
    FIFO's own level register then drives only the FIFO, and the reduction's
    long wires start at flip-flops (at 16 PEs the level's loop through its
    far compares was the critical path).
    """

    def __init__(self, widths: Widths, slack: int = 0):
        if widths.config.fifo_depth < 3:
            # below 3, `lib.fifo.SyncFIFOBuffered` can refuse a write while not full
            raise ValueError(f"fifo_depth {widths.config.fifo_depth}: an activation queue needs at least 3")
        self._layout = queued_layout(widths)
        self._depth = widths.config.fifo_depth
        if slack >= self._depth:
            raise ValueError(f"fifo_depth {self._depth} leaves no room beside {slack} pairs in flight")
        self._threshold = self._depth - slack
        self._fifo = fifo.SyncFIFOBuffered(width=self._layout.size, depth=self._depth)
        self._level = Signal(range(self._depth + 1))    # the FIFO's level, kept beside it
        super().__init__({
            "w": In(stream.Signature(self._layout)),
            "r": Out(stream.Signature(self._layout)),
            "almost_full": Out(1),
            "empty": Out(1),
        })

    def flags_hold(self) -> Value:
        """True while the flags and the level copy agree with the FIFO (for
        the proofs in `formal`, whose induction needs it stated)."""
        return ((self._level == self._fifo.level) & (self.empty == (self._level == 0))
                & (self.almost_full == (self._level >= self._threshold)))

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = self._fifo
        m.d.comb += [
            q.w_data.eq(self.w.payload), q.w_en.eq(self.w.valid), self.w.ready.eq(q.w_rdy),
            self.r.payload.eq(q.r_data), self.r.valid.eq(q.r_rdy), q.r_en.eq(self.r.ready),
        ]
        level = self._level
        next_level = Signal.like(level)
        # a write is taken unless the queue is full: for the FIFO that is `w_rdy`,
        # but its inner level is placed with the FIFO, so the copy decides
        # (the proofs check that both agree in every cycle)
        written = self.w.valid & (level != self._depth)
        m.d.comb += next_level.eq(level + written - (self.r.valid & self.r.ready))
        empty = Signal(init=1)
        almost_full = Signal()
        m.d.sync += [
            level.eq(next_level),
            empty.eq(next_level == 0),
            almost_full.eq(next_level >= self._threshold),
        ]
        m.d.comb += [self.empty.eq(empty), self.almost_full.eq(almost_full)]
        return m

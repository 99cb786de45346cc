"""Broadcast: find nonzero activations and send one per cycle to every PE."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amaranth.utils import ceil_log2

from .layouts import Widths, activation_layout, input_layout, queued_layout

__all__ = ["ArbiterNode", "NonzeroTree", "InputStage", "Broadcast"]


class ArbiterNode(wiring.Component):
    """Merges `n` streams into one registered stream, taking the
    lowest-numbered valid input: one pair per cycle, one cycle of latency.

    The output has a skid register, so the inputs' `ready` depends on this
    node's registers and its inputs' `valid` only, never on the next node's
    `ready`: no combinational path runs up the tree."""

    def __init__(self, layout, n: int):
        self._n = n
        super().__init__({
            "ins": In(stream.Signature(layout)).array(n),
            "out": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.out.payload, reset_less=True)
        accept = ~skid_valid
        chosen, taken, payload = Signal(), Signal(), Signal.like(self.out.payload)
        for i, port in enumerate(self.ins):     # a priority chain: earlier inputs win
            take = accept & port.valid & ~chosen
            m.d.comb += port.ready.eq(take)
            with m.If(take):
                m.d.comb += [taken.eq(1), payload.eq(port.payload)]
            next_chosen = Signal(name=f"chosen_{i}")
            m.d.comb += next_chosen.eq(chosen | port.valid)
            chosen = next_chosen
        free = ~self.out.valid | self.out.ready
        with m.If(free):
            with m.If(skid_valid):
                m.d.sync += [self.out.payload.eq(skid), skid_valid.eq(0)]
            with m.Elif(taken):
                m.d.sync += [self.out.valid.eq(1), self.out.payload.eq(payload)]
            with m.Else():
                m.d.sync += self.out.valid.eq(0)
        with m.Elif(taken):
            m.d.sync += [skid.eq(payload), skid_valid.eq(1)]
        return m


class NonzeroTree(wiring.Component):
    """EIE's leading-nonzero detection as a tree of `ArbiterNode`s with
    `fan_in` inputs each: every PE offers its next nonzero, the tree delivers
    one per cycle. Latency: one cycle per level, ``ceil(log_fan_in(n_pe))``
    levels (one level for a single PE). `idle` is high when no node holds a
    pair."""

    def __init__(self, widths: Widths, fan_in: int = 4):
        self._layout = activation_layout(widths)
        self._n = widths.config.n_pe
        self._fan_in = fan_in
        super().__init__({
            "ins": In(stream.Signature(self._layout)).array(self._n),
            "out": Out(stream.Signature(self._layout)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        level = [wiring.flipped(port) for port in self.ins]   # seen from inside: sources
        nodes = []
        depth = 0
        while len(level) > 1 or depth == 0:
            groups = [level[i:i + self._fan_in] for i in range(0, len(level), self._fan_in)]
            next_level = []
            for g, group in enumerate(groups):
                node = ArbiterNode(self._layout, len(group))
                m.submodules[f"node_{depth}_{g}"] = node
                nodes.append(node)
                for port, src in zip(node.ins, group):
                    wiring.connect(m, src, port)
                next_level.append(node.out)
            level = next_level
            depth += 1
        wiring.connect(m, level[0], wiring.flipped(self.out))
        m.d.comb += self.idle.eq(~Cat(node.out.valid for node in nodes).any())    # a skid is never full alone
        return m


class InputStage(wiring.Component):
    """Layer 0's input: a stream of beats of `input_width` values in index
    order (the last beat's values beyond `n_in` are ignored). A beat is
    taken into a register; its nonzeros leave it one per cycle, numbered
    ``j``, and its zeros cost nothing: the next beat is taken in the cycle the
    register's last nonzero leaves, or the cycle after an all-zero beat
    arrived. So a beat costs ``max(1, nonzeros)`` cycles, and a value taken
    in cycle ``t`` is offered from ``t + 1``. Takes beats while `active` and
    values remain; `done` is high once `n_in` values have arrived and left.
    `start` restarts the count."""

    def __init__(self, widths: Widths):
        self._widths = widths
        super().__init__({
            "i": In(stream.Signature(input_layout(widths))),
            "out": Out(stream.Signature(activation_layout(widths))),
            "start": In(1),
            "active": In(1),
            "n_in": In(widths.count),
            "done": Out(1),
        })

    def elaborate(self, platform):
        w = self._widths
        lanes = w.config.input_width
        lane_bits = ceil_log2(lanes)
        m = Module()
        beat = Signal(input_layout(w), reset_less=True)
        pending = Signal(lanes)                     # lanes of the beat still to leave: nonzero and below n_in
        base = Signal(w.count, reset_less=True)     # index of the beat's first lane
        nxt = Signal(w.count, reset_less=True)      # index of the next beat's first lane
        left = Signal(w.count)                      # values not yet taken (registered: no subtractor per lane)
        # the lowest pending lane (a priority encoder, the last assignment wins)
        lane = Signal(range(lanes))
        for l in reversed(range(lanes)):
            with m.If(pending[l]):
                m.d.comb += lane.eq(l)
        only = (pending & (pending - 1)) == 0       # at most one lane pending
        offering = pending.any()
        leaving = offering & self.out.ready
        free = ~offering | (only & self.out.ready)
        take = self.active & (left != 0) & self.i.valid & free
        m.d.comb += [
            self.out.valid.eq(offering),
            self.out.payload.index.eq(Cat(lane, base[lane_bits:]) if lane_bits else base),
            self.out.payload.value.eq(beat[lane]),
            self.i.ready.eq(self.active & (left != 0) & free),
            self.done.eq((left == 0) & ~offering),
        ]
        with m.If(self.start):
            m.d.sync += [pending.eq(0), left.eq(self.n_in), nxt.eq(0)]
        with m.Elif(take):
            m.d.sync += [
                beat.eq(self.i.payload), base.eq(nxt), nxt.eq(nxt + lanes),
                pending.eq(Cat((self.i.payload[l] != 0) & (left > l) for l in range(lanes))),
                left.eq(Mux(left > lanes, left - lanes, 0)),
            ]
        with m.Elif(leaving):
            m.d.sync += pending.eq(pending & (pending - 1))        # the lowest lane has left
        return m


class Broadcast(wiring.Component):
    """The broadcast register: one `(g, a_j)` per cycle towards every PE's
    queue (through the registered fan-out of `hw.pipeline`), ``g = ptr_base
    + j`` added here once instead of in every PE. It loads from `src` when
    empty or being emptied, and pushes when `all_ok`: no queue was almost
    full (seen a fixed number of cycles late; the queues' slack covers the
    pairs in flight). `stall` is high in the cycles it holds a pair it may
    not push. `pushed` marks a push."""

    def __init__(self, widths: Widths):
        super().__init__({
            "src": In(stream.Signature(activation_layout(widths))),
            "ptr_base": In(widths.gptr),
            "valid": Out(1),
            "payload": Out(queued_layout(widths)),
            "all_ok": In(1),
            "pushed": Out(1),
            "stall": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        push = self.valid & self.all_ok
        load = ~self.valid | push
        m.d.comb += [self.src.ready.eq(load), self.pushed.eq(push), self.stall.eq(self.valid & ~self.all_ok)]
        with m.If(load):
            m.d.sync += [self.valid.eq(self.src.valid), self.payload.value.eq(self.src.payload.value),
                         self.payload.pointer.eq(self.ptr_base + self.src.payload.index)]
        return m

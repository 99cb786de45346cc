"""Broadcast: find nonzero activations and send up to `broadcast_width` a
cycle to every PE."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from amaranth.utils import ceil_log2

from .layouts import Widths, activation_layout, input_layout, queued_layout

__all__ = ["ArbiterNode", "NonzeroTree", "InputStage", "Broadcast"]


class ArbiterNode(wiring.Component):
    """Merges `n` streams into one registered stream: one pair per cycle,
    one cycle of latency.

    Each input has a holding register, and its `ready` is that register
    being empty: a flip-flop, so no `ready` depends on the next node or on
    the other inputs (at 32 and 64 PEs the path from a node's state through
    its arbitration to the nodes below it, placed far apart, set the ECP5's
    Fmax). An input hands its pair over whenever its holding register is
    empty; the output register, when free, takes the lowest-numbered input
    that has a pair (the one held for it, else the one handed over now),
    and a pair handed over but not taken is held. Each input's pairs leave
    in the order they came; pairs of different inputs may overtake each
    other (a layer's activations may come in any order)."""

    def __init__(self, layout, n: int):
        self._n = n
        super().__init__({
            "ins": In(stream.Signature(layout)).array(n),
            "out": Out(stream.Signature(layout)),
            "holding": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        free = ~self.out.valid | self.out.ready
        taken, payload = Signal(), Signal.like(self.out.payload)
        earlier = C(0, 1)                       # a lower-numbered input has a pair
        held_valid = []
        for i, port in enumerate(self.ins):
            hv = Signal(name=f"held_valid_{i}")
            held = Signal.like(self.out.payload, reset_less=True, name=f"held_{i}")
            held_valid.append(hv)
            offers = hv | port.valid
            pick = Signal(name=f"pick_{i}")
            m.d.comb += [port.ready.eq(~hv), pick.eq(offers & ~earlier)]
            with m.If(pick):
                m.d.comb += [taken.eq(1), payload.eq(Mux(hv, held, port.payload))]
            with m.If(pick & free):
                m.d.sync += hv.eq(0)            # it leaves, held or straight through
            with m.Elif(port.valid & ~hv):
                m.d.sync += [held.eq(port.payload), hv.eq(1)]
            nxt = Signal(name=f"earlier_{i}")
            m.d.comb += nxt.eq(earlier | offers)
            earlier = nxt
        with m.If(free):
            m.d.sync += [self.out.valid.eq(taken), self.out.payload.eq(payload)]
        m.d.comb += self.holding.eq(Cat(*held_valid).any())
        return m


class NonzeroTree(wiring.Component):
    """EIE's leading-nonzero detection as a tree of `ArbiterNode`s with
    `fan_in` inputs each: every PE offers its next nonzero, the tree delivers
    one per cycle. Latency: one cycle per level, ``ceil(log_fan_in(n))``
    levels (one level for a single PE), `n` the PEs it merges (default all).
    `idle` is high when no node holds a pair."""

    FAN_IN = 4          # inputs per node (the cycle model's trees too: `sw.perf.Timing.tree_fan_in`)

    def __init__(self, widths: Widths, fan_in: int = FAN_IN, n: int | None = None):
        self._layout = activation_layout(widths)
        self._n = widths.config.n_pe if n is None else n
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
        m.d.comb += self.idle.eq(~Cat(*(Cat(node.out.valid, node.holding) for node in nodes)).any())
        return m


class InputStage(wiring.Component):
    """Layer 0's input: a stream of beats of `input_width` values in index
    order (the last beat's values beyond `n_in` are ignored). A beat is
    taken into a register; its nonzeros leave it ``broadcast_width`` a cycle
    (`out[0]` the lowest-numbered, `out[1]` the next; one `ready` for all),
    numbered ``j``, and its zeros cost nothing: the next beat is taken in the
    cycle the register's last nonzeros leave, or the cycle after an all-zero
    beat arrived. So a beat costs ``max(1, ceil(nonzeros / broadcast_width))``
    cycles, and a value taken in cycle ``t`` is offered from ``t + 1``. Takes
    beats while `active` and values remain; `done` is high once `n_in` values
    have arrived and left. `start` restarts the count."""

    def __init__(self, widths: Widths):
        self._widths = widths
        super().__init__({
            "i": In(stream.Signature(input_layout(widths))),
            "out": Out(stream.Signature(activation_layout(widths))).array(widths.config.broadcast_width),
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
        ready = self.out[0].ready
        rest = pending
        for k, out in enumerate(self.out):
            # the lowest lane of `rest` (a priority encoder: the last assignment wins)
            lane = Signal(range(lanes), name=f"lane_{k}")
            for l in reversed(range(lanes)):
                with m.If(rest[l]):
                    m.d.comb += lane.eq(l)
            m.d.comb += [
                out.valid.eq(rest.any()),
                out.payload.index.eq(Cat(lane, base[lane_bits:]) if lane_bits else base),
                out.payload.value.eq(beat[lane]),
            ]
            nxt_rest = Signal(lanes, name=f"rest_{k}")
            m.d.comb += nxt_rest.eq(rest & (rest - 1))         # without its lowest lane
            rest = nxt_rest
        offering = pending.any()
        free = ~offering | (ready & (rest == 0))
        take = self.active & (left != 0) & self.i.valid & free
        m.d.comb += [
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
        with m.Elif(offering & ready):
            m.d.sync += pending.eq(rest)                        # the lowest lanes have left
        return m


class Broadcast(wiring.Component):
    """The broadcast register: up to ``broadcast_width`` `(g, a_j)` a cycle
    towards every PE's queues (through the registered fan-out of
    `hw.pipeline`), ``g = ptr_base + j`` added here once instead of in every
    PE. It loads from `src` (``src[1]`` only with ``src[0]``, in order) when
    empty or being emptied, and pushes when `all_ok`: no queue was almost
    full (seen a fixed number of cycles late; the queues' slack covers the
    pairs in flight). With two lanes the activations of a layer alternate
    between the PEs' two queues: `valid[q]` and `payload[q]` go to queue
    ``q``, the first activation of a layer (after `layer_start`) to queue 0.
    `busy` is high while it holds a pair; `stall` in the cycles it holds one
    it may not push. `pushed` marks a push."""

    def __init__(self, widths: Widths):
        lanes = widths.config.broadcast_width
        super().__init__({
            "src": In(stream.Signature(activation_layout(widths))).array(lanes),
            "ptr_base": In(widths.gptr),
            "layer_start": In(1),
            "valid": Out(lanes),
            "payload": Out(queued_layout(widths)).array(lanes),
            "busy": Out(1),
            "all_ok": In(1),
            "pushed": Out(1),
            "stall": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes = len(self.src)
        busy = self.valid.any()
        push = busy & self.all_ok
        load = ~busy | push
        m.d.comb += [self.busy.eq(busy), self.pushed.eq(push), self.stall.eq(busy & ~self.all_ok)]
        for src in self.src:
            m.d.comb += src.ready.eq(load)
        if lanes == 1:
            with m.If(load):
                m.d.sync += [self.valid.eq(self.src[0].valid), self.payload[0].value.eq(self.src[0].payload.value),
                             self.payload[0].pointer.eq(self.ptr_base + self.src[0].payload.index)]
            return m
        # two lanes: the next activation goes to queue `turn`, the one after it to the other
        turn = Signal()
        with m.If(self.layer_start):
            m.d.sync += turn.eq(0)
        with m.Elif(load):
            m.d.sync += turn.eq(turn ^ (self.src[0].valid & ~self.src[1].valid))
        with m.If(load):
            for q in range(2):
                first = turn == q                           # this queue takes src[0], else src[1]
                for name, value in (("value", lambda s: s.payload.value),
                                    ("pointer", lambda s: self.ptr_base + s.payload.index)):
                    m.d.sync += self.payload[q][name].eq(Mux(first, value(self.src[0]), value(self.src[1])))
                m.d.sync += self.valid[q].eq(Mux(first, self.src[0].valid, self.src[1].valid))
        return m

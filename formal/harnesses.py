"""Checkers around the hardware blocks, one per proof.

Each harness drives its block from free inputs (`AnySeq`: any value in any
cycle; `AnyConst`: one value, chosen by the solver, for the whole trace),
keeps the block's environment to the rules the accelerator keeps (`Assume`),
and states the block's promise (`Assert`). Reset is held low: registers start
from their initial values, as after a reset. A `Cover` in each shows the
interesting case can happen at all under the assumptions.
"""

from __future__ import annotations

from amaranth import *
from amaranth.lib.wiring import In
from amaranth.hdl import Assert, Assume, Cover
from amaranth.hdl._ast import AnyConst, AnySeq      # Amaranth 0.5 keeps them here

from hw.activation_queue import ActivationQueue
from hw.arithmetic import ArithmeticUnit
from hw.broadcast import ArbiterNode, Broadcast, InputStage
from hw.codebook import CodebookStore
from hw.control import ControlUnit, LayerTable
from hw.hostport import HostPort
from hw.layouts import Widths, activation_layout, queued_layout
from hw.matrix_reader import MatrixReader
from hw.accelerator import deliveries, queue_slack, room
from hw.pipeline import delay_line, fanout_stages
from sw.config import Config

__all__ = ["QueueOrder", "StreamRules", "FlowControl", "MatrixOrder", "Forwarding", "Delivery", "HostAck",
           "StreamHold", "ControlBound", "InputOrder"]

# the smallest configuration the blocks build for: proofs stay seconds long,
# and nothing in the blocks depends on a size beyond its width
SMALL = dict(n_pe=2, code_bits=2, run_bits=2, act_bits=4, weight_bits=4, acc_bits=8, fifo_depth=4,
             entries_per_word=2, weight_depth=16, pointer_depth=8, row_depth=4, max_layers=2)


def small(**changes) -> Widths:
    return Widths(Config(**{**SMALL, **changes}))


def _no_reset(m):
    m.d.comb += Assume(~ResetSignal())


def _counter(m, event, bits, name):
    count = Signal(bits, name=name)
    with m.If(event):
        m.d.sync += count.eq(count + 1)
    return count


def _kept_rule(m, port, name) -> Value:
    """High unless `port` broke the stream rule this cycle: once valid and
    not taken, valid and payload must hold into the next cycle."""
    payload = Value.cast(port.payload)
    held_valid = Signal(name=f"{name}_held")
    held_payload = Signal(len(payload), name=f"{name}_held_payload")
    m.d.sync += [held_valid.eq(port.valid & ~port.ready), held_payload.eq(payload)]
    return ~held_valid | (port.valid & (payload == held_payload))


def _stream_source(m, port, name):
    """Drive `port` (a stream the block takes) from free values that keep the
    stream rule."""
    m.d.comb += [port.valid.eq(AnySeq(1)), port.payload.eq(AnySeq(len(port.payload.as_value())))]
    m.d.comb += Assume(_kept_rule(m, port, name))


def _stream_rule(m, port, name):
    """Assert that the stream `port` (driven by the block) keeps the rule."""
    m.d.comb += Assert(_kept_rule(m, port, name))


def _broadcast_to_queues(m, widths: Widths, slack: int, ptr_base) -> tuple[Broadcast, list]:
    """The broadcast, its registered fan-out and every PE's queues (one per
    lane, `slack` pairs of slack) with the almost-full reduction, wired as
    `hw.accelerator.Core` wires them (`deliveries`, `room`); sources that
    keep the stream rule (the second lane only with the first, as the input
    stage offers it) and PEs that read their queues at will. Returns the
    broadcast and the queues, ``queues[pe][lane]``."""
    c = widths.config
    m.submodules.bc = bc = Broadcast(widths)
    queues = [[ActivationQueue(widths, slack) for _ in range(c.broadcast_width)] for _ in range(c.n_pe)]
    for k, pe in enumerate(queues):
        for q, queue in enumerate(pe):
            m.submodules[f"q{k}_{q}"] = queue
            m.d.comb += queue.r.ready.eq(AnySeq(1))
    for q, src in enumerate(bc.src):
        _stream_source(m, src, f"src{q}")
    if c.broadcast_width == 2:
        m.d.comb += Assume(~bc.src[1].valid | bc.src[0].valid)
    m.d.comb += [bc.ptr_base.eq(ptr_base), bc.layer_start.eq(0),
                 bc.all_ok.eq(room(m, [queue.almost_full for pe in queues for queue in pe]))]
    for pe, acts in zip(queues, deliveries(m, bc, c.n_pe)):
        m.d.comb += Cat(*(Cat(queue.w.valid, queue.w.payload) for queue in pe)).eq(acts)
    return bc, queues


class QueueOrder(Elaboratable):
    """The activation queue hands out exactly what was written, in order,
    each pair once: the `n`-th pair read (for a solver-chosen `n`) is the
    `n`-th written; no read before its write; never more than `fifo_depth`
    held; it takes writes whenever it holds fewer than that; and its
    registered flags match what it holds in every cycle (`empty`,
    `almost_full` at its threshold)."""

    def __init__(self, widths=None):
        self.widths = widths or small()

    def elaborate(self, platform):
        m = Module()
        _no_reset(m)
        m.submodules.q = q = ActivationQueue(self.widths, slack=1)
        _stream_source(m, q.w, "w")
        m.d.comb += q.r.ready.eq(AnySeq(1))
        depth = self.widths.config.fifo_depth
        bits = 6
        wrote = _counter(m, q.w.valid & q.w.ready, bits, "wrote")
        read = _counter(m, q.r.valid & q.r.ready, bits, "read")
        n = AnyConst(bits)
        tracked = Signal(len(q.w.payload.as_value()))
        with m.If(q.w.valid & q.w.ready & (wrote == n)):
            m.d.sync += tracked.eq(q.w.payload.as_value())
        held = Signal(bits + 1)
        m.d.comb += held.eq(wrote - read)
        m.d.comb += [
            Assume(wrote != (1 << bits) - 1),                       # no wrap within the bound
            Assert(held <= depth),
            Assert(~q.r.valid | (held != 0)),                       # no underflow
            Assert(~(q.r.valid & q.r.ready & (read == n)) | (q.r.payload.as_value() == tracked)),
            Assert((held >= depth) | q.w.ready),                    # full only when full
            Assert(q.flags_hold()),
            Assert(q.empty == (held == 0)),
            Assert(q.almost_full == (held >= depth - 1)),
            Cover(q.r.valid & q.r.ready & (read == n) & (n == depth + 1)),
        ]
        _stream_rule(m, q.r, "r")
        return m


class StreamRules(Elaboratable):
    """The nonzero tree's node: with inputs that keep the stream rule, its
    output keeps it too (valid and payload hold until taken), it holds at
    most two pairs of an input (its holding register and the output
    register), and each input's pairs leave in the order they came, none
    dropped or repeated (the `k`-th pair of input `p` to leave is the `k`-th
    one `p` handed over). To tell the inputs apart at the output, input
    ``i``'s payloads carry ``i`` in their low bits (an assumption on the
    inputs only)."""

    def __init__(self, widths=None, n: int = 2):
        self.widths, self.n = widths or small(), n

    def elaborate(self, platform):
        m = Module()
        _no_reset(m)
        m.submodules.node = node = ArbiterNode(activation_layout(self.widths), self.n)
        tag = max(1, (self.n - 1).bit_length())
        for i, port in enumerate(node.ins):
            _stream_source(m, port, f"in{i}")
            m.d.comb += Assume(port.payload.as_value()[:tag] == i)
        m.d.comb += node.out.ready.eq(AnySeq(1))
        _stream_rule(m, node.out, "out")
        bits = 6
        which, k = AnyConst(tag), AnyConst(bits)
        out = node.out.payload.as_value()
        tracked = Signal(len(out))
        for i, port in enumerate(node.ins):
            taken = _counter(m, port.valid & port.ready, bits, f"taken_{i}")
            left = _counter(m, node.out.valid & node.out.ready & (out[:tag] == i), bits, f"left_{i}")
            with m.If(port.valid & port.ready & (taken == k) & (which == i)):
                m.d.sync += tracked.eq(port.payload.as_value())
            m.d.comb += [
                Assume(taken < (1 << bits) - 2),
                Assert(taken - left <= 2),                               # holding and output registers
                Assert(~(node.out.valid & (out[:tag] == i)) | (taken != left)),     # nothing from nothing
                Assert(~(node.out.valid & node.out.ready & (out[:tag] == i) & (which == i) & (left == k))
                       | (out == tracked)),
                Cover(node.out.valid & node.out.ready & (out[:tag] == i) & (which == i) & (left == k) & (k == 3)),
            ]
        return m


class FlowControl(Elaboratable):
    """The broadcast never writes into a full activation queue, whatever the
    PEs read and whatever the sources offer: the broadcast, the registered
    fan-out to the queues, the queues with `queue_slack` pairs of slack and
    the almost-full reduction, wired as `hw.accelerator.Core` wires them."""

    def __init__(self, widths=None, slack: int | None = None):
        self.widths = widths or small()
        self.slack = slack          # default `queue_slack`; less plants a bug the proof must find

    def elaborate(self, platform):
        m = Module()
        _no_reset(m)
        slack = queue_slack(self.widths.config) if self.slack is None else self.slack
        bc, queues = _broadcast_to_queues(m, self.widths, slack, ptr_base=0)
        queues = [queue for pe in queues for queue in pe]
        m.d.comb += [Assert(~q.w.valid | q.w.ready) for q in queues]
        m.d.comb += [Assert(q.flags_hold()) for q in queues]
        m.d.comb += Cover(Cat(~q.w.ready for q in queues).any() & bc.stall)
        return m


class MatrixOrder(Elaboratable):
    """The matrix reader issues, for each column it takes, exactly its
    entries ``start .. start + rest``, in order, one per cycle, and nothing else;
    each issued entry leaves `LATENCY` cycles later, flagged `first` for a
    column's first entry."""

    def __init__(self, widths=None):
        self.widths = widths or small()

    def elaborate(self, platform):
        w = self.widths
        m = Module()
        _no_reset(m)
        m.submodules.mr = mr = MatrixReader(w)
        _stream_source(m, mr.col, "col")
        col = mr.col.payload
        m.d.comb += [
            mr.host.en.eq(0), mr.host_access.eq(0),
            Assume(~mr.col.valid | ((col.start + col.rest < w.config.weight_depth)
                                    & (col.single == (col.rest == 0)))),
        ]
        col_end = col.start + col.rest + 1
        # the reference: the column being issued, and the next entry it owes
        busy, cur, end = Signal(), Signal(w.pointer), Signal(w.pointer)
        start_now = Signal()
        with m.If(mr.col.valid & mr.col.ready):
            m.d.sync += [busy.eq(1), cur.eq(col.start), end.eq(col_end), start_now.eq(1)]
        with m.Elif(busy):
            m.d.sync += [cur.eq(cur + 1), busy.eq(cur + 1 != end), start_now.eq(0)]
        m.d.comb += [
            Assert(mr.issue == busy),
            Assert(~busy | (mr.issue_entry == cur)),
            Assert(~mr.col.ready | ~busy | (cur + 1 == end)),      # takes a column only as the last entry goes
        ]
        issued = delay_line(m, Cat(mr.issue, start_now), MatrixReader.latency(w.config), "expect")[-1]
        m.d.comb += [
            Assert(mr.entry_valid == issued[0]),
            Assert(~mr.entry_valid | (mr.entry.first == issued[1])),
            Cover(mr.issue & (cur + 1 == end) & mr.col.valid & (col.rest >= 2)),
        ]
        return m


class Forwarding(Elaboratable):
    """The arithmetic unit's sums equal a stall-free reference's: for a
    solver-chosen row, ``acc[row]`` as write-back reads it is the sum, modulo
    ``2**acc_bits``, of ``C[code] * a`` over every entry on that row since
    its last clear, with the codebook as it was when the entry arrived;
    back-to-back entries on one row (the forwarding path) included. The
    environment keeps the control unit's rules: write-back reads and clears
    only while no entry is in flight."""

    def __init__(self, widths=None):
        self.widths = widths or small()

    def elaborate(self, platform):
        w, c = self.widths, self.widths.config
        m = Module()
        _no_reset(m)
        m.submodules.au = au = ArithmeticUnit(w)
        e = au.entry
        m.d.comb += [e.eq(AnySeq(len(e.as_value()))), au.entry_valid.eq(AnySeq(1)),
                     au.cb_load.eq(AnySeq(len(au.cb_load.as_value()))),
                     au.wb_read.eq(AnySeq(1)), au.wb_row.eq(AnySeq(w.row)),
                     au.clear.eq(AnySeq(1)), au.clear_row.eq(AnySeq(w.row))]
        m.d.comb += Assume(~(au.wb_read | au.clear) | ~au.busy)
        # a clear given in cycle t writes in t + 1, so a read of that row in
        # t + 1 still sees the old sum; the write-back never does that (it
        # clears each row the cycle after reading it, and reads each row once)
        last_clear, last_clear_row = Signal(), Signal(w.row)
        m.d.sync += [last_clear.eq(au.clear), last_clear_row.eq(au.clear_row)]
        m.d.comb += Assume(~(au.wb_read & last_clear & (au.wb_row == last_clear_row)))
        # the reference: the codebook, the row decode, one row's sum
        book = Array(Signal(signed(c.weight_bits), name=f"book_{i}") for i in range(c.n_codes))
        with m.If(au.cb_load.en):
            m.d.sync += book[au.cb_load.addr].eq(au.cb_load.data)
        prev = Signal(w.row)
        row = Signal(w.row)
        m.d.comb += row.eq(Mux(e.first, e.run, prev + e.run + 1))
        with m.If(au.entry_valid):
            m.d.sync += prev.eq(row)
        target = AnyConst(w.row)
        total = Signal(signed(c.acc_bits))
        cleared = Signal()
        # a clear zeroes the row before an entry arriving in the same cycle adds to it
        wipe, add = au.clear & (au.clear_row == target), au.entry_valid & (row == target) & (e.code != 0)
        m.d.sync += total.eq(Mux(wipe, 0, total) + Mux(add, book[e.code] * e.value, 0))
        # the codebook memory starts unknown (as after power-up): a sum using a
        # value never loaded is unknown too, until the row's next clear
        known = Signal(c.n_codes)
        with m.If(au.cb_load.en):
            m.d.sync += known.bit_select(au.cb_load.addr, 1).eq(1)
        with m.If(wipe):
            m.d.sync += cleared.eq(1)
        with m.Elif(add & ~known.bit_select(e.code, 1)):
            m.d.sync += cleared.eq(0)
        check, expect = Signal(), Signal.like(total)
        m.d.sync += [check.eq(au.wb_read & (au.wb_row == target) & cleared), expect.eq(total)]
        m.d.comb += Assert(~check | (au.acc_data == expect))
        # cover: two entries on the row back to back, then the read
        hits = Signal()
        hit = au.entry_valid & (row == target) & (e.code != 0) & cleared
        last_hit = Signal()
        m.d.sync += last_hit.eq(hit)
        with m.If(hit & last_hit):
            m.d.sync += hits.eq(1)
        m.d.comb += Cover(check & hits & (expect != 0))
        return m


class Delivery(Elaboratable):
    """The broadcast delivers every activation it takes to every PE exactly
    once, in order: the `n`-th activation taken from the sources (``src[0]``
    before ``src[1]`` in a cycle) is written into queue ``n mod lanes`` of
    every PE as that queue's ``(n // lanes)``-th pair, with ``g = ptr_base +
    j``; nothing else is written; and no PE lags the sources by more than
    the pairs in flight (the broadcast register and the fan-out), so none
    is lost. Wired as `hw.accelerator.Core` wires it (`deliveries`, `room`,
    `queue_slack`), with the PEs reading their queues at will."""

    def __init__(self, widths=None):
        self.widths = widths or small()

    def elaborate(self, platform):
        w, c = self.widths, self.widths.config
        lanes = c.broadcast_width
        m = Module()
        _no_reset(m)
        ptr_base = AnyConst(w.gptr)
        bc, queues = _broadcast_to_queues(m, w, queue_slack(c), ptr_base)
        bits = 6
        taken = Signal(bits)
        took = [src.valid & src.ready for src in bc.src]
        m.d.sync += taken.eq(taken + sum(t.as_unsigned() for t in took))
        n = AnyConst(bits)
        layout = queued_layout(w)
        tracked = Signal(layout)
        for q, (src, t) in enumerate(zip(bc.src, took)):
            with m.If(t & (taken + q == n)):
                m.d.sync += [tracked.pointer.eq(ptr_base + src.payload.index), tracked.value.eq(src.payload.value)]
        in_flight = lanes * (1 + fanout_stages(c.n_pe))
        m.d.comb += Assume(taken < (1 << bits) - 2)
        for k, pe in enumerate(queues):
            written = [_counter(m, queue.w.valid, bits, f"written_{k}_{q}") for q, queue in enumerate(pe)]
            for q, (queue, count) in enumerate(zip(pe, written)):
                m.d.comb += Assert(~(queue.w.valid & (count * lanes + q == n))
                                   | (queue.w.payload.as_value() == tracked.as_value()))
            total = Signal(bits, name=f"total_{k}")
            m.d.comb += total.eq(sum(written))
            m.d.comb += [Assert(total <= taken), Assert(taken - total <= in_flight)]
            if lanes == 2:      # the queues take turns
                m.d.comb += Assert((written[0] == written[1]) | (written[0] == written[1] + 1))
        last = queues[-1][-1]
        m.d.comb += Cover(last.w.valid & (_counter(m, last.w.valid, bits, "cover_count") == 2) & bc.stall)
        return m


class HostAck(Elaboratable):
    """The host port answers every Wishbone transfer with exactly one `ack`,
    in the `read_latency + 2`-th cycle from the request (`ack` is never high twice
    for one transfer, nor without one); a write strobes at most one memory
    once (a register write strobes none) and a read strobes none. The master keeps Wishbone B4's classic
    rules: once it raises `stb` it holds the request until `ack`."""

    def __init__(self, config=None):
        self.config = config or Config(**SMALL)

    def elaborate(self, platform):
        m = Module()
        _no_reset(m)
        m.submodules.port = port = HostPort(self.config, fanout=fanout_stages(self.config.n_pe))
        bus = port.bus
        request = Cat(bus.we, bus.adr, bus.dat_w)
        m.d.comb += [bus.cyc.eq(AnySeq(1)), bus.stb.eq(AnySeq(1)), request.eq(AnySeq(len(request))),
                     port.status.as_value().eq(AnySeq(len(port.status.as_value()))),
                     Cat(port.pe_read_data).eq(AnySeq(len(Cat(port.pe_read_data))))]
        active = bus.cyc & bus.stb
        waiting = Signal()          # a transfer was requested and not yet answered
        held = Signal(len(request))
        with m.If(active & ~bus.ack):
            m.d.sync += [waiting.eq(1), held.eq(request)]
        with m.If(bus.ack):
            m.d.sync += waiting.eq(0)
        m.d.comb += Assume(~waiting | (active & (request == held)))
        age = Signal(range(port.read_latency + 4))
        with m.If(waiting & ~bus.ack):
            m.d.sync += age.eq(age + 1)
        with m.Else():
            m.d.sync += age.eq(0)
        strobes = Signal(2)
        strobe = port.pe_we | port.layers_we | port.codebook_we
        with m.If(bus.ack):
            m.d.sync += strobes.eq(0)
        with m.Elif(strobe):
            m.d.sync += strobes.eq(strobes + 1)
        m.d.comb += [
            Assert(~bus.ack | waiting),                            # no ack without a transfer
            Assert(~bus.ack | (age == port.read_latency)),          # at the documented time
            Assert(age <= port.read_latency),
            Assert((port.pe_we.as_unsigned() + port.layers_we + port.codebook_we) <= 1),
            Assert(strobes <= held[0]),            # a write strobes a memory at most once, a read never
            Cover(bus.ack & held[0] & (strobes == 1)),
        ]
        return m


class StreamHold(Elaboratable):
    """A block's output stream keeps the stream rule (valid and payload hold
    until taken), whatever its other inputs do and whenever its consumer is
    ready: `build` makes the block, `port` names the stream."""

    def __init__(self, build, port: str, lane: int | None = None, rules=None):
        self.build, self.port, self.lane = build, port, lane      # `lane`: of an array of streams
        self.rules = rules      # (dut) -> the assumptions the accelerator keeps for the block's inputs

    def elaborate(self, platform):
        m = Module()
        _no_reset(m)
        m.submodules.dut = dut = self.build()
        lanes = getattr(dut, self.port)
        lanes = [lanes] if self.lane is None else lanes
        out = lanes[self.lane or 0]
        for path, member, value in dut.signature.flatten(dut):
            if path[0] != self.port and member.flow == In:
                value = Value.cast(value)
                m.d.comb += value.eq(AnySeq(len(value)))
        ready = AnySeq(1)
        m.d.comb += [lane.ready.eq(ready) for lane in lanes]        # one consumer takes every lane
        if self.rules is not None:
            m.d.comb += [Assume(rule) for rule in self.rules(dut)]
        _stream_rule(m, out, self.port)
        m.d.comb += Cover(out.valid & ~out.ready & (_counter(m, out.valid & out.ready, 2, "moved") != 0))
        return m


class ControlBound(Elaboratable):
    """The control unit reaches `done` or `error` from a start within a
    bound that grows with the layers the table runs: a run is busy for at
    most ``(layers_done + 1) * per_layer + compute`` cycles, whatever the
    table holds (written by the host while idle, any words at all) and
    whenever the rest of the accelerator answers, provided that it finishes
    a layer's broadcast within `compute` cycles of COMPUTE's start and the
    output stream within `compute` cycles of OUTPUT's (the datapath's own
    liveness, which the other proofs, the cycle model and the fuzz campaign
    cover). `per_layer` is DESC (with a descriptor read again after a host
    access), the codebook's load, COMPUTE with its settling, write-back of
    `row_depth` rows and the drain."""

    def __init__(self, widths=None, compute: int = 3, live: bool = True):
        self.widths = widths or small(max_layers=2, row_depth=2)
        self.compute = compute
        self.live = live        # False: a datapath that may never finish (the proof must fail)

    def per_layer(self, fanout: int, reduce: int) -> int:
        c = self.widths.config
        return (ControlUnit.DESC_CYCLES + LayerTable.LATENCY + 2 + CodebookStore.load_cycles(c)
                + self.compute + ControlUnit.settle_cycles(fanout, reduce)
                + c.row_depth + ControlUnit.drain_cycles(c, fanout)
                + 2)    # a margin: at bmc 60 the proof also holds with 2 cycles less a layer

    def elaborate(self, platform):
        w = self.widths
        fanout = reduce = 1
        m = Module()
        _no_reset(m)
        m.submodules.ctl = ctl = ControlUnit(w, fanout=fanout, reduce=reduce)
        for port in (ctl.start, ctl.input_done, ctl.scan_done, ctl.tree_idle, ctl.bcast_valid, ctl.pushed,
                     ctl.stall, ctl.pes_idle, ctl.output_done, ctl.log_read_addr):
            m.d.comb += port.eq(AnySeq(len(port)))
        for host in (ctl.host_layers, ctl.host_codebook):
            m.d.comb += [host.addr.eq(AnySeq(len(host.addr))), host.data.eq(AnySeq(len(Value.cast(host.data)))),
                         host.en.eq(AnySeq(1)), Assume(~host.en | ~ctl.busy)]
        m.d.comb += [ctl.host_layers_read.eq(0), ctl.host_codebook_read.eq(0)]
        # the datapath's liveness: a layer's sources run dry and its PEs idle
        # within `compute` cycles, the output stream ends within as many
        computing, outputting = Signal(range(self.compute + 1)), Signal(range(self.compute + 1))
        for age, phase in ((computing, ctl.computing), (outputting, ctl.outputting)):
            m.d.sync += age.eq(Mux(phase, Mux(age == self.compute, age, age + 1), 0))
        finished = (ctl.input_done & ctl.scan_done & ctl.tree_idle & ~ctl.bcast_valid & ctl.pes_idle
                    & ~ctl.pushed)
        if self.live:
            m.d.comb += [Assume(~(ctl.computing & (computing == self.compute)) | finished),
                         Assume(~(ctl.outputting & (outputting == self.compute)) | ctl.output_done)]
        bound = (ctl.layers_done + 1) * self.per_layer(fanout, reduce) + self.compute
        elapsed = Signal(len(bound) + 1)          # wider than the bound: an overrun cannot wrap
        m.d.sync += elapsed.eq(Mux(ctl.busy, elapsed + 1, 0))
        m.d.comb += [
            Assert(elapsed <= bound),
            Assert(ctl.layers_done <= w.config.max_layers),
            Cover(ctl.done & (ctl.layers_done == 2)),
        ]
        return m


class InputOrder(Elaboratable):
    """Layer 0's input stage hands on exactly the nonzero values of the
    first `n_in` it takes, each once, in index order, numbered with its
    index: the `n`-th nonzero offered and taken is the `n`-th nonzero value
    among the inputs below `n_in`; nothing leaves that was not taken in; and
    `done` only once every value has arrived and left. One `start` at the
    beginning (the control unit's, for one run)."""

    def __init__(self, widths=None):
        self.widths = widths or small(input_width=2, broadcast_width=2)

    def elaborate(self, platform):
        w = self.widths
        lanes = w.config.input_width
        m = Module()
        _no_reset(m)
        m.submodules.stage = stage = InputStage(w)
        _stream_source(m, stage.i, "i")
        first = Signal(init=1)
        m.d.sync += first.eq(0)
        n_in = AnyConst(w.count)
        ready = AnySeq(1)
        m.d.comb += [stage.start.eq(first), stage.active.eq(~first & AnySeq(1)), stage.n_in.eq(n_in)]
        m.d.comb += [out.ready.eq(ready) for out in stage.out]
        bits = 5
        arrived = Signal(w.count)           # values taken in so far (their indices)
        nonzeros = Signal(bits)             # nonzeros among them below n_in
        left = Signal(bits)                 # pairs that left
        n = AnyConst(bits)
        tracked = Signal(activation_layout(w))
        take = stage.i.valid & stage.i.ready
        count = nonzeros
        for lane in range(lanes):
            value = stage.i.payload[lane]
            counted = take & (value != 0) & (arrived + lane < n_in)
            with m.If(counted & (count == n)):
                m.d.sync += [tracked.index.eq(arrived + lane), tracked.value.eq(value)]
            nxt = Signal(bits, name=f"count_{lane}")
            m.d.comb += nxt.eq(count + counted)
            count = nxt
        m.d.sync += nonzeros.eq(count)
        with m.If(take):
            m.d.sync += arrived.eq(arrived + lanes)
        moved = [out.valid & ready for out in stage.out]
        m.d.sync += left.eq(left + sum(v.as_unsigned() for v in moved))
        # the control unit runs no layer with ptr_base + n_in >= pointer_depth
        m.d.comb += [Assume(nonzeros < (1 << bits) - lanes), Assume(n_in < w.config.pointer_depth)]
        for k, (out, go) in enumerate(zip(stage.out, moved)):
            m.d.comb += Assert(~(go & (left + k == n)) | (out.payload.as_value() == tracked.as_value()))
            if k:           # lanes fill in order
                m.d.comb += Assert(~out.valid | stage.out[k - 1].valid)
        m.d.comb += [
            Assert(left <= nonzeros),
            Assert(~stage.done | first | ((left == nonzeros) & (arrived >= n_in))),
            Cover(stage.done & ~first & (left == 3) & (n == 2)),
        ]
        return m

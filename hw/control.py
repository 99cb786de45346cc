"""Central control unit: runs the layer program."""

from amaranth import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from sw.format import DESC_WORDS, DESCRIPTOR_FIELDS

from .codebook import CodebookStore
from .collisions import read_data
from .layouts import COUNTER_BITS, Widths, descriptor_layout, pe_control_signature, spec_memory
from .parts import add_parts
from .writeback import WriteBack, overflow_mask

__all__ = ["ControlUnit", "LayerTable", "CounterLog"]


class LayerTable(wiring.Component):
    """The layer-descriptor memory (image memory ``layers``) and its reader.

    `load` in cycle ``t`` (with `layer`, held while reading) reads that
    layer's words one per cycle from ``t + 1`` (the read address comes from
    registers or the host's read address); word ``w`` leaves the block RAM in
    ``t + w + 2`` into a register (a block RAM's output is slow) and is
    decoded by `sw.format.DESCRIPTOR_FIELDS` from it, so `desc` is complete
    in cycle ``t + LATENCY``, the first cycle `busy` is low again. `overflow`
    is high if a field's value does not fit the hardware's width of it (the
    control unit refuses such a layer). The control unit reads a layer's
    descriptor ahead, while the layer before it runs.
    """

    WORDS = 1 + max(word for word, _, _ in DESCRIPTOR_FIELDS.values())
    LATENCY = WORDS + 3

    def __init__(self, widths: Widths, *, init=()):
        self._widths = widths
        self.memory = spec_memory(widths.config, "layers", init)
        self.image_memories = {"layers": self.memory}
        super().__init__({
            "load": In(1),
            "layer": In(widths.layer),
            "desc": Out(descriptor_layout(widths)),
            "overflow": Out(1),
            "busy": Out(1),
            "host": Out(memory.WritePort.Signature(addr_width=widths.desc_addr, shape=unsigned(32))),
            # a host read (while idle): while `host_read` holds, the word at `host.addr` is on
            # `host_data` from two cycles after it rose
            "host_read": In(1), "host_data": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        add_parts(m, self)
        rd, wr = self.memory.read_port(), self.memory.write_port()
        m.d.comb += [wr.addr.eq(self.host.addr), wr.data.eq(self.host.data), wr.en.eq(self.host.en)]

        word = Signal(range(self.WORDS + 1))
        reading = Signal()
        arrived = Signal(range(self.WORDS + 1))     # the word on rd.data this cycle
        arriving = Signal()
        decoded = Signal(range(self.WORDS + 1))     # the word in `got` this cycle
        decoding = Signal()
        m.d.comb += rd.addr.eq(Mux(self.host_read, self.host.addr, Cat(word[:ceil_log2(DESC_WORDS)], self.layer)))
        with m.If(self.load):
            m.d.sync += [word.eq(0), reading.eq(1), self.overflow.eq(0)]
        with m.Elif(reading):
            m.d.sync += [word.eq(word + 1), reading.eq(word + 1 < self.WORDS)]
        got = Signal(32, reset_less=True)           # the word that left the memory a cycle ago
        m.d.sync += [arriving.eq(reading), arrived.eq(word)]
        m.d.sync += [got.eq(read_data(m, rd, wr)), decoding.eq(arriving), decoded.eq(arrived)]
        m.d.comb += [self.host_data.eq(got), self.busy.eq(reading | arriving | decoding)]
        with m.If(decoding):
            for name, (w, lsb, width) in DESCRIPTOR_FIELDS.items():
                field = self.desc[name]
                hw_width = len(field)
                with m.If(decoded == w):
                    m.d.sync += field.eq(got[lsb:lsb + width])
                    if hw_width < width:
                        with m.If(got[lsb + hw_width:lsb + width] != 0):
                            m.d.sync += self.overflow.eq(1)
        return m


class CounterLog(wiring.Component):
    """Per-layer counters kept for the host, in one memory laid out as the
    host map's counter region: word ``2l`` layer ``l``'s ``T_measured``,
    ``2l + 1`` its broadcast stall cycles. `save` (at the layer's end, for
    `layer`) writes the cycles in that cycle and the stalls in the next: the
    layer and its stall count are still the saved layer's then (the next
    layer starts no sooner than a cycle of DESC later, and stalls are only
    counted in COMPUTE). The host reads word `read_addr` (data one cycle
    later). One memory, not one per counter: on an iCE40 each is two EBR."""

    def __init__(self, widths: Widths):
        self.memory = memory.Memory(shape=unsigned(COUNTER_BITS), depth=2 * widths.config.max_layers, init=[])
        self.parts = {"counters": self.memory}
        super().__init__({
            "save": In(1), "layer": In(widths.layer),
            "cycles": In(COUNTER_BITS), "stalls": In(COUNTER_BITS),
            "read_addr": In(widths.layer + 1),
            "read_word": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        add_parts(m, self)
        stalls_next = Signal()                  # the cycle after a save: the stalls' word
        m.d.sync += stalls_next.eq(self.save)
        wr, rd = self.memory.write_port(), self.memory.read_port()
        m.d.comb += [wr.addr.eq(Cat(stalls_next, self.layer)), wr.en.eq(self.save | stalls_next),
                     wr.data.eq(Mux(stalls_next, self.stalls, self.cycles)),
                     rd.addr.eq(self.read_addr), self.read_word.eq(read_data(m, rd, wr))]
        return m


class ControlUnit(wiring.Component):
    """Runs one input vector through the layers in the descriptor table.

    Phases, in order (``rows = ceil(n_out / n_pe)``):

    ``CLEAR``      after any reset: zero every accumulator row (``row_depth``
                   cycles), so a run cut short leaves nothing behind; layer
                   0's codebook is loaded into the PEs meanwhile.
    ``IDLE``       `ready`; a `start` (kept pending if it came earlier) begins.
    ``DESC``       the layer's descriptor was read and checked ahead (see
                   below); the layer starts as soon as that is done and its
                   codebook is in the PEs (``DESC_CYCLES`` when nothing
                   waits): its scan or input stream starts. An invalid
                   descriptor stops the run with `error`.
    ``COMPUTE``    broadcast the layer's nonzero inputs (layer 0 from the
                   input stream, later layers from the PEs' buffers through the
                   nonzero tree) until every source is exhausted and every PE is
                   idle.
    ``WRITEBACK``  rows ``0 .. rows - 1``, one per cycle. The next layer's
                   ``DESC`` follows at once. After the last layer or an exit
                   head, ``DRAIN``: `WriteBack.latency` + `fanout` cycles
                   until the last row is written.
    ``TEST``       after a layer that ends an exit head (its descriptor's
                   `exit`): its outputs pass through the output stage into the
                   exit test instead of the output stream; ``DECIDE`` (one
                   cycle, a cycle after the last output: the test
                   registers what it is given): if their margin reached the threshold, the run
                   ends with them (``OUTPUT``, `exit_index` the head's
                   number), else the next layer follows. Together
                   ``n_out + OutputStage latency + TEST_EXTRA`` cycles.
    ``OUTPUT``     after the last layer (or a confident exit head): stream
                   the outputs; then `done`.

    Each layer reads the activation-buffer half its descriptor names and
    writes the one it names (the same one: in place, as an exit head's later
    layers do; the other: the trunk's outputs stay while a head reads them),
    and its ``n_in`` is checked against the ``n_out`` of the layer that last
    wrote the half it reads.

    The next layer's descriptor is read from the layer table (into the
    table's `desc`, `LayerTable.LATENCY` cycles, then checked in one more)
    from COMPUTE's last cycle, as the write-back starts: the layer no longer needs
    its own then, and the write-back's fields (`bias_base`, `shift`, `relu`,
    `dst_bank`) are latched for it. So the next layer starts no earlier than
    ``LayerTable.LATENCY`` cycles after the write-back's first row, by which
    time the write-back has written every row its scan reads first (rows are
    written and scanned one a cycle, in order: ``LayerTable.LATENCY >=
    WriteBack.latency``), its bias reads (pointer banks) and accumulator
    reads come before the next layer's first pointer read, and its last row
    is written before the next layer's write-back starts (a layer's scan
    alone takes longer; with exit heads, where a layer may read an older
    half, the control unit also waits for it: `wb_free`). After the last
    layer or an exit head the descriptor stays (the output stage and the
    exit test need it): the next run's layer 0 is read while idle, the
    layer after a head's test in ``DECIDE``.

    The codebook store loads layer ``l + 1``'s codebook into the PEs from
    the first write-back row of layer ``l`` (``2**code_bits + 3`` cycles)
    and layer 0's while idle (again after the host writes the codebook, or
    after a run of more than one layer); a layer >= 1 starts no earlier than
    `CodebookStore.nearly_done`, ``EARLY`` cycles before the load ends,
    which is still before its first entry reads the codebook in any PE.

    Every PE gets the same control (`pe`), `fanout` cycles late; the PEs'
    status (`pes_idle`, `scan_done`) arrives `reduce` cycles late (the
    registered trees of `hw.pipeline`). So a status is trusted only
    ``fanout + reduce`` cycles after the last broadcast push and after the
    start of a layer's scan: all fixed numbers of cycles for a
    configuration. The sources' side of COMPUTE's end (exhausted, nothing
    in the broadcast register) is registered (`quiet`) before it is
    combined with the PEs' idle: the end is taken a cycle after the
    sources went quiet and ``fanout + reduce + 1`` cycles after the last
    push or the scan's start (that path, through the nonzero tree into the
    descriptor read ahead, set the ECP5's Fmax).

    Counters: `cycles` from `start` to `done`. Per layer ``T_measured``: from
    the cycle of the layer's first broadcast (or, with no nonzero input, its
    first write-back cycle) to the cycle its last output row is written,
    both included (``WriteBack.latency + fanout`` cycles after the last
    write-back row, so it is logged then); and the broadcast's stall
    cycles. Both are logged per layer for the host (`CounterLog`), and each
    PE logs its busy cycles, as the write-back's last row leaves.
    """

    DESC_CYCLES = 1         # DESC when the descriptor read ahead and the codebook are ready

    # an exit test takes n_out + the output stage's latency + TEST_EXTRA cycles (TEST, TESTED, DECIDE)
    TEST_EXTRA = 4

    @staticmethod
    def settle_cycles(fanout: int, reduce: int) -> int:
        """COMPUTE ends no earlier than this many cycles after the last push
        or the scan's start: the PEs' status is that late, and `quiet` is
        registered."""
        return fanout + reduce + 1

    @staticmethod
    def drain_cycles(config, fanout: int) -> int:
        """The write-back's last row is written this many cycles after it
        leaves the control unit (the DRAIN after the last layer)."""
        return WriteBack.latency(config) + fanout

    def __init__(self, widths: Widths, *, init_layers=(), init_codebook=(), fanout: int = 0, reduce: int = 0):
        self._widths = widths
        self.fanout, self.reduce = fanout, reduce
        self.table = LayerTable(widths, init=init_layers)
        self.log = CounterLog(widths)
        self.codebook = CodebookStore(widths, init=init_codebook)
        self.parts = {"table": self.table, "log": self.log, "codebook": self.codebook}
        super().__init__({
            "start": In(1),
            "ready": Out(1), "busy": Out(1), "done": Out(1), "error": Out(1),
            "cycles": Out(COUNTER_BITS),
            "layers_done": Out(widths.layer + 1),
            "pe": Out(pe_control_signature(widths)),
            "ptr_base": Out(widths.gptr),                # for the broadcast
            "first_layer": Out(1), "computing": Out(1), "outputting": Out(1),
            "input_start": Out(1), "input_done": In(1),
            "scan_done": In(1), "tree_idle": In(1),
            "bcast_valid": In(1), "pushed": In(1), "stall": In(1),
            "pes_idle": In(1),
            "output_start": Out(1), "n_out": Out(widths.count), "output_done": In(1),
            # an exit test: the output stage's stream goes to the exit test (`testing`), which
            # `test_start` empties; `exit_passed` is its answer; `exit_index` the exit the run left by
            "testing": Out(1), "test_start": Out(1), "threshold": Out(widths.config.act_bits + 1),
            "exit_passed": In(1), "exit_index": Out(widths.layer),
            "host_layers": Out(memory.WritePort.Signature(addr_width=widths.desc_addr, shape=unsigned(32))),
            "host_codebook": Out(memory.WritePort.Signature(addr_width=widths.codebook_addr,
                                                           shape=signed(widths.config.weight_bits))),
            # host reads while idle, held high for the access (the addresses are the write ports'):
            # the words from two cycles after they rise
            "host_layers_read": In(1), "host_codebook_read": In(1),
            "host_layers_data": Out(32), "host_codebook_data": Out(widths.config.weight_bits),
            "log_read_addr": In(widths.layer + 1), "log_word": Out(COUNTER_BITS),   # `CounterLog`'s
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()
        add_parts(m, self)
        table, log, store, pe = self.table, self.log, self.codebook, self.pe
        ctrl = pe.layer
        wiring.connect(m, wiring.flipped(self.host_layers), table.host)
        wiring.connect(m, wiring.flipped(self.host_codebook), store.host)
        m.d.comb += [table.host_read.eq(self.host_layers_read), store.host_read.eq(self.host_codebook_read),
                     self.host_layers_data.eq(table.host_data), self.host_codebook_data.eq(store.host_data)]
        m.d.comb += pe.cb_load.eq(store.load)
        settle_cycles = self.settle_cycles(self.fanout, self.reduce)
        m.d.comb += [log.read_addr.eq(self.log_read_addr), self.log_word.eq(log.read_word)]

        preloaded = Signal()              # layer 0's codebook is (being) loaded into the PEs
        pending = Signal()                # a start not yet served
        with m.If(self.start):
            m.d.sync += pending.eq(1)

        # what each half holds; without exit heads every layer reads the one before it (in place or not),
        # and one register will do
        bank_n_out = Array([Signal(w.count, name=f"bank{b}_n_out") for b in range(2 if c.exit_heads else 1)])
        exits_seen = Signal(w.layer)
        # The descriptor: the running layer's until its write-back starts,
        # then (if another layer follows at once) the next one's, read ahead
        # (`ahead` the layer it is read for) and checked (`bad`, registered,
        # a cycle after the read ends: `ahead_ready`, unless a host access to
        # the table came since).
        desc = table.desc
        ahead = Signal(w.layer)
        ahead_ok = Signal()
        ahead_age = Signal()
        ahead_rows = Signal(w.count)
        m.d.comb += [table.layer.eq(ahead), ahead_rows.eq((desc.n_out + c.n_pe - 1) >> w.pe)]
        with m.If(table.load):
            m.d.sync += [ahead_age.eq(0), ahead_ok.eq(1)]
        with m.Elif(~table.busy):
            m.d.sync += ahead_age.eq(1)
        ahead_ready = ahead_ok & ahead_age
        bad = Signal()
        # the row checks on n_out itself (n_pe is a power of two): rows > R is
        # n_out > R * n_pe, and bias_base + rows > D is n_out + bias_base * n_pe
        # > D * n_pe; one carry chain each, not three in a row (rows' own
        # rounding add, then the sum, then the compare set the ECP5's Fmax)
        m.d.sync += bad.eq(table.overflow | (desc.n_in == 0) | (desc.n_out == 0)
                           | (desc.n_out > c.row_depth << w.pe)
                           | (desc.ptr_base + desc.n_in >= c.pointer_depth)
                           | ((desc.bias_base << w.pe) + desc.n_out > c.bank_depth << w.pe)
                           | (desc.shift > c.max_shift)
                           | ((ahead != 0) & (desc.n_in != (bank_n_out[desc.src_bank] if c.exit_heads else
                                                            bank_n_out[0])))
                           | (desc.exit & (c.exit_heads == 0)))          # no exit test built
        host_access = self.host_layers.en | self.host_layers_read
        # a scan started once the read ahead is done reads every row after the
        # write-back wrote it (the read starts as the write-back does)
        assert LayerTable.LATENCY >= WriteBack.latency(c)

        rows = Signal(w.count)                          # the running layer's rows per PE
        row = Signal(w.count)
        drain = self.drain_cycles(c, self.fanout)
        wait = Signal(range(drain + 2))
        settle = Signal(range(settle_cycles + 1))       # cycles since the last push or the scan's start
        quiet = Signal()                                # registered: the layer's sources were exhausted
        counting = Signal()
        # the state machine's waits end on registered flags, and the slot check
        # is registered too: its exits are few LUT levels deep (they fan out to
        # wide counters and to every PE)
        waited = Signal()
        last_row = Signal()
        last_slot = Signal()
        m.d.sync += last_slot.eq(ctrl.layer == c.max_layers - 1)    # the layer changes only in DESC
        # the write-back's end: after the last layer or an exit head the run
        # waits for it (DRAIN); else the next layer follows at once
        stop = Signal()
        layer_cycles = Signal(COUNTER_BITS)
        layer_stalls = Signal(COUNTER_BITS)
        m.d.comb += [
            self.n_out.eq(desc.n_out),
            pe.wb_row.eq(row),
            pe.clear_row.eq(row),
            self.first_layer.eq(ctrl.layer == 0),
            log.layer.eq(ctrl.layer), log.cycles.eq(layer_cycles + 1), log.stalls.eq(layer_stalls),
            # the descriptor's fields for the broadcast and the scanners, held while the layer computes
            ctrl.n_in.eq(desc.n_in), ctrl.src_bank.eq(desc.src_bank), self.ptr_base.eq(desc.ptr_base),
            self.threshold.eq(desc.threshold),
        ]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        # The write-back's fields, latched as it starts: the descriptor changes
        # (read ahead) before its last rows are written.
        wb_fields = Signal(data.StructLayout({"bias_base": unsigned(w.bank_addr), "shift": unsigned(w.shift),
                                              "relu": unsigned(1), "dst_bank": unsigned(1)}))
        m.d.comb += [ctrl.bias_base.eq(wb_fields.bias_base), ctrl.shift.eq(wb_fields.shift),
                     ctrl.relu.eq(wb_fields.relu), ctrl.overflow_mask.eq(overflow_mask(w, wb_fields.shift)),
                     ctrl.dst_bank.eq(wb_fields.dst_bank)]
        # `wb_free`: the last write-back's last row is written, so another may
        # start. Without exit heads it always is: every layer reads the one
        # before it, whose rows its scan alone takes longer than that to read.
        wb_hold = Signal(w.count + 1)
        wb_free = Signal(init=1)
        if c.exit_heads:
            m.d.sync += wb_free.eq(wb_hold <= 1)
            with m.If(wb_hold != 0):
                m.d.sync += wb_hold.eq(wb_hold - 1)

        # stall cycles are counted a cycle late, outside the state machine (a
        # stall only happens in COMPUTE, and never in its last cycles: those
        # wait for the PEs after the last push); DESC's clearing of the count wins
        stall = Signal()
        m.d.sync += stall.eq(self.stall)
        with m.If(stall):
            m.d.sync += layer_stalls.eq(layer_stalls + 1)

        with m.FSM(init="CLEAR") as fsm:
            with m.State("CLEAR"):
                m.d.comb += pe.clear.eq(1)
                m.d.sync += row.eq(row + 1)
                with m.If(row == c.row_depth - 1):
                    m.next = "IDLE"

            with m.State("IDLE"):
                m.d.comb += self.ready.eq(1)
                with m.If(pending | self.start):
                    m.d.sync += [pending.eq(0), self.cycles.eq(0), self.done.eq(0), self.error.eq(0),
                                 self.layers_done.eq(0), exits_seen.eq(0), self.exit_index.eq(0)]
                    m.next = "DESC"

            with m.State("DESC"):
                m.d.comb += self.busy.eq(1)
                # the layer's counters are cleared through all of DESC (nothing
                # counts here), not on its exit: that decision is deep and the
                # counters are wide and spread out. T_measured ends `drain` cycles
                # after the write-back's last row, where it is logged: the count
                # starts there.
                m.d.sync += [counting.eq(0), layer_cycles.eq(drain), layer_stalls.eq(0), settle.eq(0)]
                # layer 0's codebook is loaded while idle; a later layer's from the
                # write-back before it, and a layer may start shortly before the
                # load ends (`CodebookStore.EARLY`)
                codebook_ready = Mux(ahead == 0, preloaded & store.done, store.nearly_done)
                with m.If(ahead_ready & codebook_ready):
                    with m.If(bad):
                        m.next = "ERROR"
                    with m.Else():
                        m.d.comb += [pe.count_reset.eq(1), self.input_start.eq(ahead == 0),
                                     pe.scan_start.eq(ahead != 0)]
                        m.d.sync += [rows.eq(ahead_rows), ctrl.layer.eq(ahead)]
                        m.next = "COMPUTE"

            with m.State("COMPUTE"):
                m.d.comb += [self.busy.eq(1), self.computing.eq(1)]
                with m.If(counting | self.pushed):
                    m.d.sync += [counting.eq(1), layer_cycles.eq(layer_cycles + 1)]
                with m.If(self.pushed):
                    m.d.sync += settle.eq(0)
                with m.Elif(settle != settle_cycles):
                    m.d.sync += settle.eq(settle + 1)
                # the sources are quiet: nothing more comes (the broadcast register
                # being empty a cycle ago means no push now)
                exhausted = Mux(ctrl.layer == 0, self.input_done, self.scan_done & self.tree_idle)
                m.d.sync += quiet.eq(exhausted & ~self.bcast_valid)
                with m.If(quiet & self.pes_idle & (settle == settle_cycles) & wb_free):
                    ends = desc.last | (desc.exit if c.exit_heads else 0)
                    m.d.sync += [row.eq(0), last_row.eq(rows == 1), stop.eq(ends),
                                 wb_fields.bias_base.eq(desc.bias_base), wb_fields.shift.eq(desc.shift),
                                 wb_fields.relu.eq(desc.relu), wb_fields.dst_bank.eq(desc.dst_bank),
                                 wb_hold.eq(rows + WriteBack.latency(c) - 1), wb_free.eq(c.exit_heads == 0),
                                 bank_n_out[desc.dst_bank if c.exit_heads else 0].eq(desc.n_out)]
                    # the next layer's descriptor is read now (after the last layer or an
                    # exit head the run needs this one's still: n_out, threshold)
                    with m.If(~ends):
                        m.d.comb += table.load.eq(1)
                        m.d.sync += ahead.eq(ctrl.layer + 1)
                    m.next = "WRITEBACK"

            with m.State("WRITEBACK"):
                m.d.comb += [self.busy.eq(1), pe.wb_valid.eq(1)]
                m.d.sync += [row.eq(row + 1), layer_cycles.eq(layer_cycles + 1)]
                first_row = row == 0
                with m.If(first_row):
                    # the next layer's codebook goes into the PEs (they do not read theirs now)
                    m.d.comb += [store.layer.eq(ctrl.layer + 1), store.start.eq(~desc.last)]
                    with m.If(~desc.last):
                        m.d.sync += preloaded.eq(0)
                m.d.sync += last_row.eq(row + 2 == rows)
                with m.If(last_row):                    # row + 1 == rows
                    # the layer's counters are final (T_measured ends with the drain): log them
                    m.d.comb += [pe.count_save.eq(1), log.save.eq(1)]
                    m.d.sync += [wait.eq(0), waited.eq(0), self.layers_done.eq(self.layers_done + 1)]
                    with m.If(stop):
                        m.next = "DRAIN"
                    with m.Elif(last_slot):
                        m.next = "ERROR"         # ran off the table without a last layer
                    with m.Else():
                        m.next = "DESC"          # the next layer starts while the last rows drain

            with m.State("DRAIN"):      # after the last layer or an exit head: the last rows pass W1 .. W6
                m.d.comb += self.busy.eq(1)
                m.d.sync += [wait.eq(wait + 1), waited.eq(wait == drain - 2)]
                with m.If(waited):              # wait == drain - 1
                    m.d.sync += [wait.eq(0), waited.eq(0)]
                    m.d.comb += self.output_start.eq(1)
                    if c.exit_heads:
                        with m.If(~desc.last):  # read the head's outputs into the exit test
                            m.d.comb += self.test_start.eq(1)
                            m.next = "TEST"
                        with m.Else():
                            m.next = "OUTPUT"
                    else:
                        m.next = "OUTPUT"

            if c.exit_heads:            # without the exit test, no layer gets here (a descriptor with exit is bad)
                with m.State("TEST"):       # the head's outputs pass the exit test, not the output stream
                    m.d.comb += [self.busy.eq(1), self.testing.eq(1), pe.out_mode.eq(1)]
                    with m.If(self.output_done):
                        m.next = "TESTED"

                with m.State("TESTED"):     # the last output passes the test's input register
                    m.d.comb += self.busy.eq(1)
                    m.next = "DECIDE"

                with m.State("DECIDE"):     # the test's answer counts the last output now
                    m.d.comb += self.busy.eq(1)
                    m.d.sync += exits_seen.eq(exits_seen + 1)
                    with m.If(self.exit_passed):
                        m.d.comb += self.output_start.eq(1)
                        m.d.sync += self.exit_index.eq(exits_seen + 1)
                        m.next = "OUTPUT"
                    with m.Elif(last_slot):
                        m.next = "ERROR"
                    with m.Else():
                        m.d.comb += table.load.eq(1)        # the next layer's descriptor
                        m.d.sync += ahead.eq(ctrl.layer + 1)
                        m.next = "DESC"

            with m.State("OUTPUT"):
                m.d.comb += [self.busy.eq(1), self.outputting.eq(1), pe.out_mode.eq(1)]
                with m.If(self.output_done):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"

            with m.State("ERROR"):
                m.d.sync += self.error.eq(1)
                m.next = "IDLE"

        # while resting, layer 0's descriptor is read ahead and its codebook
        # loaded into the PEs; in DESC too should a host access have spoilt
        # the read (DESC itself never loads: it only waits)
        resting = fsm.ongoing("CLEAR") | fsm.ongoing("IDLE")
        with m.If((resting | fsm.ongoing("DESC")) & ~table.busy & ~host_access
                  & (~ahead_ok | (resting & (ahead != 0)))):
            m.d.comb += table.load.eq(1)
            with m.If(resting):
                m.d.sync += ahead.eq(0)
        with m.If((resting | (fsm.ongoing("DESC") & (ahead == 0))) & ~preloaded & store.done):
            m.d.comb += [store.layer.eq(0), store.start.eq(1)]
            m.d.sync += preloaded.eq(1)
        with m.If(host_access):                 # last, so that it wins: the descriptor read ahead may be stale
            m.d.sync += ahead_ok.eq(0)
        with m.If(self.host_codebook.en):      # the PEs' copy may be stale
            m.d.sync += preloaded.eq(0)
        return m

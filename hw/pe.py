"""The processing element: queue, pointers, matrix, arithmetic, write-back,
activation buffer."""

from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from sw.format import PE_MEMORIES

from .activation_buffer import ActivationBuffer
from .activation_queue import ActivationQueue
from .arithmetic import ArithmeticUnit
from .collisions import read_data
from .hostmap import HostMap
from .layouts import HOST_DATA_BITS, Widths, activation_layout, pe_control_signature, queued_layout
from .matrix_reader import MatrixReader
from .parts import add_parts
from .pointer_reader import PointerReader
from .writeback import WriteBack

__all__ = ["ProcessingElement", "host_write_layout"]


def host_write_layout(w: Widths, offset_bits: int) -> data.StructLayout:
    """A host access to one PE memory: `kind` as in `hw.hostmap`; `en`
    writes `data`, `re` reads (into `host_read_data`)."""
    return data.StructLayout({"kind": unsigned(HostMap.PE_KIND_BITS), "addr": unsigned(offset_bits),
                              "data": unsigned(HOST_DATA_BITS), "en": unsigned(1), "re": unsigned(1)})


class ProcessingElement(wiring.Component):
    """PE ``k`` of the accelerator. Its pipeline, from an activation written
    into the queue in cycle ``t``:

    ====  =====================================================================
    t+2   the activation can leave the queue; pointer-bank addresses (P0)
    t+3   the addresses, registered beside the block RAMs, are read (P1)
    t+4   the pointers leave the block RAMs into registers (P2)
    t+5   the column's bounds and emptiness are registered (P3)
    t+6   an empty column is dropped (P4); a nonempty one enters the column FIFO
    t+8   the column leaves the FIFO into the matrix reader
    t+9   first entry issued (matrix reader), then one entry per cycle
    t+10  the entry word leaves the block RAM into a register
    t+11  S1: row decode, codebook read
    t+12  S2: the multiplier's operands are registered beside it
    t+13  S2b: multiply
    t+14  S3: accumulator read
    t+15  S4: accumulate and write
    ====  =====================================================================

    (each stage later only when the one after it is busy). With
    `Config.short_pipeline` there is no register behind the pointer banks,
    the entry word or the codebook: the column is dropped or enters the FIFO
    at t+5, leaves it at t+7, its first entry issues at t+8 and reaches
    the arithmetic unit (S1) at t+9, and S4 is at t+12 (`latencies`).

    `busy` counts the cycles in which an entry is issued: for a layer it
    equals the PE's ``work_k`` of docs/design.md §8, so idle cycles measure
    imbalance.

    With ``broadcast_width`` 2 there are two queues, `act[q]` writing queue
    ``q``: a layer's activations alternate between them, and the pointer
    reader takes the older head and, in the same cycle, the other when it
    can (see `PointerReader`); the timing above holds for each.

    Everything the PE gets from the centre (`act`, `ctl`, the host's writes,
    the output stage's reads) and sends back (`almost_full`, `idle`,
    `scan_done`, `out_data`, `host_read_data`) passes registered trees
    outside it (`hw.pipeline`); `slack` sizes the queue's `almost_full` for
    their latency.
    """

    # a host read: `re` -> `host_read_data`: one into a block RAM's address
    # register, two into the register behind it, one into the PE's answer register
    HOST_READ_LATENCY = 4

    @staticmethod
    def latencies(config) -> tuple[int, int, int]:
        """What the cycle model (`sw.perf`) needs of a PE, in cycles: from an
        activation's take to its column's earliest read from the column FIFO,
        from an empty column's take to its credit's return, from an entry's
        issue to the arithmetic unit's last stage."""
        return (PointerReader.fifo_read(config), PointerReader.drop_stage(config),
                MatrixReader.latency(config) + ArithmeticUnit.last_stage(config))

    def __init__(self, widths: Widths, pe: int, host_offset_bits: int, *, init=None, slack: int = 0):
        init = init or {}
        self._widths = widths
        self.pe_index = pe
        c = widths.config
        lanes = c.broadcast_width
        self.queues = [ActivationQueue(widths, slack) for _ in range(lanes)]
        self.pointers = PointerReader(widths, init_even=init.get("ptr_even", ()), init_odd=init.get("ptr_odd", ()))
        self.matrix = MatrixReader(widths, init=init.get("entries", ()))
        self.arith = ArithmeticUnit(widths)
        self.writeback = WriteBack(widths)
        self.buffer = ActivationBuffer(widths, pe)
        self.parts = {**{f"queue{'' if q == 0 else q}": queue for q, queue in enumerate(self.queues)},
                      "pointers": self.pointers, "matrix": self.matrix, "arith": self.arith,
                      "writeback": self.writeback, "buffer": self.buffer}
        if c.busy_logs:
            self.busy_log = self.parts["busy_log"] = memory.Memory(shape=unsigned(widths.busy), depth=c.max_layers,
                                                                   init=[])
        super().__init__({
            "act": In(stream.Signature(queued_layout(widths))).array(lanes),     # lane q: queue q
            "almost_full": Out(1),
            "ctl": In(pe_control_signature(widths)),
            "scan": Out(stream.Signature(activation_layout(widths))),
            "scan_done": Out(1),
            "out_en": In(1),
            "out_addr": In(widths.act_addr),
            "out_data": Out(signed(c.act_bits)),
            "idle": Out(1),
            "busy_read_layer": In(widths.layer),
            # what the host reads: while `host.re`, a memory word; else the busy cycles of `busy_read_layer`
            # (0 without `Config.busy_logs`)
            "host_read_data": Out(widths.pe_read),
            "host": In(host_write_layout(widths, host_offset_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        add_parts(m, self)
        queues, p, mr, au, wb, buf = self.queues, self.pointers, self.matrix, self.arith, self.writeback, self.buffer
        ctl = self.ctl
        ctrl = ctl.layer

        # the datapath, in pipeline order
        for act, queue in zip(self.act, queues):
            wiring.connect(m, wiring.flipped(act), queue.w)
        if len(queues) == 1:
            wiring.connect(m, queues[0].r, p.act[0])
        else:
            # a layer's activations alternate between the queues: the older of
            # the two heads is in queue `turn`, and the pointer reader takes it
            # first (and the other with it when it can)
            turn = Signal()
            older, newer = p.act
            heads = [queue.r for queue in queues]
            m.d.comb += [
                older.valid.eq(Mux(turn, heads[1].valid, heads[0].valid)),
                older.payload.eq(Mux(turn, heads[1].payload, heads[0].payload)),
                newer.valid.eq(Mux(turn, heads[0].valid, heads[1].valid)),
                newer.payload.eq(Mux(turn, heads[0].payload, heads[1].payload)),
                heads[0].ready.eq(Mux(turn, newer.ready, older.ready)),
                heads[1].ready.eq(Mux(turn, older.ready, newer.ready)),
            ]
            with m.If(ctl.count_reset):
                m.d.sync += turn.eq(0)
            with m.Elif(older.ready ^ newer.ready):         # one taken: the other queue is next
                m.d.sync += turn.eq(~turn)
        m.d.comb += p.layer_start.eq(ctl.count_reset)
        wiring.connect(m, p.col, mr.col)
        m.d.comb += [
            self.almost_full.eq(Cat(queue.almost_full for queue in queues).any()),
            au.entry.eq(mr.entry),
            au.entry_valid.eq(mr.entry_valid),
            au.cb_load.eq(ctl.cb_load),
        ]

        # write-back through the arithmetic unit's accumulator port into the buffer,
        # the biases from the pointer banks
        m.d.comb += [
            p.bias_read.eq(wb.bias_read), p.bias_addr.eq(wb.bias_addr), wb.bias_data.eq(p.bias),
            wb.valid.eq(ctl.wb_valid), wb.row.eq(ctl.wb_row), wb.bias_base.eq(ctrl.bias_base),
            wb.shift.eq(ctrl.shift), wb.overflow_mask.eq(ctrl.overflow_mask), wb.relu.eq(ctrl.relu),
            wb.bank.eq(ctrl.dst_bank),
            au.wb_read.eq(ctl.wb_valid), au.wb_row.eq(ctl.wb_row), wb.acc_data.eq(au.acc_data),
            au.clear.eq(wb.clear | ctl.clear), au.clear_row.eq(Mux(ctl.clear, ctl.clear_row, wb.clear_row)),
            buf.wr_en.eq(wb.out_en), buf.wr_addr.eq(wb.out_addr), buf.wr_data.eq(wb.out_data),
        ]

        # the source vector's nonzeros, and the output stage's reads
        wiring.connect(m, buf.scan, wiring.flipped(self.scan))
        m.d.comb += [
            buf.scan_start.eq(ctl.scan_start), buf.n_in.eq(ctrl.n_in), buf.src_bank.eq(ctrl.src_bank),
            self.scan_done.eq(buf.scan_done),
            buf.out_mode.eq(ctl.out_mode), buf.out_en.eq(self.out_en), buf.out_addr.eq(self.out_addr),
            self.out_data.eq(buf.out_data),
            # a pair being written is not looked at: COMPUTE ends no sooner than
            # `ControlUnit.settle_cycles` after the last push, when every PE's
            # registered `empty` has seen it (and the fan-out register that
            # writes a queue then drives that queue alone, not the reduction)
            self.idle.eq(Cat(queue.empty for queue in queues).all()
                         & ~p.busy & ~mr.busy & ~au.busy & ~wb.busy),
        ]

        # busy cycles of the running layer, logged per layer
        logged = C(0, self._widths.busy)
        if self._widths.config.busy_logs:
            busy = Signal(self._widths.busy)
            log_wr = self.busy_log.write_port()
            log_rd = self.busy_log.read_port()
            with m.If(ctl.count_reset):
                m.d.sync += busy.eq(0)
            with m.Elif(mr.issue):
                m.d.sync += busy.eq(busy + 1)
            m.d.comb += [
                log_wr.addr.eq(ctrl.layer), log_wr.data.eq(busy), log_wr.en.eq(ctl.count_save),
                log_rd.addr.eq(self.busy_read_layer),
            ]
            logged = read_data(m, log_rd, log_wr)

        # host writes into this PE's memories (kinds numbered as sw.format.PE_MEMORIES):
        # each memory's enable is decoded into a register beside it, and lands
        # with the address in the memory's address register (see the readers);
        # the data needs no register: the host port holds the address and data
        # for the whole access, so they are still valid a cycle later
        h = self.host
        ports = {"entries": mr.host, "ptr_even": p.host_even, "ptr_odd": p.host_odd}
        for kind, name in enumerate(PE_MEMORIES):
            port = ports[name]
            en = Signal(name=f"host_en_{name}")
            m.d.sync += en.eq(h.en & (h.kind == kind))
            m.d.comb += [port.addr.eq(h.addr), port.data.eq(h.data), port.en.eq(en)]

        # host reads (only while idle: the read borrows the datapath's address
        # register while `re` is high): the word is in the register behind its
        # block RAM three cycles after `re` rises and stays there while `re`
        # holds; it is on `host_read_data` a cycle after that
        c = self._widths.config
        access = h.en | h.re
        m.d.comb += [mr.host_access.eq(access), p.host_access.eq(access)]
        words = {"entries": mr.host_word, "ptr_even": p.host_words[:c.bank_bits],
                 "ptr_odd": p.host_words[c.bank_bits:]}
        word = Signal(self._widths.pe_read)
        with m.Switch(h.kind):
            for k, name in enumerate(PE_MEMORIES):
                with m.Case(k):
                    m.d.comb += word.eq(words[name])
        # the answer leaves the PE from a register: the selection tree that
        # gathers the PEs' answers is far away (that path set the ECP5's Fmax)
        answer = Signal.like(self.host_read_data)
        m.d.sync += answer.eq(Mux(h.re, word, logged))
        m.d.comb += self.host_read_data.eq(answer)
        return m

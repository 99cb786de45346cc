"""Central control unit: runs the layer program."""

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from sw.format import DESC_WORDS, FLAG_LAST, FLAG_RELU

from .layouts import Widths
from .pe import COUNTER_BITS, layer_control_layout
from .writeback import WriteBack

__all__ = ["ControlUnit"]


class ControlUnit(wiring.Component):
    """Runs one input vector through the layers in the descriptor table.

    Phases, in order (``rows = ceil(n_out / n_pe)``):

    ``CLEAR``      after any reset: zero every accumulator row (``row_depth``
                   cycles), so a run cut short leaves nothing behind.
    ``IDLE``       `ready`; a `start` (kept pending if it came earlier) begins.
    ``DESC``       read the layer's descriptor, 6 cycles; an invalid one
                   stops the run with `error`.
    ``COMPUTE``    broadcast the layer's nonzero inputs (layer 0 from the
                   input stream, later layers from the PEs' buffers through the
                   nonzero tree) until every source is exhausted and every PE is
                   idle.
    ``WRITEBACK``  rows ``0 .. rows - 1``, one per cycle; then ``DRAIN``,
                   `WriteBack.LATENCY` cycles until the last is written.
    ``OUTPUT``     after the last layer: stream the outputs; then `done`.

    Counters: `cycles` from `start` to `done`. Per layer ``T_measured``: from
    the cycle of the layer's first broadcast (or, with no nonzero input, its
    first write-back cycle) to the cycle its last output row is written,
    both included; and the broadcast's stall cycles. Both are logged per layer
    for the host (`log_*`).
    """

    def __init__(self, widths: Widths, *, init_layers=()):
        c = widths.config
        self._widths = widths
        self.layers = memory.Memory(shape=unsigned(32), depth=DESC_WORDS * c.max_layers, init=init_layers)
        self.cycles_log = memory.Memory(shape=unsigned(COUNTER_BITS), depth=c.max_layers, init=[])
        self.stalls_log = memory.Memory(shape=unsigned(COUNTER_BITS), depth=c.max_layers, init=[])
        super().__init__({
            "start": In(1),
            "ready": Out(1), "busy": Out(1), "done": Out(1), "error": Out(1),
            "cycles": Out(COUNTER_BITS),
            "layers_done": Out(widths.layer + 1),
            "ctrl": Out(layer_control_layout(widths)),
            "first_layer": Out(1), "computing": Out(1), "outputting": Out(1),
            "input_start": Out(1), "input_done": In(1),
            "scan_start": Out(1), "scan_done": In(1), "tree_idle": In(1),
            "bcast_valid": In(1), "pushed": In(1), "stall": In(1),
            "pes_idle": In(1),
            "wb_valid": Out(1), "wb_row": Out(widths.row),
            "clear": Out(1), "clear_row": Out(widths.row),
            "count_reset": Out(1), "count_save": Out(1),
            "output_start": Out(1), "n_out": Out(widths.count), "output_done": In(1),
            "host_layers": Out(memory.WritePort.Signature(addr_width=widths.desc_addr, shape=unsigned(32))),
            "log_read_layer": In(widths.layer),
            "log_cycles": Out(COUNTER_BITS), "log_stalls": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()
        m.submodules.layers = self.layers
        m.submodules.cycles_log = self.cycles_log
        m.submodules.stalls_log = self.stalls_log
        desc_rd = self.layers.read_port()
        desc_wr = self.layers.write_port()
        m.d.comb += [desc_wr.addr.eq(self.host_layers.addr), desc_wr.data.eq(self.host_layers.data),
                     desc_wr.en.eq(self.host_layers.en)]
        cyc_wr, cyc_rd = self.cycles_log.write_port(), self.cycles_log.read_port()
        stl_wr, stl_rd = self.stalls_log.write_port(), self.stalls_log.read_port()
        m.d.comb += [cyc_rd.addr.eq(self.log_read_layer), stl_rd.addr.eq(self.log_read_layer),
                     self.log_cycles.eq(cyc_rd.data), self.log_stalls.eq(stl_rd.data)]

        ctrl = self.ctrl
        pending = Signal()                # a start not yet served
        with m.If(self.start):
            m.d.sync += pending.eq(1)

        n_out = Signal(w.count)
        prev_n_out = Signal(w.count)
        last = Signal()
        rows = Signal(w.count)
        row = Signal(w.count)
        word = Signal(range(DESC_WORDS + 1))
        counting = Signal()
        layer_cycles = Signal(COUNTER_BITS)
        layer_stalls = Signal(COUNTER_BITS)
        m.d.comb += [
            self.n_out.eq(n_out),
            self.wb_row.eq(row),
            self.clear_row.eq(row),
            self.first_layer.eq(ctrl.layer == 0),
            cyc_wr.addr.eq(ctrl.layer), cyc_wr.data.eq(layer_cycles + 1),
            stl_wr.addr.eq(ctrl.layer), stl_wr.data.eq(layer_stalls),
            desc_rd.addr.eq(Cat(word[:3], ctrl.layer)),
        ]
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):
                m.d.comb += self.clear.eq(1)
                m.d.sync += row.eq(row + 1)
                with m.If(row == c.row_depth - 1):
                    m.next = "IDLE"

            with m.State("IDLE"):
                m.d.comb += self.ready.eq(1)
                with m.If(pending | self.start):
                    m.d.sync += [pending.eq(0), self.cycles.eq(0), self.done.eq(0), self.error.eq(0),
                                 self.layers_done.eq(0), ctrl.layer.eq(0), word.eq(0)]
                    m.next = "DESC"

            with m.State("DESC"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += word.eq(word + 1)
                got = desc_rd.data               # the word read in the previous cycle
                with m.Switch(word):
                    with m.Case(1):
                        m.d.sync += ctrl.n_in.eq(got)
                    with m.Case(2):
                        m.d.sync += n_out.eq(got)
                    with m.Case(3):
                        m.d.sync += ctrl.ptr_base.eq(got)
                    with m.Case(4):
                        m.d.sync += ctrl.bias_base.eq(got)
                    with m.Case(5):
                        m.d.sync += [ctrl.shift.eq(got[:8]), ctrl.relu.eq((got & FLAG_RELU) != 0),
                                     last.eq((got & FLAG_LAST) != 0),
                                     rows.eq((n_out + c.n_pe - 1) >> w.pe)]
                    with m.Case(6):
                        bad = ((ctrl.n_in == 0) | (n_out == 0) | (rows > c.row_depth)
                               | (ctrl.ptr_base + ctrl.n_in >= c.pointer_depth)
                               | (ctrl.bias_base + rows > c.row_depth) | (ctrl.shift > c.max_shift)
                               | ((ctrl.layer != 0) & (ctrl.n_in != prev_n_out)))
                        with m.If(bad):
                            m.next = "ERROR"
                        with m.Else():
                            m.d.comb += [self.count_reset.eq(1), self.input_start.eq(ctrl.layer == 0),
                                         self.scan_start.eq(ctrl.layer != 0)]
                            m.d.sync += [counting.eq(0), layer_cycles.eq(0), layer_stalls.eq(0),
                                         ctrl.src_bank.eq(~ctrl.layer[0]), ctrl.dst_bank.eq(ctrl.layer[0])]
                            m.next = "COMPUTE"

            with m.State("COMPUTE"):
                m.d.comb += [self.busy.eq(1), self.computing.eq(1)]
                with m.If(counting | self.pushed):
                    m.d.sync += [counting.eq(1), layer_cycles.eq(layer_cycles + 1)]
                with m.If(self.stall):
                    m.d.sync += layer_stalls.eq(layer_stalls + 1)
                exhausted = Mux(ctrl.layer == 0, self.input_done, self.scan_done & self.tree_idle)
                with m.If(exhausted & ~self.bcast_valid & self.pes_idle):
                    m.d.sync += row.eq(0)
                    m.next = "WRITEBACK"

            with m.State("WRITEBACK"):
                m.d.comb += [self.busy.eq(1), self.wb_valid.eq(1)]
                m.d.sync += [row.eq(row + 1), layer_cycles.eq(layer_cycles + 1)]
                with m.If(row + 1 == rows):
                    m.d.sync += word.eq(0)
                    m.next = "DRAIN"

            with m.State("DRAIN"):      # the last rows pass W1 .. W3
                m.d.comb += self.busy.eq(1)
                m.d.sync += [word.eq(word + 1), layer_cycles.eq(layer_cycles + 1)]
                with m.If(word == WriteBack.LATENCY - 1):
                    m.d.comb += [self.count_save.eq(1), cyc_wr.en.eq(1), stl_wr.en.eq(1)]
                    m.d.sync += [self.layers_done.eq(self.layers_done + 1), prev_n_out.eq(n_out), word.eq(0)]
                    with m.If(last):
                        m.d.comb += self.output_start.eq(1)
                        m.next = "OUTPUT"
                    with m.Elif(ctrl.layer == c.max_layers - 1):
                        m.next = "ERROR"         # ran off the table without a last layer
                    with m.Else():
                        m.d.sync += ctrl.layer.eq(ctrl.layer + 1)
                        m.next = "DESC"

            with m.State("OUTPUT"):
                m.d.comb += [self.busy.eq(1), self.outputting.eq(1)]
                with m.If(self.output_done):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"

            with m.State("ERROR"):
                m.d.sync += self.error.eq(1)
                m.next = "IDLE"
        return m

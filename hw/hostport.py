"""Host port: Wishbone B4 registers, counters and memory windows."""

import dataclasses
import functools
import operator

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from sw.config import Config
from sw.format import FORMAT_VERSION

from . import wishbone
from .hostmap import CODEBOOK, HW_VERSION, ID_VALUE, LAYER_COUNTERS, LAYER_TABLE, PE_BUSY, REGS, HostMap
from .layouts import COUNTER_BITS, HOST_DATA_BITS, Widths
from .pe import ProcessingElement
from .pipeline import drain_cycles, index_copies, reduce_stages, select

__all__ = ["HostPort"]


class HostPort(wiring.Component):
    """Decodes the `hw.hostmap` address map.

    Every access takes ``read_latency + 2`` cycles, reads and writes alike:
    the request is seen in cycle ``t``, everything it drives into the design
    leaves from a register in ``t + 1`` (a write into a PE memory lands
    ``fanout + 1`` cycles later still, through the registered fan-out and the
    registers of its enable and address in the PE, while the address and data it came
    with are still held: the master holds them until `ack`; a read
    addresses the counter memories, the layer table, the codebook store or a
    PE memory), the answer is registered in ``t + read_latency`` (a PE
    memory takes ``1 + fanout`` cycles to reach, one into its address
    register, two to be read into the register behind it, where it stays
    while the read holds the address, one
    into the PE's answer register, and ``reduce_stages(n_pe)`` to come back
    through a registered selection tree), and `ack` is high a cycle later.
    Memory reads are answered only while the accelerator is not busy (a read
    borrows the datapath's address until it is answered); while it is, they
    read 0, and writes into any memory (a PE's, the layer table, the codebook
    store) are dropped, acknowledged all the same: the running program reads
    the table and the store, and a PE memory's address is the datapath's.
    A soft reset (`CTRL` bit 1) drives `soft_reset` from ``t + 1`` for
    `reset_cycles` cycles.
    """

    def __init__(self, config: Config, fanout: int = 0):
        self._config = config
        self._fanout = fanout
        # the request's register, the fan-out, the PE's read, the selection tree,
        # the answer's register
        self.read_latency = 1 + fanout + ProcessingElement.HOST_READ_LATENCY + reduce_stages(config.n_pe) + 1
        self.reset_cycles = drain_cycles(config.n_pe, fanout)
        self._map = HostMap(config)
        w = Widths(config)
        self._widths = w
        mp = self._map
        super().__init__({
            "bus": In(wishbone.Signature(addr_width=mp.addr_width)),
            "start": Out(1), "soft_reset": Out(1),
            "status": In(data.StructLayout({"busy": 1, "done": 1, "error": 1, "ready": 1})),
            "cycles": In(COUNTER_BITS),
            "layers_done": In(w.layer + 1),
            "exit_index": In(w.layer),
            "log_read_addr": Out(w.layer + 1), "log_word": In(COUNTER_BITS),     # the counter region's word
            "busy_read_layer": Out(w.layer),
            "pe_read_data": In(w.pe_read).array(config.n_pe),
            "layers_we": Out(1), "codebook_we": Out(1), "pe_we": Out(1),
            "layers_re": Out(1), "codebook_re": Out(1), "pe_re": Out(1),
            "layers_data": In(32), "codebook_data": In(config.weight_bits),
            "pe_select": Out(max(mp.pe_bits, 1)), "pe_kind": Out(HostMap.PE_KIND_BITS),
            "offset": Out(max(mp.pe_offset_bits, mp.global_offset_bits)),
            "wdata": Out(HOST_DATA_BITS),
        })

    def elaborate(self, platform):
        c, mp, bus = self._config, self._map, self.bus
        m = Module()
        top = mp.field(bus.adr, "top")
        region = mp.field(bus.adr, "region")
        goff = mp.field(bus.adr, "offset")
        pe = mp.field(bus.adr, "pe") if mp.pe_bits else C(0, 1)
        kind = mp.field(bus.adr, "kind")

        pending = Signal()          # between request and ack
        request = bus.cyc & bus.stb & ~pending & ~bus.ack
        write = request & bus.we
        memory_read = request & ~bus.we & ~self.status.busy
        # everything the port drives into the design leaves from a register
        # (the bus's decode would otherwise reach far into it)
        m.d.sync += [
            self.wdata.eq(bus.dat_w),
            self.offset.eq(Mux(top, mp.field(bus.adr, "pe_offset"), goff)),
            self.pe_select.eq(pe), self.pe_kind.eq(kind),
            # memory writes while busy are dropped: a PE memory's address register belongs to the
            # datapath then, and the running program reads the layer table and the codebook store
            self.pe_we.eq(write & top & ~self.status.busy),
            self.layers_we.eq(write & ~top & (region == LAYER_TABLE) & ~self.status.busy),
            self.codebook_we.eq(write & ~top & (region == CODEBOOK) & ~self.status.busy),
            self.start.eq(write & ~top & (region == REGS) & (goff == HostMap.CTRL) & bus.dat_w[0]),
            self.log_read_addr.eq(goff),
            self.busy_read_layer.eq(goff[:mp.layer_bits]),
        ]

        # a soft reset leaves from a register and lasts `reset_cycles`: long
        # enough for whatever was in flight between the centre and the PEs to
        # drain into blocks held in reset
        reset_request = write & ~top & (region == REGS) & (goff == HostMap.CTRL) & bus.dat_w[1]
        reset_left = Signal(range(self.reset_cycles + 1))
        with m.If(reset_request):
            m.d.sync += reset_left.eq(self.reset_cycles)
        with m.Elif(reset_left != 0):
            m.d.sync += reset_left.eq(reset_left - 1)
        m.d.sync += self.soft_reset.eq(reset_request | (reset_left > 1))

        regs = {HostMap.ID: C(ID_VALUE, 32), HostMap.VERSION: C((HW_VERSION << 16) | FORMAT_VERSION, 32),
                HostMap.STATUS: self.status.as_value(), HostMap.CYCLES: self.cycles,
                HostMap.LAYERS_DONE: self.layers_done, HostMap.EXIT: self.exit_index}
        for i, f in enumerate(dataclasses.fields(c)):
            regs[HostMap.CONFIG + i] = C(getattr(c, f.name), 32)

        # the answer, `read_latency` cycles after the request (the master holds
        # the address until `ack`, so the counters' addresses above stay valid).
        # Where it comes from is decoded at the request into one-hot registers,
        # so the answer is an AND-OR of far-apart sources under registered
        # selects (the address decode in front of it set the ECP5's Fmax). The
        # memories' selects repeat the decode of their read enables below on
        # purpose: those leave for far memories, these stay by the answer
        r_adr = Signal.like(bus.adr)
        answer = Signal(HOST_DATA_BITS)
        wait = Signal(range(self.read_latency + 1))
        busy = self.status.busy
        chosen = {                                  # no source chosen: the answer is 0
            "regs": ~top & (region == REGS),
            "counters": ~top & (region == LAYER_COUNTERS),
            "pe": ~top & (region == PE_BUSY) | top & ~busy,
            "layers": ~top & (region == LAYER_TABLE) & ~busy,
            "codebook": ~top & (region == CODEBOOK) & ~busy,
        }
        sel = {name: Signal(name=f"from_{name}") for name in chosen}
        with m.If(request):
            m.d.sync += [pending.eq(1), r_adr.eq(bus.adr), wait.eq(0),
                         *[sel[name].eq(when) for name, when in chosen.items()]]
        with m.Elif(pending & (wait != self.read_latency)):
            m.d.sync += wait.eq(wait + 1)
        r_goff = mp.field(r_adr, "offset")
        which = Mux(top, pe, (goff >> mp.layer_bits)[:max(mp.pe_bits, 1)])
        # the PE's number meets its answer at the selection tree (which takes
        # it a cycle ahead, a copy for each first-level multiplexer)
        n = self._config.n_pe
        read_pe = index_copies(m, which, n, self.read_latency - reduce_stages(n) - 1, "read_pe")
        from_pe = select(m, list(self.pe_read_data), read_pe, "pe_read")
        reg_value = Signal(HOST_DATA_BITS)
        with m.Switch(r_goff):
            for addr, value in regs.items():
                with m.Case(addr):
                    m.d.comb += reg_value.eq(value)
        values = {"regs": reg_value, "counters": self.log_word,
                  "pe": from_pe, "layers": self.layers_data, "codebook": self.codebook_data}
        m.d.comb += answer.eq(functools.reduce(operator.or_, (Mux(sel[name], values[name], 0) for name in chosen)))
        m.d.sync += bus.ack.eq(0)
        # a memory read holds its memory's address from t + 1 until the answer
        # is taken: the word then stays in the register behind the memory (no
        # copy is held anywhere)
        reads = [self.pe_re, self.layers_re, self.codebook_re]
        with m.If(request):
            m.d.sync += [self.pe_re.eq(memory_read & top),
                         self.layers_re.eq(memory_read & ~top & (region == LAYER_TABLE)),
                         self.codebook_re.eq(memory_read & ~top & (region == CODEBOOK))]
        with m.If(pending & ~bus.ack & (wait == self.read_latency - 1)):
            m.d.sync += [bus.dat_r.eq(answer), bus.ack.eq(1), pending.eq(0), *[r.eq(0) for r in reads]]
        return m

"""Pointer reader: `ptr[j]` and `ptr[j+1]` in one cycle from two banks, which
also hold the biases."""

from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .collisions import read_data
from .layouts import Widths, column_layout, queued_layout, spec_memory
from .parts import add_parts
from .pipeline import delay_line
from .register_fifo import column_fifo

__all__ = ["PointerReader"]


class PointerReader(wiring.Component):
    """Turns `(g, a_j)` into the column to stream: entries
    ``ptr[g] .. ptr[g+1] - 1`` (``g = ptr_base + j``, added by the broadcast).

    Pointers live in two banks, even ``g`` in `even`, odd in `odd`, so the two
    neighbours are always in different banks and read in the same cycle.

    Timing (a five-stage pipeline that never stalls, P0 to P4, then a
    column FIFO `Config.column_fifo_depth` deep, in registers when shallow:
    `hw.register_fifo`, the same timing either way):

    * P0, cycle ``t``: an activation is taken from `act` when the FIFO has
      room for it and for everything in flight; the banks' addresses are
      worked out.
    * P1, ``t + 1``: the addresses, registered beside the block RAMs, are
      read.
    * P2, ``t + 2``: the banks' words are registered as they leave the block
      RAMs (nothing else on that path: a block RAM's clock-to-out is slow).
      `Config.short_pipeline` leaves this register out: P3 takes the words
      straight from the block RAMs, and every later stage comes a cycle
      sooner (`drop_stage`, `fifo_read`, `bias_latency`).
    * P3, ``t + 3``: the column's bounds are registered (and whether they
      differ, in pairs of bits).
    * P4, ``t + 4``: an empty column (``ptr[g] == ptr[g+1]``) is dropped
      here, so it costs one cycle of P0 and nothing downstream; a nonempty
      one enters the FIFO (with whether it has one entry), readable
      on `col` in ``t + 6`` (the FIFO reads its memory into a register, as
      block RAM needs: `lib.fifo.SyncFIFOBuffered`).

    One activation per cycle enters while the FIFO is drained as fast. With
    ``broadcast_width`` 2 there are two lanes: `act[0]` the older activation,
    `act[1]` the next (taken only with it), each with its own read port on
    both banks and its own P1 to P4; nonempty columns alternate, in order,
    between two FIFOs that `col` reads back in turn (both turns restart at
    `layer_start`), and the credits are twice as many.

    The banks also hold the biases (`sw.format`: low half in the even bank,
    high half in the odd one, at the same word). During write-back, when no
    activation arrives, `bias_read` in cycle ``t`` reads word `bias_addr` of
    both banks and `bias` holds the joined, signed value in ``t +
    bias_latency``.
    """

    @staticmethod
    def drop_stage(config) -> int:
        """P4: an empty column taken in ``t`` is dropped (its credit back) in ``t + drop_stage``."""
        return 4 - config.short_pipeline

    @classmethod
    def fifo_read(cls, config) -> int:
        """A nonempty column taken in ``t`` is readable on `col` in ``t + fifo_read`` (SyncFIFOBuffered)."""
        return cls.drop_stage(config) + 2

    @staticmethod
    def bias_latency(config) -> int:
        """`bias_read` in ``t``: `bias` holds the value in ``t + bias_latency``."""
        return 3 - config.short_pipeline

    @classmethod
    def credits_for(cls, config) -> int:
        """Column credits: a FIFO's worth per lane (two lanes alternate between two FIFOs).
        The default 7 keeps a column a cycle going: a credit comes back 7 cycles after it is spent."""
        return config.column_fifo_depth * config.broadcast_width

    def __init__(self, widths: Widths, *, init_even=(), init_odd=()):
        c = widths.config
        self._widths = widths
        self._lanes = c.broadcast_width
        self.even = spec_memory(c, "ptr_even", init_even)
        self.odd = spec_memory(c, "ptr_odd", init_odd)
        self.image_memories = {"ptr_even": self.even, "ptr_odd": self.odd}
        self.columns = [column_fifo(width=column_layout(widths).size, depth=c.column_fifo_depth)
                        for _ in range(self._lanes)]
        self.parts = {f"columns{'' if q == 0 else q}": f for q, f in enumerate(self.columns)}
        bank = memory.WritePort.Signature(addr_width=widths.bank_addr, shape=self.even.shape)
        super().__init__({
            "act": In(stream.Signature(queued_layout(widths))).array(self._lanes),
            "layer_start": In(1),
            "col": Out(stream.Signature(column_layout(widths))),
            "busy": Out(1),
            "bias_read": In(1),
            "bias_addr": In(widths.bank_addr),
            "bias": Out(signed(c.acc_bits)),
            "host_even": Out(bank),
            "host_odd": Out(bank),
            # a host access (while idle): the banks' address registers take their host ports' address a
            # cycle later (a write lands then, with `en`); a read's words are on `host_words` (even in the
            # low half) two cycles after that (one with `short_pipeline`)
            "host_access": In(1), "host_words": Out(2 * c.bank_bits),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        lanes = self._lanes
        m = Module()
        add_parts(m, self)
        # The host writes only while the PE is idle, so each bank has one
        # address for its reads and the host's writes: one read-write port of
        # a block RAM, with nothing to emulate (a read port beside a separate
        # write port costs a bypass multiplexer and an address comparator, or
        # read-first registers). The address is a register with no logic
        # behind it, which takes the host's address during its accesses (a
        # multiplexer there, far from the block RAM, set the ECP5's Fmax at
        # 64 PEs). A second lane reads through a second port.
        ports = []                  # per bank: [(read data, registered address)] per lane
        for host, mem in ((self.host_even, self.even), (self.host_odd, self.odd)):
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            read_addr = Signal(w.bank_addr, reset_less=True)       # P1: registered beside the RAM
            m.d.comb += [wr.addr.eq(read_addr), wr.data.eq(host.data), wr.en.eq(host.en),
                         rd.addr.eq(read_addr), rd.en.eq(~host.en)]
            bank_ports = [(read_data(m, rd, wr), read_addr)]
            for q in range(1, lanes):
                rd_q = mem.read_port()
                addr_q = Signal(w.bank_addr, reset_less=True, name=f"read_addr_{q}")
                m.d.comb += rd_q.addr.eq(addr_q)
                bank_ports.append((read_data(m, rd_q, wr), addr_q))
            ports.append(bank_ports)

        # P0: take activations (in order, the second only with the first) only
        # if the FIFOs can hold them whatever comes: a credit per FIFO entry,
        # spent by a take, returned when a column leaves a FIFO or an empty one
        # is dropped (a register, not a sum of the FIFOs' levels and the
        # stages in flight)
        credits_n = self.credits_for(c)
        credits = Signal(range(credits_n + 1), init=credits_n)
        takes = []
        for q, act in enumerate(self.act):
            take = Signal(name=f"take_{q}")
            m.d.comb += [take.eq(act.valid & (credits > q) & (takes[-1] if takes else 1)), act.ready.eq(take)]
            takes.append(take)

        lanes_out = []              # per lane: (P4 valid, P4 nonempty, column register)
        pb = w.pointer
        for q, act in enumerate(self.act):
            (even_data, even_addr), (odd_data, odd_addr) = ports[0][q], ports[1][q]
            g = act.payload.pointer
            if q == 0:              # lane 0's port also serves the biases and the host
                with m.If(self.host_access):
                    m.d.sync += [odd_addr.eq(self.host_odd.addr), even_addr.eq(self.host_even.addr)]
                with m.Else():
                    m.d.sync += [odd_addr.eq(Mux(self.bias_read, self.bias_addr, g >> 1)),
                                 even_addr.eq(Mux(self.bias_read, self.bias_addr, (g >> 1) + g[0]))]
            else:
                m.d.sync += [odd_addr.eq(g >> 1), even_addr.eq((g >> 1) + g[0])]
            # P1, P2: the words leave the block RAMs into registers
            drop = self.drop_stage(c)
            valid = delay_line(m, takes[q], drop, f"p_valid_{q}")      # P1 .. P4
            p3_value = delay_line(m, act.payload.value, drop - 1, f"value_{q}", data=True)[-1].as_signed()
            p3_odd = delay_line(m, g[0], drop - 1, f"odd_{q}", data=True)[-1]
            if c.short_pipeline:
                even, odd = even_data, odd_data
            else:
                even = Signal.like(even_data, reset_less=True, name=f"even_{q}")
                odd = Signal.like(odd_data, reset_less=True, name=f"odd_{q}")
                m.d.sync += [even.eq(even_data), odd.eq(odd_data)]
            if q == 0:
                m.d.comb += [self.host_words.eq(Cat(even, odd)),
                             self.bias.eq(Cat(even[:c.bias_low_bits], odd[:c.acc_bits - c.bias_low_bits]).as_signed())]
            # P3: the column's bounds; P4: into a FIFO, or nothing for an
            # empty one. Whether it has one entry is worked out in P4, from
            # the bounds' registers: the two banks' registers may sit far
            # apart, so P3 does no more than choose between them (and a LUT
            # deep of the emptiness compare, below)
            bounds = Signal(data.StructLayout({"start": unsigned(pb), "end": unsigned(pb), "value": signed(w.act)}),
                            reset_less=True, name=f"bounds_{q}")
            m.d.sync += [bounds.start.eq(Mux(p3_odd, odd[:pb], even[:pb])),
                         bounds.end.eq(Mux(p3_odd, even[:pb], odd[:pb])), bounds.value.eq(p3_value)]
            # ptr[g] != ptr[g + 1] is even != odd whichever comes first: P3
            # compares two bits of each per LUT (as deep as the choice beside
            # it), P4 ORs those, so the credits it feeds are few levels behind
            # a register (the whole compare in P4 set the ECP5's Fmax at 64 PEs)
            differs = Signal(-(-pb // 2), reset_less=True, name=f"differs_{q}")
            m.d.sync += differs.eq(Cat(*(even[i:min(i + 2, pb)] != odd[i:min(i + 2, pb)] for i in range(0, pb, 2))))
            nonempty = Signal(name=f"nonempty_{q}")
            col = Signal(column_layout(w), name=f"col_{q}")
            m.d.comb += [nonempty.eq(differs.any()),
                         col.start.eq(bounds.start), col.value.eq(bounds.value),
                         col.rest.eq(bounds.end - bounds.start - 1), col.single.eq(bounds.start + 1 == bounds.end)]
            lanes_out.append((valid, nonempty, col))

        busy = Cat(*(Cat(*v) for v, _, _ in lanes_out)).any() | Cat(*(f.level != 0 for f in self.columns)).any()
        m.d.comb += self.busy.eq(busy)              # level: also a column not yet readable
        dropped = sum(((v[-1] & ~ne).as_unsigned() for v, ne, _ in lanes_out), C(0, 2))
        if lanes == 1:
            q = self.columns[0]
            (valid, nonempty, col), = lanes_out
            m.d.comb += [q.w_data.eq(col), q.w_en.eq(valid[-1] & nonempty),
                         self.col.payload.eq(q.r_data), self.col.valid.eq(q.r_rdy), q.r_en.eq(self.col.ready)]
        else:
            # nonempty columns alternate between the two FIFOs in order; the
            # matrix reader reads them back in the same order
            wturn, rturn = Signal(), Signal()
            (v0, ne0, col0), (v1, ne1, col1) = lanes_out
            w0, w1 = v0[-1] & ne0, v1[-1] & ne1
            for f in range(2):
                first = wturn == f                  # this FIFO takes the first column written now
                q = self.columns[f]
                m.d.comb += [q.w_en.eq(Mux(first, w0 | w1, w0 & w1)),
                             q.w_data.eq(Mux(first & w0, col0, col1))]
            with m.If(self.layer_start):
                m.d.sync += [wturn.eq(0), rturn.eq(0)]
            with m.Else():
                m.d.sync += wturn.eq(wturn ^ (w0 ^ w1))
                with m.If(self.col.valid & self.col.ready):
                    m.d.sync += rturn.eq(~rturn)
            heads = [(f.r_rdy, f.r_data) for f in self.columns]
            m.d.comb += [
                self.col.valid.eq(Mux(rturn, heads[1][0], heads[0][0])),
                self.col.payload.eq(Mux(rturn, heads[1][1], heads[0][1])),
                self.columns[0].r_en.eq(self.col.ready & ~rturn),
                self.columns[1].r_en.eq(self.col.ready & rturn),
            ]
        taken = sum((t.as_unsigned() for t in takes), C(0, 2))
        returned = (self.col.valid & self.col.ready).as_unsigned() + dropped
        m.d.sync += credits.eq(credits - taken + returned)
        return m

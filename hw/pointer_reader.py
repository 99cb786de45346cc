"""Pointer reader: `ptr[j]` and `ptr[j+1]` in one cycle from two banks, which
also hold the biases."""

from amaranth import *
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import Widths, column_layout, queued_layout, spec_memory
from .parts import add_parts
from .pipeline import delay_line

__all__ = ["PointerReader"]


class PointerReader(wiring.Component):
    """Turns `(g, a_j)` into the column to stream: entries
    ``ptr[g] .. ptr[g+1] - 1`` (``g = ptr_base + j``, added by the broadcast).

    Pointers live in two banks, even ``g`` in `even`, odd in `odd`, so the two
    neighbours are always in different banks and read in the same cycle.

    Timing (a five-stage pipeline that never stalls, P0 to P4, then a
    `COLUMN_FIFO_DEPTH`-deep column FIFO):

    * P0, cycle ``t``: an activation is taken from `act` when the FIFO has
      room for it and for everything in flight; the banks' addresses are
      worked out.
    * P1, ``t + 1``: the addresses, registered beside the block RAMs, are
      read.
    * P2, ``t + 2``: the banks' words are registered as they leave the block
      RAMs (nothing else on that path: a block RAM's clock-to-out is slow).
    * P3, ``t + 3``: the column's bounds, and whether it is empty
      (``ptr[g] == ptr[g+1]``), are registered.
    * P4, ``t + 4``: an empty column is dropped here, so it costs one cycle
      of P0 and nothing downstream; a nonempty one enters the FIFO, readable
      on `col` in ``t + 6`` (the FIFO reads its memory into a register, as
      block RAM needs: `lib.fifo.SyncFIFOBuffered`).

    One activation per cycle enters while the FIFO is drained as fast.

    The banks also hold the biases (`sw.format`: low half in the even bank,
    high half in the odd one, at the same word). During write-back, when no
    activation arrives, `bias_read` in cycle ``t`` reads word `bias_addr` of
    both banks and `bias` holds the joined, signed value in ``t +
    BIAS_LATENCY``.
    """

    COLUMN_FIFO_DEPTH = 7      # a credit comes back 7 cycles after it is spent: one column per cycle
    BIAS_LATENCY = 3

    def __init__(self, widths: Widths, *, init_even=(), init_odd=()):
        c = widths.config
        self._widths = widths
        self.even = spec_memory(c, "ptr_even", init_even)
        self.odd = spec_memory(c, "ptr_odd", init_odd)
        self.image_memories = {"ptr_even": self.even, "ptr_odd": self.odd}
        self.columns = fifo.SyncFIFOBuffered(width=column_layout(widths).size, depth=self.COLUMN_FIFO_DEPTH)
        self.parts = {"columns": self.columns}
        bank = memory.WritePort.Signature(addr_width=widths.bank_addr, shape=self.even.shape)
        super().__init__({
            "act": In(stream.Signature(queued_layout(widths))),
            "col": Out(stream.Signature(column_layout(widths))),
            "busy": Out(1),
            "bias_read": In(1),
            "bias_addr": In(widths.bank_addr),
            "bias": Out(signed(c.acc_bits)),
            "host_even": Out(bank),
            "host_odd": Out(bank),
            # a host read (while idle) of both banks at their host ports' address: on `host_words` (even in
            # the low half) two cycles later, for one
            "host_read": In(1), "host_words": Out(2 * c.bank_bits),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()
        add_parts(m, self)
        q = self.columns
        # The host writes only while the PE is idle, so each bank has one
        # address for its reads and the host's writes: one read-write port of
        # a block RAM, with nothing to emulate (a read port beside a separate
        # write port costs a bypass multiplexer and an address comparator, or
        # read-first registers).
        addresses = []
        for host, mem in ((self.host_even, self.even), (self.host_odd, self.odd)):
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            read_addr = Signal(w.bank_addr, reset_less=True)       # P1: registered beside the RAM
            m.d.comb += [wr.addr.eq(Mux(host.en | self.host_read, host.addr, read_addr)),
                         wr.data.eq(host.data), wr.en.eq(host.en),
                         rd.addr.eq(wr.addr), rd.en.eq(~host.en)]
            addresses.append((rd, read_addr))
        (rd_even, even_addr), (rd_odd, odd_addr) = addresses

        # P0: take an activation only if the FIFO can hold it whatever comes:
        # a credit per FIFO entry, spent by a take, returned when a column
        # leaves the FIFO or an empty one is dropped (a register, not a sum
        # of the FIFO's level and the stages in flight)
        p1_valid, p2_valid, p3_valid, p4_valid = Signal(), Signal(), Signal(), Signal()
        credits = Signal(range(self.COLUMN_FIFO_DEPTH + 1), init=self.COLUMN_FIFO_DEPTH)
        room = credits != 0
        take = self.act.valid & room
        p4_nonempty = Signal(reset_less=True)
        returned = (self.col.valid & self.col.ready).as_unsigned() + (p4_valid & ~p4_nonempty)     # 0, 1 or 2
        m.d.sync += credits.eq(credits - take + returned)
        g = self.act.payload.pointer
        m.d.comb += self.act.ready.eq(room)
        m.d.sync += [
            odd_addr.eq(Mux(self.bias_read, self.bias_addr, g >> 1)),
            even_addr.eq(Mux(self.bias_read, self.bias_addr, (g >> 1) + g[0])),
        ]

        # P1, P2: the words leave the block RAMs into registers
        p3_value = delay_line(m, self.act.payload.value, 3, "value", data=True)[-1].as_signed()
        p3_odd = delay_line(m, g[0], 3, "odd", data=True)[-1]
        even, odd = Signal.like(rd_even.data, reset_less=True), Signal.like(rd_odd.data, reset_less=True)
        m.d.sync += [
            p1_valid.eq(take), p2_valid.eq(p1_valid), p3_valid.eq(p2_valid),
            even.eq(rd_even.data), odd.eq(rd_odd.data),
        ]
        m.d.comb += self.host_words.eq(Cat(even, odd))

        # P3: the column and whether it is empty; P4: into the FIFO, or
        # nothing for an empty one (the FIFO's write comes from registers)
        pb = w.pointer
        start = Mux(p3_odd, odd[:pb], even[:pb])
        end = Mux(p3_odd, even[:pb], odd[:pb])
        col = Signal(column_layout(w), reset_less=True)
        m.d.sync += [
            col.start.eq(start), col.end.eq(end), col.value.eq(p3_value), col.single.eq(start + 1 == end),
            p4_valid.eq(p3_valid), p4_nonempty.eq(even[:pb] != odd[:pb]),      # ptr[g] != ptr[g + 1]
        ]
        low = c.bias_low_bits
        m.d.comb += [
            q.w_data.eq(col), q.w_en.eq(p4_valid & p4_nonempty),
            self.col.payload.eq(q.r_data), self.col.valid.eq(q.r_rdy), q.r_en.eq(self.col.ready),
            self.bias.eq(Cat(even[:low], odd[:c.acc_bits - low]).as_signed()),
            self.busy.eq(p1_valid | p2_valid | p3_valid | p4_valid | (q.level != 0)),   # level: also a column not yet readable
        ]
        return m

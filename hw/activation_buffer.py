"""Activation buffer (ping-pong) and the nonzero scanner in front of it."""

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .collisions import read_data
from .layouts import Widths, activation_layout
from .parts import add_parts

__all__ = ["ActivationBuffer"]


class ActivationBuffer(wiring.Component):
    """This PE's share of a layer's input and output vectors: element
    ``i * n_pe + k`` of a vector sits at row ``i`` of PE ``k``, in one of two
    banks (a layer reads one and writes the other).

    The scanner finds the nonzeros of the source bank for the broadcast. After
    `scan_start` (cycle ``t``) it reads rows ``0, 1, ...`` one per cycle from
    cycle ``t + 1`` while ``i * n_pe + k < n_in``; a value arrives one cycle
    after its read, and a nonzero one is offered on `scan` as ``(j, a_j)``
    (zeros are dropped on the spot, costing their one read cycle) into a
    register that drives `scan`; it takes a new pair only when empty, so the
    nonzero tree's `ready` never reaches back into this block's memory read,
    and a nonzero leaves at most every other cycle. While it is full,
    reading pauses at the next nonzero. `scan_done` is high once every row
    has been read and offered and the register is empty.

    With `out_mode` set, the read port serves the output stage instead:
    `out_addr` read in cycle ``t`` (while `out_en`) gives `out_data` in
    ``t + 1``. Write-back writes through `wr_*`.
    """

    def __init__(self, widths: Widths, pe: int):
        c = widths.config
        self._widths = widths
        self._pe = pe
        self.memory = memory.Memory(shape=signed(c.act_bits), depth=2 * c.row_depth, init=[])
        self.parts = {"act": self.memory}
        super().__init__({
            "scan_start": In(1),
            "n_in": In(widths.count),
            "src_bank": In(1),
            "scan": Out(stream.Signature(activation_layout(widths))),
            "scan_done": Out(1),
            "out_mode": In(1),
            "out_en": In(1),
            "out_addr": In(widths.act_addr),
            "out_data": Out(signed(c.act_bits)),
            "wr_en": In(1),
            "wr_addr": In(widths.act_addr),
            "wr_data": In(signed(c.act_bits)),
        })

    def elaborate(self, platform):
        w = self._widths
        m = Module()
        add_parts(m, self)
        # the scan leaves through one register whose ready is its own
        # emptiness, so the tree's ready never reaches the memory read: a
        # nonzero leaves a PE at most every other cycle (the tree merges
        # many PEs, and zeros cost no slot at all)
        scan = stream.Signature(activation_layout(w)).create()
        m.d.comb += scan.ready.eq(~self.scan.valid)
        with m.If(scan.valid & scan.ready):
            m.d.sync += [self.scan.valid.eq(1), self.scan.payload.eq(scan.payload)]
        with m.Elif(self.scan.ready):
            m.d.sync += self.scan.valid.eq(0)
        rd = self.memory.read_port()
        wr = self.memory.write_port()
        m.d.comb += [wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en)]
        data = read_data(m, rd, wr)

        # element i * n_pe + pe is row i: the index is the row with the PE's
        # number below it, no adder; the scan ends at the row of the vector's
        # last element in this PE, worked out once at the start
        scanning = Signal()
        row = Signal(w.row, reset_less=True)
        last_row = Signal(w.row, reset_less=True)
        r1_valid = Signal()
        r1_row = Signal(w.row, reset_less=True)

        nonzero = data != 0
        taken = r1_valid & (~nonzero | scan.ready)
        advance = ~r1_valid | taken
        m.d.comb += [
            scan.valid.eq(r1_valid & nonzero),
            scan.payload.index.eq(Cat(C(self._pe, w.pe), r1_row) if w.pe else r1_row),
            scan.payload.value.eq(data),
            self.scan_done.eq(~scanning & ~r1_valid & ~self.scan.valid),
            rd.addr.eq(Mux(self.out_mode, self.out_addr, Cat(row, self.src_bank))),
            rd.en.eq(Mux(self.out_mode, self.out_en, advance)),
            self.out_data.eq(data),
        ]
        with m.If(self.scan_start):
            m.d.sync += [row.eq(0), last_row.eq((self.n_in - 1 - self._pe) >> w.pe),
                         scanning.eq(self._pe < self.n_in), r1_valid.eq(0)]
        with m.Elif(advance):
            m.d.sync += [r1_valid.eq(scanning), r1_row.eq(row)]
            with m.If(scanning):
                m.d.sync += [row.eq(row + 1), scanning.eq(row != last_row)]
        return m

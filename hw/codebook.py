"""The codebook store: every layer's codebook, one copy for all PEs.

Each PE decodes with its own copy of the running layer's codebook
(`ArithmeticUnit`, ``2**code_bits`` values). Keeping every layer's
codebook in every PE cost ``max_layers`` times that per PE; now the store
holds them once (the image memory ``codebook``) and loads the next layer's
into every PE while the PEs do not need theirs.
"""

from amaranth import *
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .collisions import read_data
from .layouts import Widths, codebook_load_layout, spec_memory
from .parts import add_parts

__all__ = ["CodebookStore"]


class CodebookStore(wiring.Component):
    """`start` in cycle ``t`` (with `layer`, needed in that cycle only) is
    registered (the control unit's decision to start is deep, and this
    block sits beside the codebook memory, away from it); the store then
    reads that layer's ``2**code_bits`` values one per cycle from ``t + 2``
    (the read address comes from registers only) and offers value ``i`` on
    `load` in cycle ``t + 3 + i``. `done` is low from cycle ``t + 1`` and
    high again from ``t + 3 + 2**code_bits`` until the next `start` (and
    after reset: nothing to load yet). `nearly_done` is high from
    ``EARLY`` cycles before `done` (or from ``t + 2`` if that is later):
    a layer started then decodes its first entry after the last value
    reached the PEs (see `hw.control.ControlUnit`)."""

    # A layer >= 1 started in cycle D reads its codebook first in D + 2 fanout
    # + 15 or later (at the PEs: its scan's first nonzero leaves the scan
    # register in D + fanout + 3, the broadcast pushes it a cycle later or
    # after, the queue has it fanout cycles after that and its first entry's
    # S1 is 11 cycles later, hw.pe). The last value is written there in
    # t + 2 + 2**code_bits + fanout; fanout >= 1, so starting in
    # t + 2**code_bits - 13, EARLY = 16 cycles before `done`, is safe.
    EARLY = 16

    @staticmethod
    def load_cycles(config) -> int:
        """Cycles from `start` until `done` is high again."""
        return (1 << config.code_bits) + 3

    @classmethod
    def nearly_cycles(cls, config) -> int:
        """Cycles from `start` until `nearly_done` is high again."""
        return max(cls.load_cycles(config) - cls.EARLY, 2)

    def __init__(self, widths: Widths, *, init=()):
        c = widths.config
        self._widths = widths
        self.memory = spec_memory(c, "codebook", init)
        self.image_memories = {"codebook": self.memory}
        super().__init__({
            "start": In(1),
            "layer": In(widths.layer),
            "load": Out(codebook_load_layout(widths)),
            "done": Out(1), "nearly_done": Out(1),
            "host": Out(memory.WritePort.Signature(addr_width=widths.codebook_addr, shape=signed(c.weight_bits))),
            # a host read (while idle): while `host_read` holds, the value's bits at `host.addr` are on
            # `host_data` from two cycles after it rose
            "host_read": In(1), "host_data": Out(c.weight_bits),
        })

    def elaborate(self, platform):
        c = self._widths.config
        m = Module()
        add_parts(m, self)
        rd, wr = self.memory.read_port(), self.memory.write_port()
        m.d.comb += [wr.addr.eq(self.host.addr), wr.data.eq(self.host.data), wr.en.eq(self.host.en)]
        data = read_data(m, rd, wr)

        code = Signal(c.code_bits)
        reading = Signal()
        start = Signal()
        start_layer = Signal.like(self.layer, reset_less=True)
        m.d.sync += [start.eq(self.start), start_layer.eq(self.layer)]
        done = Signal(init=1)
        m.d.comb += self.done.eq(done & ~start)
        layer = Signal.like(self.layer)             # latched: `layer` need only be valid with `start`
        m.d.comb += rd.addr.eq(Mux(self.host_read, self.host.addr, Cat(code, layer)))
        m.d.sync += self.host_data.eq(Value.cast(data).as_unsigned())      # registered: the RAM's output is slow
        with m.If(start):
            m.d.sync += [code.eq(0), reading.eq(1), done.eq(0), layer.eq(start_layer)]
        with m.Elif(reading):
            m.d.sync += [code.eq(code + 1), reading.eq(code != c.n_codes - 1)]
        loading, loaded_code = Signal(), Signal(c.code_bits)
        m.d.sync += [loading.eq(reading), loaded_code.eq(code)]
        with m.If(loading & ~reading & ~start):
            m.d.sync += done.eq(1)
        m.d.comb += [self.load.addr.eq(loaded_code), self.load.data.eq(data), self.load.en.eq(loading)]
        # code i is read in t + 2 + i: the nearly-done cycle t + load - EARLY reads code
        # load - EARLY - 2 = n_codes + 1 - EARLY
        early = c.n_codes + 1 - self.EARLY
        # (and the cycle after the last read, before `done` rises)
        m.d.comb += self.nearly_done.eq(self.done | (loading & ~reading)
                                        | ((reading & (code >= early)) if early > 0 else reading))
        return m

"""Sparse-matrix reader: streams a column's entries at one per cycle."""

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .collisions import read_data
from .layouts import Widths, column_layout, entry_layout, spec_memory
from .parts import add_parts
from .pipeline import delay_line

__all__ = ["MatrixReader"]


class MatrixReader(wiring.Component):
    """Reads entries ``start .. start + rest`` of each column from the PE's
    sparse-matrix memory (`entries_per_word` entries per word, a column may
    start in any lane) and emits them one per cycle.

    Timing:

    * Issue, cycle ``t``: while a column is loaded, entry ``cur`` is read
      (``issue`` is high; this is the cycle the PE counts as busy).
    * The next column is loaded in the cycle the current one issues its last
      entry, so consecutive columns follow with no bubble; a column offered
      while the reader is idle is issued one cycle later.
    * ``t + 1``: the word leaves the block RAM into a register (nothing else
      on that path: a block RAM's clock-to-out is slow; `Config.short_pipeline`
      leaves this register out).
    * Out, cycle ``t + 2`` (``t + latency``; ``t + 1`` with
      `short_pipeline`): `entry` carries the decoded `(run, code)` with its
      activation value and a `first` flag (first entry of a column). There
      is no backpressure: the arithmetic unit takes one per cycle.
    """

    @staticmethod
    def latency(config) -> int:
        """An entry issued in ``t`` is on `entry` in ``t + latency``."""
        return 2 - config.short_pipeline

    def __init__(self, widths: Widths, *, init=()):
        c = widths.config
        self._widths = widths
        self.memory = spec_memory(c, "entries", init)
        self.image_memories = {"entries": self.memory}
        super().__init__({
            "col": In(stream.Signature(column_layout(widths))),
            "entry": Out(entry_layout(widths)),
            "entry_valid": Out(1),
            "issue": Out(1),
            "busy": Out(1),
            "issue_entry": Out(widths.pointer),    # the entry issued while `issue` (for checkers; unused in the design)
            "host": Out(memory.WritePort.Signature(addr_width=widths.word_addr, shape=unsigned(c.word_bits))),
            # a host access (while idle): the address register takes `host.addr` a cycle later (a write
            # lands then, with `host.en`); a read's word is on `host_word` two cycles after that (one with `short_pipeline`)
            "host_access": In(1), "host_word": Out(c.word_bits),
        })

    def elaborate(self, platform):
        w, c = self._widths, self._widths.config
        m = Module()
        add_parts(m, self)
        # one address for the reads and the host's writes (which come only
        # while the PE is idle): a single read-write port, which is what a
        # single-port RAM such as the iCE40 UP5K's SPRAM offers. The address
        # is a register with no logic behind it (`cur`'s word bits, which take
        # the host's address during its accesses): a multiplexer there, far
        # from the block RAM, set the ECP5's Fmax at 64 PEs
        wr = self.memory.write_port()
        rd = self.memory.read_port(transparent_for=(wr,))
        addr = Signal(w.word_addr)
        m.d.comb += [wr.addr.eq(addr), wr.data.eq(self.host.data), wr.en.eq(self.host.en),
                     rd.addr.eq(addr), rd.en.eq(~self.host.en)]

        # data registers need no soft reset (only the valid bits do): fewer
        # loads on the reset net
        cur = Signal(w.pointer, reset_less=True)
        rest = Signal(w.row, reset_less=True)      # entries of the column after the one issued now
        value = Signal(signed(w.act), reset_less=True)
        first = Signal(reset_less=True)
        valid = Signal()

        last = Signal(reset_less=True)        # registered: the entry issued now ends its column
        load = ~valid | last
        m.d.comb += [
            self.col.ready.eq(load),
            self.issue.eq(valid),
            self.issue_entry.eq(cur),
            addr.eq(cur >> w.lane),
        ]
        with m.If(load):
            m.d.sync += [
                valid.eq(self.col.valid),
                cur.eq(self.col.payload.start),
                rest.eq(self.col.payload.rest),
                value.eq(self.col.payload.value),
                first.eq(1),
                last.eq(self.col.payload.single),
            ]
        with m.Else():
            m.d.sync += [cur.eq(cur + 1), rest.eq(rest - 1), first.eq(0), last.eq(rest == 1)]
        with m.If(self.host_access):            # the PE is idle: nothing else needs `cur`
            m.d.sync += cur.eq(self.host.addr << w.lane)

        # the word arrives one cycle after the read and is registered; the
        # entry's other fields travel beside it
        if c.short_pipeline:
            word = read_data(m, rd, wr)
        else:
            word = Signal(c.word_bits, reset_less=True)
            m.d.sync += word.eq(read_data(m, rd, wr))
        m.d.comb += self.host_word.eq(word)
        latency = self.latency(c)
        valids = delay_line(m, valid, latency, "valid")
        lane = delay_line(m, cur[:w.lane] if w.lane else C(0, 1), latency, "lane", data=True)[-1]
        out_value = delay_line(m, value, latency, "value", data=True)[-1].as_signed()
        out_first = delay_line(m, first, latency, "first", data=True)[-1]
        entry = Signal(c.entry_bits)
        m.d.comb += [
            entry.eq(word.word_select(lane, c.entry_bits) if w.lane else word),
            self.entry.run.eq(entry[:c.run_bits]),
            self.entry.code.eq(entry[c.run_bits:]),
            self.entry.value.eq(out_value),
            self.entry.first.eq(out_first),
            self.entry_valid.eq(valids[-1]),
            self.busy.eq(valid | Cat(*valids).any()),
        ]
        return m

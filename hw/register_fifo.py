"""A FIFO in registers that behaves, cycle for cycle, as `lib.fifo.SyncFIFOBuffered`."""

from amaranth import *
from amaranth.lib import fifo

__all__ = ["RegisterFIFO", "column_fifo"]


class RegisterFIFO(Elaboratable, fifo.FIFOInterface):
    """`lib.fifo.SyncFIFOBuffered`'s interface and timing (a word written in
    ``t`` is on `r_data` from ``t + 2``; `level`, `w_rdy` and `r_rdy` as
    there), its storage a shift register rather than a memory: the oldest
    word in slot 0, a read shifting every slot down one, a write landing in
    the first free slot.

    For a few words on an iCE40: there a memory is an EBR (a whole one for
    every 16 bits of width, however shallow) or flip-flops with a read
    multiplexer behind them, while a shift register's slot bit is one logic
    cell, its multiplexer in the LUT in front of its flip-flop. The control
    is `SyncFIFOBuffered`'s, line for line, so the two cannot differ in a
    cycle (`tests/test_hw_blocks.py` runs them side by side).

    Like `SyncFIFOBuffered`, it takes `depth` words in every order of
    writes and reads only from a depth of 3: at 2, a word written in the
    cycle after the first one into an empty FIFO is refused (the one slot
    is full while the output register is still empty), so a writer that
    counts credits instead of looking at `w_rdy`, as the pointer reader
    does, needs 3 or more (`Config.column_fifo_depth`).
    """

    def __init__(self, *, width: int, depth: int):
        if depth < 2:
            raise ValueError(f"a RegisterFIFO holds at least 2 words, not {depth}")
        super().__init__(width=width, depth=depth)
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform):
        m = Module()
        inner_depth = self.depth - 1            # the slots; the word on r_data is the depth-th
        inner_level = Signal(range(inner_depth + 1))
        inner_r_rdy = Signal()
        m.d.comb += [
            self.w_rdy.eq(inner_level != inner_depth),
            inner_r_rdy.eq(inner_level != 0),
            self.w_level.eq(self.level), self.r_level.eq(self.level),
            self.level.eq(inner_level + self.r_rdy),
        ]
        do_write = self.w_rdy & self.w_en
        do_inner_read = inner_r_rdy & (~self.r_rdy | self.r_en)

        slots = [Signal(self.width, reset_less=True, name=f"slot{i}") for i in range(inner_depth)]
        tail = Signal(range(inner_depth + 1))   # where a write lands, after this cycle's shift
        m.d.comb += tail.eq(inner_level - do_inner_read)
        for i, slot in enumerate(slots):
            with m.If(do_write & (tail == i)):
                m.d.sync += slot.eq(self.w_data)
            if i + 1 < inner_depth:             # the last slot is only written: what a shift leaves there is unused
                with m.Elif(do_inner_read):
                    m.d.sync += slot.eq(slots[i + 1])

        with m.If(do_inner_read):
            m.d.sync += self.r_data.eq(slots[0])
        with m.If(do_write & ~do_inner_read):
            m.d.sync += inner_level.eq(inner_level + 1)
        with m.If(do_inner_read & ~do_write):
            m.d.sync += inner_level.eq(inner_level - 1)
        with m.If(do_inner_read):
            m.d.sync += self.r_rdy.eq(1)
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        return m


# a column FIFO this deep or shallower is built in registers (see `RegisterFIFO`);
# a deeper one in a memory (LUT RAM on an ECP5, where that is cheaper than registers)
REGISTER_FIFO_MAX_DEPTH = 4


def column_fifo(*, width: int, depth: int):
    """The FIFO for `depth` words of `width` bits: in registers when it is
    shallow, else `lib.fifo.SyncFIFOBuffered`; either way the same timing."""
    if depth <= REGISTER_FIFO_MAX_DEPTH:
        return RegisterFIFO(width=width, depth=depth)
    return fifo.SyncFIFOBuffered(width=width, depth=depth)

"""An 8N1 UART: a receiver and a transmitter, `divisor` clock cycles a bit.

Both are streams of bytes (`amaranth.lib.stream`). The receiver has no
flow control to offer the line: a byte it finishes while `o.ready` is low
is lost and `overrun` pulses (the bridge behind it reports that to the host).
"""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx"]


def _check_divisor(divisor: int) -> int:
    if divisor < 4:
        raise ValueError(f"a UART needs at least 4 clock cycles a bit, got divisor {divisor}")
    return divisor


class UartRx(wiring.Component):
    """Samples each bit in its middle. Timing: a byte's stop bit is sampled
    ``9.5 * divisor`` cycles after its start bit's falling edge (plus the
    two-register synchroniser); `o.valid` rises the cycle after. A stop bit
    that is not high drops the byte and pulses `framing_error`."""

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    overrun: Out(1)
    framing_error: Out(1)

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(d))
        bit = Signal(range(10))
        shift = Signal(8)
        m.d.sync += [self.overrun.eq(0), self.framing_error.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += [timer.eq(d // 2), bit.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 0):
                        with m.If(rx):                 # a glitch, not a start bit
                            m.next = "IDLE"
                    with m.Elif(bit <= 8):
                        m.d.sync += shift.eq(Cat(shift[1:], rx))
                    with m.Else():
                        with m.If(~rx):
                            m.d.sync += self.framing_error.eq(1)
                        with m.Elif(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "STOP"
            with m.State("STOP"):
                # wait for the line to be high again (a framing error may
                # leave it low) before looking for the next start bit
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """Sends each byte of `i` as start bit, eight data bits (LSB first) and
    one stop bit; takes the next byte as the stop bit ends."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        left = Signal(range(11))
        shift = Signal(10, init=1)
        m.d.comb += [self.tx.eq(shift[0]), self.i.ready.eq(left == 0)]
        with m.If(left == 0):
            with m.If(self.i.valid):
                m.d.sync += [shift.eq(Cat(C(0, 1), self.i.payload, C(1, 1))), left.eq(10), timer.eq(d - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shift.eq(Cat(shift[1:], C(1, 1))), left.eq(left - 1), timer.eq(d - 1)]
        return m

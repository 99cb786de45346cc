"""What a board runs: the accelerator behind a UART bridge.

`BoardTop` has nothing board-specific (the simulation drives its pins);
`BoardDesign` puts it on an amaranth-boards platform (`BOARDS`): the UART
of the board's USB serial port, the board's oscillator as the clock, and
three LEDs (busy, done, error).
"""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from sw.config import Config

from .accelerator import Accelerator, HardwareError
from .uart_bridge import UartBridge

__all__ = ["BoardTop", "BoardDesign", "Board", "BOARDS", "board", "divisor_for"]

DEFAULT_BAUD = 1_000_000        # an exact divisor of both boards' oscillators; FTDI parts take it
FRAME_TIMEOUT_S = 0.25          # a stalled request is abandoned after this (USB serial adapters pause for ms)


def divisor_for(clk_hz: float, baud: int) -> int:
    """Clock cycles a bit; refuses a rate more than 2% off what `clk_hz` gives."""
    divisor = round(clk_hz / baud)
    if divisor < 4 or abs(clk_hz / divisor - baud) > 0.02 * baud:
        raise HardwareError(f"{baud} baud cannot be made from a {clk_hz / 1e6:g} MHz clock "
                            f"(nearest: {clk_hz / max(divisor, 1):.0f} baud)")
    return divisor


class BoardTop(wiring.Component):
    """The accelerator, its UART bridge and LEDs (``leds``: bit 0 busy,
    bit 1 done, bit 2 error). `divisor`: clock cycles a UART bit;
    `timeout`: clock cycles a request may stall (`sw.link`)."""

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(3)

    def __init__(self, config: Config, image=None, *, divisor: int, timeout: int):
        self.accelerator = Accelerator(config, image)
        self.bridge = UartBridge(addr_width=self.accelerator.map.addr_width, act_bits=config.act_bits,
                                 output_layout=self.accelerator.o.payload.shape(), divisor=divisor,
                                 timeout=timeout)
        self.config, self.divisor, self.timeout = config, divisor, timeout
        super().__init__()

    def memory_locations(self) -> dict[str, list[tuple[str, str]]]:
        return {name: [(f"acc.{module}", memory) for module, memory in copies]
                for name, copies in self.accelerator.memory_locations().items()}

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = acc = self.accelerator
        m.submodules.bridge = bridge = self.bridge
        wiring.connect(m, bridge.bus, acc.bus)
        wiring.connect(m, bridge.i, acc.i)
        wiring.connect(m, acc.o, bridge.o)
        m.d.comb += [bridge.rx.eq(self.uart_rx), self.uart_tx.eq(bridge.tx)]
        m.d.sync += self.leds.eq(Cat(acc.busy, acc.irq, acc.error))
        return m


@dataclass(frozen=True)
class Board:
    name: str
    target: str             # `synth.targets` name
    platform: str           # amaranth_boards module and class
    leds: tuple             # (resource, number) for busy, done, error
    n_pe: int               # PEs of the board's default build (the preset's memories per PE)
    extras: str | None = None   # the platform's attribute listing resources to add (a snap-off board)


BOARDS = {
    "ulx3s": Board("ulx3s", "ecp5", "ulx3s.ULX3S_85F_Platform", (("led", 0), ("led", 1), ("led", 2)), n_pe=16),
    # LEDs: 2 on the board (red, green) and busy on the PMOD LED board that comes with it;
    # 1 PE: with the UART bridge, 2 PEs need 5,617 of the 5,280 logic cells
    "icebreaker": Board("icebreaker", "ice40", "icebreaker.ICEBreakerPlatform",
                        (("led", 2), ("led_g", 0), ("led_r", 0)), n_pe=1, extras="break_off_pmod"),
}


def board(name: str) -> Board:
    if name not in BOARDS:
        raise ValueError(f"unknown board {name!r}; boards: {', '.join(BOARDS)}")
    return BOARDS[name]


def platform_for(b: Board):
    import importlib
    module, cls = b.platform.split(".")
    platform = getattr(importlib.import_module(f"amaranth_boards.{module}"), cls)()
    if b.extras:
        platform.add_resources(getattr(platform, b.extras))
    return platform


class BoardDesign(Elaboratable):
    """`BoardTop` on board `b`'s platform, clocked by its oscillator."""

    def __init__(self, b: Board, config: Config, image=None, *, baud: int = DEFAULT_BAUD):
        self.board = b
        self.platform = platform_for(b)
        clk_hz = self.platform.default_clk_frequency
        self.clk_hz, self.baud = clk_hz, baud
        self.top = BoardTop(config, image, divisor=divisor_for(clk_hz, baud), timeout=int(clk_hz * FRAME_TIMEOUT_S))

    def memory_locations(self):
        return {name: [(f"top.{module}", memory) for module, memory in copies]
                for name, copies in self.top.memory_locations().items()}

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self.top
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [top.uart_rx.eq(rx.i), tx.o.eq(top.uart_tx)]
        for bit, (resource, number) in enumerate(self.board.leds):
            m.submodules[f"led_{bit}"] = led = io.Buffer("o", platform.request(resource, number, dir="-"))
            m.d.comb += led.o.eq(top.leds[bit])
        return m

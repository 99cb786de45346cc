"""What a board runs: the accelerator behind a UART bridge.

`BoardTop` has nothing board-specific (the simulation drives its pins);
`BoardDesign` puts it on an amaranth-boards platform (`BOARDS`): the UART
of the board's USB serial port, the board's oscillator as the clock, and
three LEDs (busy, done, error).
"""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer
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
        if config.input_width != 1:
            raise HardwareError(f"the UART bridge feeds the input stream one value per beat; this configuration "
                                f"has input_width {config.input_width} (use 1 on a board)")
        self.accelerator = Accelerator(config, image)
        self.bridge = UartBridge(addr_width=self.accelerator.map.addr_width, act_bits=config.act_bits,
                                 input_layout=self.accelerator.i.payload.shape(),
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
    preset: str             # `sw.config.PRESETS` name: the configuration the board's default build uses
    n_pe: int               # PEs of the board's default build (the preset's memories per PE)
    pll_mhz: float          # the design's clock, from the oscillator through the part's PLL
    pll: dict               # the PLL's parameters for it (from `ecppll` / `icepll`, both in the YoWASP packages)
    extras: str | None = None   # the platform's attribute listing resources to add (a snap-off board)


BOARDS = {
    # 25 -> 50 MHz (`yowasp-ecppll -i 25 -o 50`: VCO 600 MHz); 16 PEs route at 88 MHz here
    "ulx3s": Board("ulx3s", "ecp5", "ulx3s.ULX3S_85F_Platform", (("led", 0), ("led", 1), ("led", 2)),
                   preset="ecp5-85f", n_pe=16,
                   pll_mhz=50.0, pll=dict(CLKI_DIV=1, CLKFB_DIV=2, CLKOP_DIV=12, CLKOP_CPHASE=5, CLKOP_FPHASE=0)),
    # LEDs: 2 on the board (red, green) and busy on the PMOD LED board that comes with it;
    # its own preset (2 PEs with 24-bit accumulators, the exit test and busy logs: the
    # UART bridge leaves no room for the ice40-up5k preset's 4 PEs)
    # 12 -> 24 MHz (`yowasp-icepll -i 12 -o 24`: VCO 768 MHz)
    "icebreaker": Board("icebreaker", "ice40", "icebreaker.ICEBreakerPlatform",
                        (("led", 2), ("led_g", 0), ("led_r", 0)), preset="icebreaker", n_pe=2,
                        extras="break_off_pmod",
                        pll_mhz=24.0, pll=dict(DIVR=0, DIVF=63, DIVQ=5, FILTER_RANGE=1)),
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
    """`BoardTop` on board `b`'s platform, clocked by its oscillator
    through the part's PLL (`Board.pll_mhz`); held in reset until the PLL
    locks."""

    def __init__(self, b: Board, config: Config, image=None, *, baud: int = DEFAULT_BAUD):
        self.board = b
        self.platform = platform_for(b)
        clk_hz = b.pll_mhz * 1e6
        self.clk_hz, self.baud = clk_hz, baud
        self.top = BoardTop(config, image, divisor=divisor_for(clk_hz, baud), timeout=int(clk_hz * FRAME_TIMEOUT_S))

    def memory_locations(self):
        return {name: [(f"top.{module}", memory) for module, memory in copies]
                for name, copies in self.top.memory_locations().items()}

    def elaborate(self, platform):
        m = Module()
        m.submodules.top = top = self.top
        self._clock(m, platform)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [top.uart_rx.eq(rx.i), tx.o.eq(top.uart_tx)]
        for bit, (resource, number) in enumerate(self.board.leds):
            m.submodules[f"led_{bit}"] = led = io.Buffer("o", platform.request(resource, number, dir="-"))
            m.d.comb += led.o.eq(top.leds[bit])
        return m

    def _clock(self, m: Module, platform):
        b = self.board
        m.domains.sync = cd = ClockDomain("sync")
        locked = Signal()
        pin = platform.request(platform.default_clk, dir="-")
        osc_mhz = platform.default_clk_frequency / 1e6
        if b.target == "ecp5":
            m.submodules.osc = osc = io.Buffer("i", pin)
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{osc_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{b.pll_mhz:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
                p_FEEDBK_PATH="CLKOP", **{f"p_{k}": v for k, v in b.pll.items()},
                i_RST=0, i_STDBY=0, i_CLKI=osc.i, o_CLKOP=cd.clk, i_CLKFB=cd.clk, i_PHASESEL0=0, i_PHASESEL1=0,
                i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
        else:
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", **{f"p_{k}": v for k, v in b.pll.items()},
                io_PACKAGEPIN=pin.io, i_RESETB=1, i_BYPASS=0, o_PLLOUTGLOBAL=cd.clk, o_LOCK=locked)
        # (nextpnr derives the PLL output's clock constraint from the oscillator's)
        m.submodules.reset = ResetSynchronizer(~locked, domain="sync")

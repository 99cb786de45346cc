"""Every case `make fuzz` saved under tests/regressions/ (a shrunk failure:
an image and the vector that disagreed), replayed on the RTL: outputs
against the golden model, counters against the cycle model."""

from pathlib import Path

import numpy as np
import pytest

import sim
import sw
from sim import fuzz

CASES = sorted(p for p in (Path(__file__).parent / "regressions").iterdir() if (p / "x.npy").is_file())


@pytest.mark.skipif(not CASES, reason="no saved fuzz cases in tests/regressions/ (make fuzz found none)")
@pytest.mark.parametrize("case", CASES or [None], ids=[p.name for p in CASES] or ["none"])
def test_saved_fuzz_case(case):
    image = sw.Image.load(case / "image")
    x = np.load(case / "x.npy")
    wrong, late = fuzz.disagreements(image, x, sim.run(image, x, progress=None))
    assert not wrong.any(), "outputs differ from the golden model"
    assert not late.any(), "counters differ from the cycle model"

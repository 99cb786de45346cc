"""Models and inputs for tests (sw and sim share them): the random
generators of `sim.random_models`, and `padding_model`."""

from __future__ import annotations

import numpy as np

import sw
from sim.random_models import random_codes, random_inputs, random_layer, random_model  # noqa: F401


def padding_model(config: sw.Config, n_in=6, rows_per_pe=40):
    """Columns whose only nonzeros sit far apart, so encoding needs many
    padding entries, plus an all-empty column."""
    n_out = rows_per_pe * config.n_pe
    codes = np.zeros((n_out, n_in), dtype=np.int64)
    codes[n_out - 1, 0] = 1                     # one nonzero at the very bottom
    codes[0, 1] = 2
    codes[n_out - 1, 1] = 3                     # top and bottom only
    codes[::7, 2] = 4                           # evenly spaced
    # column 3 is empty
    codes[:, 4] = 5                             # full column: no gaps at all
    codes[(config.max_run + 1) * config.n_pe, 5] = 6   # exactly one run of R+1 zeros: one padding
    codes[codes != 0] = (codes[codes != 0] - 1) % (config.n_codes - 1) + 1    # small codebooks
    codebook = np.arange(config.n_codes) * 3 - 7
    codebook[0] = 0
    return sw.CompressedModel([sw.CompressedLayer(codes, codebook, None, False, 0, 0, 0)], 0)

"""EIE's nine benchmark layers (docs/design.md §8) as synthetic models.

EIE (Han et al., ISCA 2016) measured nine fully connected layers of
AlexNet, VGG-16 and NeuralTalk on 64 PEs at 800 MHz. Its matrices are not
published, so `layer` draws a matrix and input vectors of the same shape
and densities from fixed seeds: the same name and seed always give the
same model and inputs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .config import Config
from .model import CompressedLayer, CompressedModel

__all__ = ["EieLayer", "LAYERS", "layer", "synthetic", "config_for", "pack", "suite_config", "EIE_CLOCK_MHZ",
           "EIE_N_PE"]

EIE_CLOCK_MHZ = 800
EIE_N_PE = 64


@dataclass(frozen=True)
class EieLayer:
    """One of EIE's layers: shape, densities and EIE's published times
    (microseconds at 800 MHz on 64 PEs, theoretical and actual)."""
    name: str
    n_in: int
    n_out: int
    weight_density: float
    act_density: float
    eie_ideal_us: float
    eie_actual_us: float
    relu: bool

    @property
    def eie_cycles(self) -> int:
        """EIE's actual cycles: its microseconds times 800 MHz."""
        return round(self.eie_actual_us * EIE_CLOCK_MHZ)

    @property
    def eie_efficiency(self) -> float:
        """EIE's load-balance efficiency: theoretical over actual time."""
        return self.eie_ideal_us / self.eie_actual_us


# (name, n_in, n_out, weight density, activation density, EIE theoretical us, actual us)
# The AlexNet and VGG layers feed a ReLU; NeuralTalk's embedding and LSTM
# layers do not (their inputs are dense and signed).
LAYERS = tuple(EieLayer(*row) for row in (
    ("Alex-6", 9216, 4096, 0.09, 0.351, 28.1, 30.3, True),
    ("Alex-7", 4096, 4096, 0.09, 0.353, 11.7, 12.2, True),
    ("Alex-8", 4096, 1000, 0.25, 0.375, 8.9, 9.9, True),
    ("VGG-6", 25088, 4096, 0.04, 0.183, 28.1, 34.4, True),
    ("VGG-7", 4096, 4096, 0.04, 0.375, 7.9, 8.7, True),
    ("VGG-8", 4096, 1000, 0.23, 0.411, 7.3, 8.4, True),
    ("NT-We", 4096, 600, 0.10, 1.0, 5.2, 8.0, False),
    ("NT-Wd", 600, 8791, 0.11, 1.0, 13.0, 13.9, False),
    ("NT-LSTM", 1201, 2400, 0.10, 1.0, 6.5, 7.5, False),
))
_BY_NAME = {spec.name: spec for spec in LAYERS}


def config_for(shapes, n_pe: int = EIE_N_PE, **overrides) -> Config:
    """A configuration whose memories hold every layer of `shapes` (each an
    `EieLayer`, or ``(n_in, n_out, weight_density)``) at `n_pe` PEs with
    room for padding, the other parameters the defaults (or `overrides`)."""
    shapes = [(s.n_in, s.n_out, s.weight_density) if isinstance(s, EieLayer) else s for s in shapes]
    run_bits = overrides.get("run_bits", Config.run_bits)
    per_pe = max(n_in * n_out * d for n_in, n_out, d in shapes) / n_pe
    # padding: an entry per max_run zeros in a column at worst; 35% covers the
    # suite's sparsest layers at 4-bit runs, more for shorter runs
    room = 1.35 * max(1.0, 4 / run_bits)
    entries = per_pe * room + max(n_in for n_in, _, _ in shapes)
    epw = overrides.get("entries_per_word", Config.entries_per_word)
    weight_depth = max(epw, 1 << max(10, math.ceil(math.log2(entries))))
    pointer_depth = 1 << math.ceil(math.log2(max(n_in + 1 + 2 * math.ceil(n_out / n_pe) for n_in, n_out, _ in shapes)))
    row_depth = 1 << math.ceil(math.log2(max(math.ceil(n_out / n_pe) for _, n_out, _ in shapes)))
    base = dict(n_pe=n_pe, weight_depth=weight_depth, pointer_depth=pointer_depth, row_depth=row_depth)
    return Config(**{**base, **overrides})


def pack(model: CompressedModel, n_pe: int = EIE_N_PE, *, balance: bool = False, **overrides):
    """`model` packed for `n_pe` PEs in a `config_for` its shape (`balance`
    as `sw.pack`'s), the sparse matrix memory doubled (up to `Config`'s
    limit) while the padding does not fit."""
    from .pack import PackError, pack as pack_
    shapes = [(l.codes.shape[1], l.codes.shape[0], l.codes.nnz / max(1, np.prod(l.codes.shape)))
              for l in model.layers]
    config = config_for(shapes, n_pe, **overrides)
    while True:
        try:
            return pack_(model, config, balance=balance)
        except PackError:
            if "weight_depth" in overrides or config.weight_depth >= Config._RANGES["weight_depth"][1]:
                raise
            config = dataclasses.replace(config, weight_depth=2 * config.weight_depth)


# The suite's queue depth and run width (`make bench-eie` sweeps both with
# the cycle model): at 64 PEs the queues keep 6 pairs of slack for the
# registered flow control, so fifo_depth 8 leaves EIE's 8 only 2; 64 leaves
# 58 and stops the broadcast stalling on bursts. 5-bit runs cut the padding
# entries of the 4%- and 9%-dense layers (16% to 36% of their entries with
# 4-bit runs) at one more bit per entry.
# Layer 0's zeros (VGG-6 has 25,088 inputs, 18% nonzero) are skipped four
# a beat, so a sparse input costs about a cycle per nonzero, not per value.
# NT-We (4,096 dense inputs, 600 rows: under one entry per PE a column)
# needs more than one activation a cycle: the broadcast sends two.
SUITE_FIFO_DEPTH = 64
SUITE_RUN_BITS = 5
SUITE_INPUT_WIDTH = 4
SUITE_BROADCAST_WIDTH = 2


def suite_config(n_pe: int = EIE_N_PE, **overrides) -> Config:
    """One configuration that holds every layer of the suite at `n_pe` PEs
    (so that one simulator build runs all nine), with the suite's queue
    depth, run width, input width and broadcast width unless `overrides` say
    otherwise."""
    return config_for(LAYERS, n_pe, **{"fifo_depth": SUITE_FIFO_DEPTH, "run_bits": SUITE_RUN_BITS,
                                       "input_width": SUITE_INPUT_WIDTH, "broadcast_width": SUITE_BROADCAST_WIDTH,
                                       **overrides})


def synthetic(n_in: int, n_out: int, weight_density: float, act_density: float, *, relu: bool = True,
              vectors: int = 1, seed=0) -> tuple[CompressedModel, np.ndarray]:
    """A one-layer model of that shape and weight density (16-bit
    activations, 4-bit codes) and `vectors` inputs at `act_density`.

    Nonzero weights are uniform over the matrix (``scipy.sparse.random``),
    codes uniform over 1..15, inputs uniform nonzero magnitudes below 2**10
    (non-negative with `relu`). Sums stay far inside the 32-bit accumulator."""
    rng = np.random.default_rng(seed)
    codes = sp.random(n_out, n_in, density=weight_density, format="csr", random_state=rng,
                      data_rvs=lambda k: rng.integers(1, 16, k)).astype(np.uint8)
    codebook = np.concatenate([[0], rng.integers(-2048, 2048, 15)])
    bias = rng.integers(-4096, 4096, n_out)
    model = CompressedModel([CompressedLayer(codes, codebook, bias, relu, fa=8, fw=12, fo=8)], 8)
    x = rng.integers(1 if relu else -1023, 1024, size=(vectors, n_in))
    x[x == 0] = 1
    x[rng.random(x.shape) >= act_density] = 0
    return model, x.astype(np.int16)


def layer(name: str, vectors: int = 1, seed: int = 0) -> tuple[CompressedModel, np.ndarray]:
    """EIE layer `name` as a `synthetic` model with `vectors` inputs (the
    NeuralTalk layers' inputs are signed, the others follow a ReLU)."""
    if name not in _BY_NAME:
        raise KeyError(f"no EIE layer {name!r}; the layers are {', '.join(_BY_NAME)}")
    spec = _BY_NAME[name]
    return synthetic(spec.n_in, spec.n_out, spec.weight_density, spec.act_density, relu=spec.relu,
                     vectors=vectors, seed=[seed, LAYERS.index(spec)])

"""Random compressed models and inputs, for the tests and `make fuzz`.

`random_model` draws the corner cases on purpose: columns with long zero runs
(padding), empty columns and rows, codebooks and biases reaching both ends of
their ranges (so accumulators wrap and outputs saturate both ways), and
formats with shift 0.
"""

from __future__ import annotations

import numpy as np

import sw
from sw.fixedpoint import signed_range

__all__ = ["random_codes", "random_layer", "random_model", "random_exit_model", "random_inputs"]


def random_codes(rng, n_out, n_in, density, n_codes, *, empty_cols=0.0, empty_rows=0.0):
    codes = rng.integers(1, n_codes, size=(n_out, n_in))
    codes[rng.random((n_out, n_in)) >= density] = 0
    codes[:, rng.random(n_in) < empty_cols] = 0
    codes[rng.random(n_out) < empty_rows, :] = 0
    return codes


def random_layer(rng, n_in, n_out, config: sw.Config, *, fa, density=None, extreme=False, relu=None):
    density = rng.uniform(0.02, 0.9) if density is None else density
    codes = random_codes(rng, n_out, n_in, density, config.n_codes,
                         empty_cols=rng.uniform(0, 0.3), empty_rows=rng.uniform(0, 0.3))
    wlo, whi = signed_range(config.weight_bits)
    alo, ahi = signed_range(config.acc_bits)
    if extreme:
        codebook = rng.choice([wlo, whi, wlo + 1, whi - 1, 1, -1], size=config.n_codes)
        bias = rng.choice([alo, ahi, 0, alo // 2, ahi // 2], size=n_out)
    else:
        scale = 2 ** (config.weight_bits - 4)
        codebook = rng.integers(-scale, scale, size=config.n_codes)
        bias = rng.integers(-(1 << 12), 1 << 12, size=n_out)
    codebook[0] = 0
    fw = int(rng.integers(0, 12))
    shift = int(rng.choice([0, 1, 2, 7, 13, min(20, config.max_shift)]))
    shift = min(shift, fa + fw)
    relu = bool(rng.integers(0, 2)) if relu is None else relu
    return sw.CompressedLayer(codes, codebook, bias, relu, fa, fw, fa + fw - shift)


def random_model(rng, config: sw.Config, dims, *, extreme=False, density=None, relu=None):
    """`relu`: one bool per layer, or None for a random choice each."""
    fa = int(rng.integers(0, 12))
    layers = []
    relu = [None] * (len(dims) - 1) if relu is None else relu
    for n_in, n_out, r in zip(dims[:-1], dims[1:], relu):
        layers.append(random_layer(rng, n_in, n_out, config, fa=fa, extreme=extreme, density=density, relu=r))
        fa = layers[-1].fo
    return sw.CompressedModel(layers, layers[0].fa)


def random_exit_model(rng, config: sw.Config, trunk, heads, *, thresholds=None, extreme=False, density=None):
    """A trunk of `trunk` sizes (``[n_in, h1, ..., n_out]``) with exit heads:
    `heads` maps a trunk layer ``t`` (its outputs) to a head's hidden sizes
    (``[]``: one layer to ``n_out``). The table runs each head right after
    its trunk layer. `thresholds`: per head in order, an int (default: a
    random one, 0 to ``2**act_bits``)."""
    fa = int(rng.integers(0, 12))
    layers, index = [], {}
    n_heads = 0
    for t, (n_in, n_out) in enumerate(zip(trunk[:-1], trunk[1:])):
        layer = random_layer(rng, n_in, n_out, config, fa=fa, extreme=extreme, density=density)
        src = index[t - 1] if t else -1
        layers.append(_with(layer, src=None if src == len(layers) - 1 else src))
        index[t] = len(layers) - 1
        fa = layer.fo
        if t in heads and t < len(trunk) - 2:
            head_fa, src = fa, index[t]
            sizes = list(heads[t]) + [trunk[-1]]
            for j, h_out in enumerate(sizes):
                h_in = n_out if j == 0 else sizes[j - 1]
                head = random_layer(rng, h_in, h_out, config, fa=head_fa, extreme=extreme, density=density)
                threshold = None
                if j == len(sizes) - 1:
                    threshold = (int(rng.integers(0, (1 << config.act_bits) + 1)) if thresholds is None
                                 else int(thresholds[n_heads]))
                    n_heads += 1
                layers.append(_with(head, src=None if src == len(layers) - 1 else src, exit_threshold=threshold))
                src, head_fa = len(layers) - 1, head.fo
    return sw.CompressedModel(layers, layers[0].fa)


def _with(layer: sw.CompressedLayer, **changes) -> sw.CompressedLayer:
    args = {"src": layer.src, "exit_threshold": layer.exit_threshold, **changes}
    return sw.CompressedLayer(layer.codes, layer.codebook, layer.bias, layer.relu, layer.fa, layer.fw, layer.fo, **args)


def random_inputs(rng, n, n_in, act_bits, *, density=0.5, extreme=False):
    lo, hi = signed_range(act_bits)
    if extreme:
        x = rng.choice([lo, hi, lo + 1, hi - 1, -1, 1], size=(n, n_in))
    else:
        x = rng.integers(lo // 8, hi // 8, size=(n, n_in))
    x[rng.random((n, n_in)) >= density] = 0
    return x.astype(np.int64)

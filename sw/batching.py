"""Batching by replicated weights: several input vectors in one run.

A small model spends most of a run in fixed costs: each layer's pipeline
fills and drains, its descriptor is read, its rows are written back, and
the outputs stream out (about 30 cycles a layer and 26 for the output, at
16 PEs, against a few dozen cycles of work). `batched` builds the
block-diagonal model of ``n`` copies: layer ``l``'s weight is
``diag(W_l, ..., W_l)``, its bias ``[b_l, ..., b_l]``, so one run of the
accelerator computes ``n`` vectors side by side, stacked into one input
(`stack`) and split again afterwards (`unstack`). The fixed costs are paid
once per run instead of once per vector; each vector's outputs are bit for
bit those of the model run alone (the copies share no weight, and a zero
block stores nothing).

The price: the image holds ``n`` copies of every weight, pointer and bias
(``sw.pack`` refuses with its capacity error when they do not fit), a run's
latency grows (``n`` vectors finish together), and the first entry of a
column in a later copy may need padding to reach its rows (the copies'
rows follow one another in each PE). It pays for small layers only: where
the work dominates (EIE's benchmark layers), one vector a run is as fast.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .model import CompressedLayer, CompressedModel, ModelError

__all__ = ["batched", "stack", "unstack", "check_batch", "check_batched", "MAX_BATCH"]

MAX_BATCH = 256


def check_batch(n) -> int:
    """`n` as a batch size (1 .. MAX_BATCH), else a ValueError that says so."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, (bool, np.bool_)) or not 1 <= n <= MAX_BATCH:
        raise ValueError(f"batch must be a whole number in 1..{MAX_BATCH}, got {n!r}")
    return int(n)


def batched(model: CompressedModel, n: int) -> CompressedModel:
    """The model that runs `n` input vectors at once (block-diagonal
    copies of every layer); ``batched(model, 1)`` is `model` itself.
    Models with exit heads are refused: an exit test would weigh the
    copies' outputs together, and the copies' vectors may exit at
    different heads."""
    n = check_batch(n)
    if not isinstance(model, CompressedModel):
        raise TypeError(f"batched() takes a CompressedModel, got {type(model).__name__}")
    if n == 1:
        return model
    if model.exits:
        raise ModelError(f"layer {model.exits[0]} ends an exit head: a batch of {n} vectors cannot stop at a head "
                         f"for some of them and not the others (run exit-head models with batch 1)")
    layers = [CompressedLayer(sp.block_diag([layer.codes] * n, format="csr"), layer.codebook,
                              np.tile(layer.bias, n), layer.relu, layer.fa, layer.fw, layer.fo, src=layer.src)
              for layer in model.layers]
    return CompressedModel(layers, model.input_frac_bits)


def check_batched(image, n: int):
    """Refuse (ValueError, naming the layer) an image that is not `n`
    copies of one model side by side (`batched`): run as `n` vectors a
    run, its outputs would mix the vectors."""
    n = check_batch(n)
    if n == 1:
        return
    from .pack import unpack
    if image.n_in % n or image.n_out % n:
        raise ValueError(f"batch {n}: the image's {image.n_in} inputs and {image.n_out} outputs do not split into "
                         f"{n} copies (was it packed with python -m sw pack --batch {n}?)")
    for l, layer in enumerate(unpack(image).layers):
        rows, cols = layer.n_out // n, layer.n_in // n
        first = layer.codes[:rows, :cols]
        if (layer.n_out % n or layer.n_in % n
                or (sp.block_diag([first] * n, format="csr") != layer.codes).nnz
                or not np.array_equal(layer.bias, np.tile(layer.bias[:rows], n))):
            raise ValueError(f"batch {n}: layer {l} is not {n} copies of one layer side by side (was the image "
                             f"packed with python -m sw pack --batch {n}?)")


def stack(x: np.ndarray, n: int) -> np.ndarray:
    """Input vectors ``(V, n_in)`` as ``ceil(V / n)`` runs of a model
    batched `n` times, ``(runs, n * n_in)``: vector ``v`` is copy ``v % n``
    of run ``v // n``; a last run that is not full is filled with zero
    vectors (whose outputs `unstack` drops)."""
    n = check_batch(n)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"stack() takes input vectors (V, n_in) with V >= 1, got shape {x.shape}")
    runs = -(-x.shape[0] // n)
    padded = np.zeros((runs * n, x.shape[1]), dtype=x.dtype)
    padded[:x.shape[0]] = x
    return padded.reshape(runs, n * x.shape[1])


def unstack(y: np.ndarray, n: int, vectors: int | None = None) -> np.ndarray:
    """Outputs of `stack`ed runs ``(runs, n * n_out)`` back as one row per
    input vector, ``(vectors, n_out)`` (default: every copy, the filling
    included)."""
    n = check_batch(n)
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] % n:
        raise ValueError(f"unstack(): outputs of shape {y.shape} do not split into {n} copies")
    rows = y.reshape(y.shape[0] * n, y.shape[1] // n)
    if vectors is None:
        return rows
    if not 0 <= vectors <= rows.shape[0]:
        raise ValueError(f"unstack(): {vectors} vectors asked for, the runs hold {rows.shape[0]}")
    return rows[:vectors]

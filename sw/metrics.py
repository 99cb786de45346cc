"""The metrics of docs/design.md §8, computed from an image and inputs.

For one layer and one input vector, ``work_k`` is the number of entries
(padding included) PE ``k`` processes: the sum over nonzero ``a_j`` of column
``j``'s entry count in PE ``k``. ``T_ideal = ceil(sum_k work_k / n_pe)``;
``efficiency = T_ideal / T_measured``.
"""

from __future__ import annotations

import numpy as np

from .golden import check_input, layers_run, run_layers
from .image import Image

__all__ = ["layer_inputs", "work", "ideal_cycles", "efficiency", "useful_macs"]


def layer_inputs(image: Image, x, ys: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """Each layer's input vectors, ``(B, n_in)`` int64, as the golden model
    computes them (in the hardware's order; `ys`: `golden.run_layers`'s
    outputs, if already at hand, else the last layer is not run). An exit
    head's first layer reads the trunk layer it branches off. Every layer's,
    even those an exit skips."""
    x = check_input(image, x)
    ys = run_layers(image, x, len(image.layers) - 1) if ys is None else ys
    return [x if layer.src == -1 else ys[layer.src] for layer in image.layers]


def work(image: Image, x, inputs: list[np.ndarray] | None = None, exits=None) -> np.ndarray:
    """``work[b, l, k]``: entries PE ``k`` processes in layer ``l`` for input
    ``b`` (`inputs`: `layer_inputs`, if already at hand). With `exits` (per
    input, as `golden.exits_taken`), a layer the run skipped has none."""
    inputs = layer_inputs(image, x) if inputs is None else inputs
    out = np.zeros((inputs[0].shape[0], len(image.layers), image.config.n_pe), dtype=np.int64)
    for l, (layer, a) in enumerate(zip(image.layers, inputs)):
        out[:, l, :] = (a != 0).astype(np.int64) @ layer.column_counts.T
    if exits is not None:
        out[np.arange(len(image.layers))[None, :] >= layers_run(image, exits)[:, None]] = 0
    return out


def ideal_cycles(work_: np.ndarray, n_pe: int) -> np.ndarray:
    """``T_ideal`` for every input and layer, from `work` (sums over the last axis)."""
    return -(-work_.sum(axis=-1) // n_pe)


def efficiency(t_ideal: np.ndarray, t_measured: np.ndarray) -> np.ndarray:
    """``T_ideal / T_measured``; NaN where a layer had no work at all."""
    t_ideal = np.asarray(t_ideal, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t_ideal > 0, t_ideal / np.asarray(t_measured, dtype=np.float64), np.nan)


def useful_macs(image: Image, x) -> np.ndarray:
    """``macs[b, l]``: multiply-accumulates with a nonzero weight and a
    nonzero activation (padding excluded), for the throughput metric."""
    inputs = layer_inputs(image, x)
    out = np.zeros((inputs[0].shape[0], len(image.layers)), dtype=np.int64)
    for l, (layer, a) in enumerate(zip(image.layers, inputs)):
        out[:, l] = (a != 0).astype(np.int64) @ layer.nonzero_counts.sum(axis=0)
    return out

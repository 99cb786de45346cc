"""Low-rank layers: a dense layer factorised into two by truncated SVD, an
alternative (or a complement) to pruning that the engine runs as two
layers with no activation between them.

    layers = sw.factorize(layer, rank=32)        # [V (rank x n_in), U (n_out x rank) + bias]

``W ~= U_r diag(s_r) V_r^T``; each factor takes ``sqrt(s_r)``, so that both
have the same scale (their fixed-point formats then waste no bits on one of
them). `low_rank_error` and `pruning_error` give the relative Frobenius
error of either at a number of stored weights, for comparisons at the same
storage.
"""

from __future__ import annotations

import numpy as np

from .model import Layer, ModelError

__all__ = ["factorize", "low_rank_error", "pruning_error", "rank_for"]


def _svd(w: np.ndarray):
    return np.linalg.svd(np.asarray(w, dtype=np.float64), full_matrices=False)


def factorize(layer: Layer, rank: int) -> list[Layer]:
    """`layer` as two layers: ``V`` (``rank x n_in``, no bias, identity) then
    ``U`` (``n_out x rank``, the layer's bias and activation), the best
    rank-`rank` approximation of its weight (Eckart-Young)."""
    n_out, n_in = layer.n_out, layer.n_in
    if not isinstance(rank, (int, np.integer)) or not 1 <= rank <= min(n_out, n_in):
        raise ModelError(f"rank must be an integer in [1, {min(n_out, n_in)}] for a {n_in} -> {n_out} layer, "
                         f"got {rank!r}")
    u, s, vt = _svd(layer.dense())
    root = np.sqrt(s[:rank])
    return [Layer(root[:, None] * vt[:rank], None, relu=False),
            Layer(u[:, :rank] * root[None, :], layer.bias.copy(), relu=layer.relu)]


def rank_for(layer: Layer, weights: int) -> int:
    """The largest rank whose two factors hold at most `weights` values
    (at least 1)."""
    return max(1, min(min(layer.n_out, layer.n_in), int(weights) // (layer.n_in + layer.n_out)))


def low_rank_error(layer: Layer, rank: int) -> float:
    """``||W - W_rank|| / ||W||`` (Frobenius)."""
    s = _svd(layer.dense())[1]
    total = float(np.sum(s ** 2))
    return float(np.sqrt(np.sum(s[rank:] ** 2) / total)) if total else 0.0


def pruning_error(layer: Layer, weights: int) -> float:
    """The same error for magnitude pruning that keeps the `weights` largest."""
    w = np.abs(layer.dense()).reshape(-1)
    total = float(np.sum(w ** 2))
    if not total:
        return 0.0
    dropped = np.sort(w)[: max(0, w.size - int(weights))]
    return float(np.sqrt(np.sum(dropped ** 2) / total))

"""Training a lowered network in numpy, under Deep Compression's constraints
(as `sw.train` does for an MLP): Adam on softmax cross-entropy, pruning
masks that keep pruned weights at zero, or shared weights whose centroids
are trained (each centroid's gradient is the sum of its weights').

It trains the engine layers as the engine runs them (a convolution is its
lowered matrix on gathered patches, a grouped one keeps its block
structure), so what is trained is exactly what is compressed:

    lowered = sw.net.lower(network)
    lowered = train_network(lowered, x, y, epochs=4)
    masks = prune_masks(lowered, densities)
    lowered = train_network(lowered, x, y, epochs=2, masks=masks)
    codes, centroids = share(lowered, code_bits=4)
    lowered = train_network(lowered, x, y, epochs=1, shared=(codes, centroids))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from ..model import Layer, ModelError
from ..train import Trainable, _softmax, share as share_layers
from .lower import Engine, FlattenStep, Gather, Join, Lowered, Permute, Pool, Relu, copy_steps, engines, gather_indices, host

__all__ = ["train_network", "prune_masks", "share", "accuracy", "engine_layers"]


def engine_layers(lowered: Lowered) -> list[Layer]:
    """Every engine layer, depth first (the order masks and codes follow)."""
    return [l for e in engines(lowered.steps) for l in e.layers]


def _structures(lowered: Lowered) -> list:
    return [s for e in engines(lowered.steps) for s in e.structure]


def prune_masks(lowered: Lowered, densities) -> list[np.ndarray]:
    """Per engine layer, the ``round(d * weights)`` largest-magnitude weights
    it may have (within a grouped convolution's blocks); `densities` per
    weighted node (a number for all)."""
    layers = engine_layers(lowered)
    nodes = [n for e in engines(lowered.steps) for n in e.nodes]
    ds = list(densities) if np.ndim(densities) else [densities] * lowered.weighted
    if len(ds) != lowered.weighted:
        raise ModelError(f"{len(ds)} densities for {lowered.weighted} weighted nodes")
    masks = []
    for layer, structure, node in zip(layers, _structures(lowered), nodes):
        w = np.abs(layer.dense())
        allowed = np.ones(w.shape, dtype=bool) if structure is None else sp.csr_array(structure).toarray()
        keep = max(1, int(round(ds[node] * allowed.sum())))
        flat = np.where(allowed, w, -1.0).reshape(-1)
        mask = np.zeros(flat.size, dtype=bool)
        mask[np.argsort(-flat, kind="stable")[:keep]] = True
        masks.append(mask.reshape(w.shape))
    return masks


def share(lowered: Lowered, code_bits: int = 4):
    """Weight sharing per engine layer (`sw.train.share`)."""
    return share_layers(engine_layers(lowered), code_bits)


_SCATTER: dict = {}


def _scatter(in_shape, kernel, stride, padding):
    """The transpose of a gather, as a sparse matrix onto the padded input."""
    key = (tuple(in_shape), tuple(kernel), tuple(stride), tuple(padding))
    if key not in _SCATTER:
        idx = gather_indices(in_shape, kernel, stride, padding)
        h, w, c = in_shape
        size = (h + 2 * padding[0]) * (w + 2 * padding[1]) * c
        _SCATTER[key] = sp.csr_array((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(size, idx.size))
    return _SCATTER[key]


def _gather_back(g, in_shape, kernel, stride, padding):
    n = g.shape[0]
    h, w, c = in_shape
    (ph, pw) = padding
    full = (_scatter(in_shape, kernel, stride, padding) @ g.reshape(n, -1).T).T
    full = full.reshape(n, h + 2 * ph, w + 2 * pw, c)
    return full[:, ph:ph + h, pw:pw + w, :]


class _Net:
    """Forward with a tape, backward through it; parameters by engine layer."""

    def __init__(self, lowered: Lowered, weights, biases):
        self.lowered, self.w, self.b = lowered, weights, biases
        self.first = {}
        k = 0
        for e in engines(lowered.steps):
            self.first[id(e)] = k
            k += len(e.layers)

    def forward(self, steps, x, tape):
        for step in steps:
            if isinstance(step, Engine):
                n, k0 = x.shape[0], self.first[id(step)]
                v = x.reshape(-1, x.shape[3])
                rec = []
                for j, layer in enumerate(step.layers):
                    z = v @ self.w[k0 + j].T + self.b[k0 + j]
                    rec.append((v, z))
                    v = np.maximum(z, 0) if layer.relu else z
                tape.append(rec)
                x = v.reshape(n, step.out_shape[0], step.out_shape[1], -1)
            elif isinstance(step, Join):
                sub = [[] for _ in step.branches]
                outs = [self.forward(b, x, t) for b, t in zip(step.branches, sub)]
                tape.append((sub, [o.shape[3] for o in outs]))
                x = np.concatenate(outs, axis=3)
            elif isinstance(step, Pool):
                kh, kw = step.kernel
                win = host(Gather(step.in_shape, None, step.kernel, step.stride, step.padding), x, False)
                if step.mode == "max" and any(step.padding):
                    raise ModelError("training through a padded max pool is not supported")
                win = win.reshape(*win.shape[:3], kh * kw, x.shape[3])
                if step.mode == "max":
                    arg = win.argmax(axis=3)
                    tape.append(arg)
                    x = np.take_along_axis(win, arg[:, :, :, None], axis=3)[:, :, :, 0]
                else:
                    tape.append(None)
                    x = win.mean(axis=3)
            elif isinstance(step, Relu):
                tape.append(x > 0)
                x = np.maximum(x, 0)
            else:
                tape.append(None)
                x = host(step, x, False)
        return x

    def backward(self, steps, tape, g, gw, gb):
        for step, rec in zip(reversed(steps), reversed(tape)):
            if isinstance(step, Engine):
                n, k0 = g.shape[0], self.first[id(step)]
                d = g.reshape(-1, g.shape[3])
                for j in reversed(range(len(step.layers))):
                    v, z = rec[j]
                    if step.layers[j].relu:
                        d = d * (z > 0)
                    gw[k0 + j] += d.T @ v
                    gb[k0 + j] += d.sum(axis=0)
                    d = d @ self.w[k0 + j]
                h, w_, c = step.in_shape
                g = d.reshape(n, h, w_, c)
            elif isinstance(step, Join):
                sub, widths = rec
                parts = np.split(g, np.cumsum(widths)[:-1], axis=3)
                g = sum(self.backward(b, t, p, gw, gb) for b, t, p in zip(step.branches, sub, parts))
            elif isinstance(step, Gather):
                g = _gather_back(g, step.in_shape, step.kernel, step.stride, step.padding)
            elif isinstance(step, Pool):
                kh, kw = step.kernel
                n, ho, wo, c = g.shape
                if step.mode == "max":
                    win = np.zeros((n, ho, wo, kh * kw, c))
                    np.put_along_axis(win, rec[:, :, :, None], g[:, :, :, None], axis=3)
                else:
                    win = np.broadcast_to(g[:, :, :, None, :] / (kh * kw), (n, ho, wo, kh * kw, c))
                g = _gather_back(np.ascontiguousarray(win).reshape(n, ho, wo, -1), step.in_shape, step.kernel,
                                 step.stride, step.padding)
            elif isinstance(step, FlattenStep):
                h, w_, c = step.in_shape
                g = g.reshape(g.shape[0], c, h, w_).transpose(0, 2, 3, 1)
            elif isinstance(step, Permute):
                out = np.empty_like(g)
                out[..., step.perm] = g
                g = out
            elif isinstance(step, Relu):
                g = g * rec
        return g


def accuracy(lowered: Lowered, x, y) -> float:
    """The fraction of images `x` whose largest output is their label."""
    out = lowered.forward(x)
    return float(np.mean(out.reshape(out.shape[0], -1).argmax(axis=1) == np.asarray(y)))


def train_network(lowered: Lowered, x, y, *, epochs: int, lr: float = 1e-3, batch: int = 64, masks=None,
                  shared=None, seed: int = 0, progress: Callable[[str], None] | None = None) -> Lowered:
    """Train `lowered` (its last step's outputs are the logits) on float
    images `x` ``(N, H, W, C)`` and integer labels `y`; `masks` and `shared`
    as `sw.train.train`'s, per engine layer. Returns a new `Lowered`."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 4 or x.shape[1:] != tuple(lowered.input_shape) or y.shape != (x.shape[0],):
        raise ModelError(f"train_network takes x (N, {', '.join(map(str, lowered.input_shape))}) and y (N,), "
                         f"got {x.shape} and {y.shape}")
    if masks is not None and shared is not None:
        raise ModelError("give masks or shared, not both (shared codes already carry the pruning)")
    layers = engine_layers(lowered)
    structures = _structures(lowered)
    weights = [l.dense().astype(np.float64).copy() for l in layers]
    biases = [l.bias.astype(np.float64).copy() for l in layers]
    # a grouped convolution keeps its blocks: outside them a weight stays zero
    keep = [None if s is None else sp.csr_array(s).toarray() for s in structures]
    if masks is not None:
        keep = [np.asarray(m, dtype=bool) if k is None else (np.asarray(m, dtype=bool) & k)
                for m, k in zip(masks, keep)]
    for w, k in zip(weights, keep):
        if k is not None:
            w *= k
    params = Trainable(weights, biases, keep, shared, lr)
    net = _Net(lowered, weights, biases)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(x.shape[0])
        total = 0.0
        for start in range(0, x.shape[0], batch):
            idx = order[start:start + batch]
            tape = []
            logits = net.forward(lowered.steps, x[idx], tape)
            shape = logits.shape
            p = _softmax(logits.reshape(idx.size, -1))
            total += -np.sum(np.log(p[np.arange(idx.size), y[idx]] + 1e-12))
            p[np.arange(idx.size), y[idx]] -= 1
            gw = [np.zeros_like(w) for w in weights]
            gb = [np.zeros_like(b) for b in biases]
            net.backward(lowered.steps, tape, (p / idx.size).reshape(shape), gw, gb)
            params.step(gw, gb)
        if progress:
            progress(f"epoch {epoch + 1}/{epochs}: loss {total / x.shape[0]:.4f}")
    new = iter(Layer(w, b, relu=l.relu) for w, b, l in zip(weights, biases, layers))
    steps = copy_steps(lowered.steps)
    for e in engines(steps):
        e.layers = [next(new) for _ in e.layers]
    return Lowered(lowered.input_shape, lowered.output_shape, steps, lowered.weighted)

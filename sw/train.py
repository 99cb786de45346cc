"""Training for the compression flow, in numpy (no framework needed): a ReLU
MLP (`sw.Layer`s, the last one's outputs are the logits) trained with Adam
on softmax cross-entropy, under the two constraints Deep Compression
retrains with:

* pruning masks: a pruned weight stays exactly zero (its gradient is
  dropped);
* weight sharing: weights with the same code share one value, and that
  value's gradient is the sum of theirs (Han et al., 2016, section 3.3).

Optionally with knowledge distillation (Hinton et al., 2015): the loss
blends the labels' cross-entropy with the cross-entropy against a float
teacher's outputs softened at a temperature.

    masks = prune_masks(layers, [0.08, 0.09, 0.26])
    layers = train(layers, x, y, epochs=4, masks=masks)
    codes, centroids = share(layers, code_bits=4)
    layers = train(layers, x, y, epochs=2, shared=(codes, centroids))

Ternary weights (code_bits 2, codebook ``{0, -a, +a}``): ``train(...,
masks=masks, ternary=True)`` trains latent float weights through their
ternary image with a straight-through estimator (BinaryConnect; the scale
``a`` per layer is the mean magnitude of the kept weights, as in BWN and
TWN), and `prune_neurons` removes the neurons and inputs that carry nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .compress import forward, share_weights
from .model import Layer, ModelError

__all__ = ["train", "prune_masks", "prune_neurons", "NeuronPruning", "share", "ternarize", "accuracy",
           "loss_and_grads"]


def accuracy(layers: Sequence[Layer], x, y) -> float:
    """The fraction of `x` whose largest output is its label."""
    return float(np.mean(forward(layers, x).argmax(axis=1) == np.asarray(y)))


def prune_masks(layers: Sequence[Layer], densities) -> list[np.ndarray]:
    """Per layer, the ``round(density * size)`` largest-magnitude weights
    (boolean ``n_out x n_in``)."""
    densities = list(densities) if np.ndim(densities) else [densities] * len(layers)
    if len(densities) != len(layers):
        raise ModelError(f"{len(densities)} densities for {len(layers)} layers")
    masks = []
    for i, (layer, d) in enumerate(zip(layers, densities)):
        if not 0 < d <= 1:
            raise ModelError(f"layer {i}: density must be in (0, 1], got {d!r}")
        w = np.abs(layer.dense()).reshape(-1)
        keep = max(1, int(round(d * w.size)))
        mask = np.zeros(w.size, dtype=bool)
        mask[np.argsort(-w, kind="stable")[:keep]] = True
        masks.append(mask.reshape(layer.dense().shape))
    return masks


def share(layers: Sequence[Layer], code_bits: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weight sharing: per layer, k-means with linear initialisation
    (`sw.compress.share_weights`) on the nonzero weights into
    ``2**code_bits - 1`` centroids. Returns ``(codes, centroids)``: codes
    ``n_out x n_in`` with 0 for a pruned weight and ``c`` for
    ``centroids[c - 1]``."""
    codes, centroids = [], []
    for layer in layers:
        w = layer.dense()
        nz = w != 0
        c, labels = share_weights(w[nz], (1 << code_bits) - 1)
        code = np.zeros(w.shape, dtype=np.int64)
        code[nz] = labels + 1
        codes.append(code)
        centroids.append(np.asarray(c, dtype=np.float64))
    return codes, centroids


def ternarize(weight: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``a * sign(weight)`` where `mask` is set, 0 elsewhere, with ``a`` the
    mean magnitude of the masked weights (the L2-optimal single scale, as in
    BWN/TWN). A weight of exactly 0 under the mask counts as positive, so
    that every kept weight stays nonzero."""
    mask = np.asarray(mask, dtype=bool)
    a = float(np.abs(weight[mask]).mean()) if mask.any() else 0.0
    return np.where(mask, np.where(weight < 0, -a, a), 0.0)


@dataclass
class NeuronPruning:
    """What `prune_neurons` did: the new `layers`; `kept[k]`, the indices of
    the values kept at boundary k (``kept[0]``: the inputs, ``kept[k]``: layer
    ``k - 1``'s outputs; the last layer's outputs are all kept)."""
    layers: list[Layer]
    kept: list[np.ndarray]
    n_before: list[int]         # the size of each boundary before

    @property
    def removed(self) -> list[int]:
        """How many values each boundary lost (inputs first, then each hidden layer's neurons)."""
        return [int(n - k.size) for n, k in zip(self.n_before, self.kept)]

    def select_inputs(self, x) -> np.ndarray:
        """`x` (``(N, n_in)`` of the original model) reduced to the inputs the
        pruned model takes."""
        return np.asarray(x)[..., self.kept[0]]


def prune_neurons(layers: Sequence[Layer], *, inputs: bool = False) -> NeuronPruning:
    """Structured pruning of what carries nothing, exactly (the outputs do not
    change): a hidden neuron whose weights out are all zero is removed; one
    whose weights in are all zero outputs the constant ``act(bias)``, which
    is folded into the next layer's bias before it is removed; repeated until
    nothing more goes. With ``inputs=True`` input features no weight reads
    are removed too (then feed the model ``result.select_inputs(x)``).
    Every layer and boundary keeps at least one value."""
    ws = [layer.dense().astype(np.float64).copy() for layer in layers]
    bs = [layer.bias.astype(np.float64).copy() for layer in layers]
    relus = [layer.relu for layer in layers]
    kept = [np.arange(layers[0].n_in)] + [np.arange(layer.n_out) for layer in layers]
    changed = True
    while changed:
        changed = False
        for k in range(1, len(layers)):          # boundary k: layer k-1's outputs, layer k's inputs
            w_in, w_out = ws[k - 1], ws[k]
            dead_out = ~w_out.any(axis=0)
            dead_in = ~w_in.any(axis=1)
            drop = dead_out | dead_in
            if drop.all():                       # keep one, so that the shapes stay valid
                drop[np.argmax(~dead_out)] = False
            if not drop.any():
                continue
            const = np.maximum(bs[k - 1], 0) if relus[k - 1] else bs[k - 1]
            fold = drop & dead_in & ~dead_out
            bs[k] = bs[k] + w_out[:, fold] @ const[fold]
            keep = ~drop
            ws[k - 1], bs[k - 1] = w_in[keep], bs[k - 1][keep]
            ws[k] = w_out[:, keep]
            kept[k] = kept[k][keep]
            changed = True
    if inputs:
        keep = ws[0].any(axis=0)
        if not keep.any():
            keep[0] = True
        ws[0], kept[0] = ws[0][:, keep], kept[0][keep]
    return NeuronPruning([Layer(w, b, relu=r) for w, b, r in zip(ws, bs, relus)], kept[:-1],
                         [layers[0].n_in] + [layer.n_out for layer in layers[:-1]])


def _softmax(z, temperature=1.0):
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def loss_and_grads(weights, biases, x, y, *, relus=None, teacher_logits=None, temperature=4.0, distill=0.5):
    """The loss of an MLP (`relus`: per layer, ReLU or identity; default ReLU
    on all but the last) and its gradients with respect to every weight and
    bias: mean cross-entropy against `y`, or
    with `teacher_logits` ``(1 - distill) * CE(labels) + distill * T**2 *
    CE(teacher at T, student at T)`` (the soft term scaled by ``T**2`` so its
    gradients keep their size, as Hinton et al. do)."""
    if relus is None:
        relus = [i < len(weights) - 1 for i in range(len(weights))]
    hs, zs = [x], []
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = hs[-1] @ w.T + b
        zs.append(z)
        hs.append(np.maximum(z, 0) if relus[i] else z)
    n = x.shape[0]
    logits = hs[-1]
    p = _softmax(logits)
    loss = -np.mean(np.log(p[np.arange(n), y] + 1e-12))
    dz = p
    dz[np.arange(n), y] -= 1
    dz /= n
    if teacher_logits is not None:
        t, q = temperature, _softmax(teacher_logits, temperature)
        ps = _softmax(logits, temperature)
        soft = -np.mean(np.sum(q * np.log(ps + 1e-12), axis=1)) * t * t
        loss = (1 - distill) * loss + distill * soft
        dz = (1 - distill) * dz + distill * t * (ps - q) / n
    gw, gb = [None] * len(weights), [None] * len(weights)
    if relus[-1]:
        dz = dz * (zs[-1] > 0)
    for i in reversed(range(len(weights))):
        gw[i] = dz.T @ hs[i]
        gb[i] = dz.sum(axis=0)
        if i:
            dz = dz @ weights[i]
            if relus[i - 1]:
                dz = dz * (zs[i - 1] > 0)
    return loss, gw, gb


class Trainable:
    """Weights and biases under Deep Compression's constraints, stepped by
    Adam at `lr`: `masks` (per weight, boolean or None) keep pruned weights
    at zero (their gradients are dropped); `shared` ``(codes, centroids)``
    trains the centroids instead, each one's gradient the sum of its
    weights' (code 0, pruned, has none). `weights` are updated in place."""

    def __init__(self, weights, biases, masks, shared, lr):
        self.weights, self.biases, self.masks = weights, biases, masks
        self.shared = shared is not None
        if self.shared:
            self.codes = [np.asarray(c) for c in shared[0]]
            self.centroids = [np.asarray(c, dtype=np.float64).copy() for c in shared[1]]
            self._refresh()
            params = self.centroids + biases
        else:
            params = weights + biases
        self.adam = _Adam(params, lr)
        self.params = params

    def _refresh(self):
        for w, code, c in zip(self.weights, self.codes, self.centroids):
            w[...] = np.concatenate([[0.0], c])[code]

    def step(self, gw, gb):
        if self.shared:
            gc = [np.bincount(code.reshape(-1), weights=g.reshape(-1), minlength=c.size + 1)[1:]
                  for code, g, c in zip(self.codes, gw, self.centroids)]
            self.adam.step(self.params, gc + gb)
            self._refresh()
        else:
            if self.masks is not None:
                gw = [g if m is None else g * m for g, m in zip(gw, self.masks)]
            self.adam.step(self.params, gw + gb)


class _Adam:
    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= self.lr * (m / (1 - self.b1 ** self.t)) / (np.sqrt(v / (1 - self.b2 ** self.t)) + self.eps)


def train(layers: Sequence[Layer], x, y, *, epochs: int, lr: float = 1e-3, batch: int = 128, masks=None,
          shared=None, ternary: bool = False, teacher: Sequence[Layer] | None = None, temperature: float = 4.0,
          distill: float = 0.5, seed: int = 0, progress: Callable[[str], None] | None = None) -> list[Layer]:
    """Train `layers` (each with its own ReLU or identity; the last layer's
    outputs are the logits) on inputs `x` and
    integer labels `y` for `epochs` passes of minibatches of `batch`, with
    Adam at `lr`. `masks` (per layer boolean ``n_out x n_in``) keeps pruned
    weights at zero; `shared` ``(codes, centroids)`` (from `share`) trains
    the centroids instead of the weights; `ternary` trains latent weights
    through their `ternarize`d values (straight-through estimator; the kept
    weights are `masks`', else the nonzero ones) and returns ternary layers,
    ready for ``share(code_bits=2)``; `teacher` (float layers) adds
    distillation at `temperature` with weight `distill`. Returns new layers
    (the inputs are not changed); `progress` gets a line per epoch."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ModelError(f"train() takes x (N, n_in) and y (N,), got {x.shape} and {y.shape}")
    if x.shape[1] != layers[0].n_in:
        raise ModelError(f"x has {x.shape[1]} values per row, layer 0 takes {layers[0].n_in}")
    n_out = layers[-1].n_out
    if y.size and (y.min() < 0 or y.max() >= n_out):
        raise ModelError(f"labels must be in 0..{n_out - 1} (the last layer's outputs)")
    if masks is not None and shared is not None:
        raise ModelError("give masks or shared, not both (shared codes already carry the pruning)")
    if ternary and shared is not None:
        raise ModelError("ternary training takes masks, not shared codes (its codebook is {0, -a, +a})")
    weights = [layer.dense().astype(np.float64).copy() for layer in layers]
    biases = [layer.bias.astype(np.float64).copy() for layer in layers]
    if masks is not None:
        masks = [np.asarray(m, dtype=bool) for m in masks]
        for w, m in zip(weights, masks):
            if m.shape != w.shape:
                raise ModelError(f"a mask of shape {m.shape} for a weight of shape {w.shape}")
            w *= m
    if ternary and masks is None:
        masks = [w != 0 for w in weights]
    params = Trainable(weights, biases, masks, shared, lr)
    relus = [layer.relu for layer in layers]
    teacher_out = None if teacher is None else forward(teacher, x)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(x.shape[0])
        total = 0.0
        for start in range(0, x.shape[0], batch):
            idx = order[start:start + batch]
            # ternary: the loss of the ternary weights, its gradient passed straight through to the latent ones
            used = [ternarize(w, m) for w, m in zip(weights, masks)] if ternary else weights
            loss, gw, gb = loss_and_grads(used, biases, x[idx], y[idx], relus=relus,
                                          teacher_logits=None if teacher_out is None else teacher_out[idx],
                                          temperature=temperature, distill=distill)
            total += loss * idx.size
            params.step(gw, gb)
        if progress:
            progress(f"epoch {epoch + 1}/{epochs}: loss {total / x.shape[0]:.4f}")
    if ternary:
        weights = [ternarize(w, m) for w, m in zip(weights, masks)]
    return [Layer(w, b, relu=r) for w, b, r in zip(weights, biases, relus)]

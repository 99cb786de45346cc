"""Early-exit networks (docs/design.md §15): a trunk of dense layers with
exit heads (a layer or two each) branching off its activations; on the
accelerator, a head whose outputs are confident (the margin between its
largest and second-largest output reaches its threshold) ends the run.

    model = sw.EarlyExit(trunk, {0: [head0], 1: [head1a, head1b]})   # heads after trunk layers 0 and 1
    model = train_joint(model, x, y, epochs=6)                        # the loss of every exit, summed
    cmodel = compress_exits(model, density=..., calibration=x, config=config, thresholds=[2.0, 1.0])
    image = sw.pack(cmodel, config)
    y, exits = sw.golden.run(image, x_int, exits=True)

Thresholds are margins in the outputs' units (logits); `compress_exits`
turns each into an integer in its head's output format. The layers run in
the order of `EarlyExit.table`: each head right after the trunk layer it
branches off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .compress import DEFAULT_ACC_HEADROOM, _error, _quantize_layer, frac_bits_for, prune_and_share
from .config import Config
from .fixedpoint import from_fixed, to_fixed
from .model import CompressedLayer, CompressedModel, Layer, ModelError, check_chain
from .train import Trainable, _softmax, share

__all__ = ["EarlyExit", "train_joint", "compress_exits", "exit_accuracy", "masks_for", "share_exits"]


@dataclass
class EarlyExit:
    """`trunk`: a chain of `sw.Layer`s (the last one's outputs are the
    final logits); `heads`: trunk layer index -> a chain of `sw.Layer`s
    reading that layer's outputs, whose last gives logits like the trunk's."""
    trunk: list
    heads: dict

    def __post_init__(self):
        self.trunk = check_chain(self.trunk, Layer, "an early-exit trunk")
        heads = {}
        n_out = self.trunk[-1].n_out
        for t in sorted(self.heads):
            if not isinstance(t, (int, np.integer)) or not 0 <= t < len(self.trunk) - 1:
                raise ModelError(f"a head branches off trunk layer {t!r}; heads go after layers 0.."
                                 f"{len(self.trunk) - 2} (after the last one, the run ends anyway)")
            head = check_chain(self.heads[t], Layer, f"the head after trunk layer {t}")
            if head[0].n_in != self.trunk[t].n_out or head[-1].n_out != n_out:
                raise ModelError(f"the head after trunk layer {t} takes {head[0].n_in} values and gives "
                                 f"{head[-1].n_out}; it must take that layer's {self.trunk[t].n_out} and give "
                                 f"the trunk's {n_out}")
            heads[int(t)] = head
        self.heads = heads

    @property
    def exits(self) -> list[int]:
        """The trunk layers heads branch off, in order."""
        return list(self.heads)

    def table(self) -> list[tuple[str, int, int]]:
        """The layers in the order they run: ``(part, t, i)``, part
        ``"trunk"`` (layer ``i``) or ``"head"`` (layer ``i`` of the head
        after trunk layer ``t``)."""
        out = []
        for t in range(len(self.trunk)):
            out.append(("trunk", t, t))
            for i in range(len(self.heads.get(t, []))):
                out.append(("head", t, i))
        return out

    def forward(self, x) -> list[np.ndarray]:
        """Float logits of every exit (in order), then the trunk's."""
        h = np.asarray(x, dtype=np.float64)
        outs = []
        for t, layer in enumerate(self.trunk):
            h = layer.forward(h)
            if t in self.heads:
                g = h
                for l in self.heads[t]:
                    g = l.forward(g)
                outs.append(g)
        return outs + [h]


def exit_accuracy(model: EarlyExit, x, y) -> list[float]:
    """The accuracy of each exit's logits alone, then the trunk's."""
    return [float(np.mean(o.argmax(axis=1) == np.asarray(y))) for o in model.forward(x)]


def _layers(model: EarlyExit) -> list[Layer]:
    """Every layer: the trunk, then each head in order (the parameter order)."""
    return list(model.trunk) + [l for t in model.exits for l in model.heads[t]]


def train_joint(model: EarlyExit, x, y, *, epochs: int, lr: float = 1e-3, batch: int = 128, weights=None,
                masks=None, shared=None, seed: int = 0, progress: Callable[[str], None] | None = None) -> EarlyExit:
    """Train every exit at once: the loss is the sum over the exits and the
    trunk of their cross-entropies (`weights`: one per exit, then the
    trunk's; default 1 each), so the trunk learns features the early heads
    can use. `masks` and `shared` as `sw.train.train`'s, per layer in
    ``trunk + heads`` order. Returns a new model."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    layers = _layers(model)
    n_exits = len(model.exits) + 1
    weights = np.ones(n_exits) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (n_exits,):
        raise ModelError(f"weights: one per exit and one for the trunk ({n_exits}), got {weights.shape}")
    if masks is not None and shared is not None:
        raise ModelError("give masks or shared, not both (shared codes already carry the pruning)")
    ws = [l.dense().astype(np.float64).copy() for l in layers]
    bs = [l.bias.astype(np.float64).copy() for l in layers]
    if masks is not None:
        masks = [np.asarray(m, dtype=bool) for m in masks]
        for w, m in zip(ws, masks):
            w *= m
    params = Trainable(ws, bs, masks, shared, lr)
    relus = [l.relu for l in layers]
    n_trunk = len(model.trunk)
    head_index, k = {}, n_trunk
    for t in model.exits:
        head_index[t] = list(range(k, k + len(model.heads[t])))
        k += len(model.heads[t])
    rng = np.random.default_rng(seed)

    def dense(i, h):
        z = h @ ws[i].T + bs[i]
        return z, (np.maximum(z, 0) if relus[i] else z)

    def back(i, h_in, z, d, gw, gb):
        if relus[i]:
            d = d * (z > 0)
        gw[i] += d.T @ h_in
        gb[i] += d.sum(axis=0)
        return d @ ws[i]

    def ce(logits, yb, weight):
        p = _softmax(logits)
        n = yb.size
        loss = -np.mean(np.log(p[np.arange(n), yb] + 1e-12))
        p[np.arange(n), yb] -= 1
        return weight * loss, weight * p / n

    for epoch in range(epochs):
        order = rng.permutation(x.shape[0])
        total = 0.0
        for start in range(0, x.shape[0], batch):
            idx = order[start:start + batch]
            yb = y[idx]
            gw = [np.zeros_like(w) for w in ws]
            gb = [np.zeros_like(b) for b in bs]
            hs, zs = [x[idx]], []
            for t in range(n_trunk):
                z, h = dense(t, hs[-1])
                zs.append(z)
                hs.append(h)
            inject = {}                         # the heads' gradients into the trunk's activations
            for e, t in enumerate(model.exits):
                hh, hz = [hs[t + 1]], []
                for i in head_index[t]:
                    z, h = dense(i, hh[-1])
                    hz.append(z)
                    hh.append(h)
                loss, d = ce(hh[-1], yb, weights[e])
                total += loss * idx.size
                for j in reversed(range(len(head_index[t]))):
                    d = back(head_index[t][j], hh[j], hz[j], d, gw, gb)
                inject[t] = d
            loss, d = ce(hs[-1], yb, weights[-1])
            total += loss * idx.size
            for t in reversed(range(n_trunk)):
                if t in inject:
                    d = d + inject[t]
                d = back(t, hs[t], zs[t], d, gw, gb)
            params.step(gw, gb)
        if progress:
            progress(f"epoch {epoch + 1}/{epochs}: joint loss {total / x.shape[0]:.4f}")
    new = [Layer(w, b, relu=r) for w, b, r in zip(ws, bs, relus)]
    heads, k = {}, n_trunk
    for t in model.exits:
        heads[t] = new[k:k + len(model.heads[t])]
        k += len(model.heads[t])
    return EarlyExit(new[:n_trunk], heads)


def masks_for(model: EarlyExit, trunk_density, head_density) -> list[np.ndarray]:
    """Magnitude-pruning masks for `train_joint`, per layer in its order."""
    from .train import prune_masks
    td = list(trunk_density) if np.ndim(trunk_density) else [trunk_density] * len(model.trunk)
    return prune_masks(_layers(model), td + [head_density] * (len(_layers(model)) - len(model.trunk)))


def share_exits(model: EarlyExit, code_bits: int = 4):
    """Weight sharing for `train_joint`'s `shared`, per layer in its order."""
    return share(_layers(model), code_bits)


def compress_exits(model: EarlyExit, *, calibration, thresholds, config: Config | None = None,
                   density=1.0, headroom_bits: int = 0, acc_headroom: float = DEFAULT_ACC_HEADROOM,
                   kmeans_iterations: int = 30) -> CompressedModel:
    """Compress every layer of `model` as `sw.compress` does (a head's
    calibration inputs are its trunk layer's fixed-point outputs), in the
    table's order, with exit tests: `thresholds` holds one float margin per
    exit (None: never), turned into each head's output format (rounded up:
    an integer margin reaches it exactly when the float one does). `density`:
    one number for all layers or one per layer in ``trunk + heads`` order."""
    config = Config() if config is None else config
    thresholds = list(thresholds)
    if len(thresholds) != len(model.exits):
        raise ModelError(f"{len(thresholds)} thresholds for {len(model.exits)} exits")
    layers = _layers(model)
    ds = list(density) if np.ndim(density) else [density] * len(layers)
    if len(ds) != len(layers):
        raise ModelError(f"density lists {len(ds)} values for {len(layers)} layers (trunk, then heads)")
    calibration = np.asarray(calibration, dtype=np.float64)
    fa = max(0, frac_bits_for(float(np.max(np.abs(calibration))), config.act_bits))
    index = {("trunk", t, t): t for t in range(len(model.trunk))}
    k = len(model.trunk)
    for t in model.exits:
        for i in range(len(model.heads[t])):
            index[("head", t, i)] = k
            k += 1

    out, report = [], []
    trunk_pos, trunk_state = {}, {}             # trunk layer -> table position, (x_int, x_float, fo)
    state = (to_fixed(calibration, fa, config.act_bits).astype(np.int64), calibration, fa)
    exit_number = {t: e for e, t in enumerate(model.exits)}
    for part, t, i in model.table():
        layer = layers[index[(part, t, i)]]
        if part == "head" and i == 0:
            state = trunk_state[t]              # a head reads its trunk layer
        elif part == "trunk" and t:
            state = trunk_state[t - 1]          # and the trunk goes on from there
        x_int, x_float, fa = state
        pruned, centroids, codes, _ = prune_and_share(layer, ds[index[(part, t, i)]], config, kmeans_iterations)
        clayer, y_int, info = _quantize_layer(len(out), codes, centroids, layer.bias, layer.relu, fa, x_int, config,
                                              headroom_bits, acc_headroom)
        y_float = layer.forward(x_float)
        src = None
        if part == "head" and i == 0:
            src = trunk_pos[t]
        elif part == "trunk" and t and trunk_pos[t - 1] != len(out) - 1:
            src = trunk_pos[t - 1]
        threshold = None
        if part == "head" and i == len(model.heads[t]) - 1:
            f = thresholds[exit_number[t]]
            threshold = 1 << config.act_bits if f is None else \
                int(min(np.ceil(f * 2.0 ** clayer.fo), 1 << config.act_bits))
        out.append(CompressedLayer(clayer.codes, clayer.codebook, clayer.bias, clayer.relu, clayer.fa, clayer.fw,
                                   clayer.fo, src=src, exit_threshold=threshold))
        report.append({"layer": len(out) - 1, "part": part, "after": t, "n_in": layer.n_in, "n_out": layer.n_out,
                       "density": pruned.nnz / (layer.n_in * layer.n_out), "nnz": int(pruned.nnz),
                       "fa": clayer.fa, "fw": clayer.fw, "fo": clayer.fo, "exit_threshold": threshold,
                       "error_vs_float": _error(from_fixed(y_int, clayer.fo), y_float), **info})
        state = (y_int, y_float, clayer.fo)
        if part == "trunk":
            trunk_pos[t] = len(out) - 1
            trunk_state[t] = state
    return CompressedModel(out, out[0].fa, report)

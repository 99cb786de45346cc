"""Lowering a `Network` onto the engine: programs of per-pixel dense layers,
with host steps between them.

The engine computes ``y = act(W x + b)`` for one vector at a time, through
a chain of layers (a multi-layer program). A network becomes:

* `Engine`: consecutive per-pixel layers, run as one program on every pixel
  vector. A 1x1 convolution (stride 1, no padding) is a matrix-vector
  product on each pixel's channels; a grouped one is block-diagonal; a
  ``Linear`` after a ``Flatten`` is one vector per image. ReLU is the
  layer's write-back ReLU, and a channel shuffle permutes the rows of the
  layer before it: neither costs a cycle.
* `Gather` (host, im2col): a k x k convolution, or one with stride or
  padding, needs its neighbours: the host gathers each output pixel's
  ``kh * kw * C`` patch, and the convolution is then a ``C_out x (kh * kw
  * C)`` matrix on it (`Conv2d.matrix`; a depthwise one is block-diagonal,
  ``kh * kw`` of every ``kh * kw * C`` weights per row can be nonzero),
  which starts a new program.
* `Pool`, `Flatten`, `Permute`, `Relu`, `Join` (host): pooling, flatten,
  a shuffle with no layer before it to fold into, a ReLU with none, and a
  ``Concat``'s branches (each lowered on its own) joined along channels.

The same host functions (`host`) run float and fixed-point tensors; in
fixed point every host step keeps the format of its input (the average
pool divides rounding half up), so the golden model and the RTL runs share
them exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..model import Layer, ModelError
from .nodes import (AdaptiveAvgPool2d, ChannelShuffle, Concat, Conv2d, Flatten, Linear, LowRank, Network, ReLU,
                    Shape, _Pool)

__all__ = ["Step", "Gather", "Engine", "Pool", "FlattenStep", "Permute", "Relu", "Join", "lower", "host",
           "gather_indices", "run_float", "engines", "nchw_to_nhwc", "Lowered", "copy_steps"]


def nchw_to_nhwc(x) -> np.ndarray:
    """PyTorch's ``(N, C, H, W)`` (or ``(C, H, W)``) as ``(N, H, W, C)``."""
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ModelError(f"nchw_to_nhwc takes (N, C, H, W) or (C, H, W), got shape {x.shape}")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


@dataclass
class Step:
    in_shape: Shape
    out_shape: Shape


@dataclass
class Gather(Step):
    """im2col: each output pixel's ``kh x kw`` window of every channel, as
    one vector ordered (row, column, channel); outside the input, `fill`."""
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)


@dataclass
class Engine(Step):
    """A program: `layers` (float `sw.Layer`s; `sw.CompressedLayer`s once
    compressed) run on every pixel vector. Per layer: `kinds` (what it
    comes from, e.g. ``"depthwise 3x3"``), `nodes` (the weighted node's
    index in `Network.weighted_nodes`), `structure` (where its weights may
    be nonzero; None for dense). `images`: the packed programs (a chain
    longer than ``max_layers`` is split)."""
    layers: list = field(default_factory=list)
    kinds: list = field(default_factory=list)
    nodes: list = field(default_factory=list)
    structure: list = field(default_factory=list)
    images: list = field(default_factory=list)

    @property
    def pixels(self) -> int:
        return self.out_shape[0] * self.out_shape[1]


@dataclass
class Pool(Step):
    mode: str = "avg"
    kernel: tuple = (1, 1)
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)


@dataclass
class FlattenStep(Step):
    pass


@dataclass
class Permute(Step):
    """``out[..., j] = in[..., perm[j]]``."""
    perm: np.ndarray = None


@dataclass
class Relu(Step):
    pass


@dataclass
class Join(Step):
    """A Concat: each branch's steps on the same input, outputs joined along
    the channels in branch order."""
    branches: list = field(default_factory=list)


# ---- lowering ---------------------------------------------------------------

class _Lowering:
    def __init__(self):
        self.weighted = 0

    def lower(self, nodes, shape: Shape) -> list[Step]:
        steps: list[Step] = []
        for node in nodes:
            out = node.output_shape(shape)
            last = steps[-1] if steps else None
            if isinstance(node, Conv2d):
                if not node.pointwise:
                    kh, kw = node.kernel
                    gathered = (out[0], out[1], kh * kw * shape[2])
                    steps.append(Gather(shape, gathered, node.kernel, node.stride, node.padding))
                    shape, last = gathered, steps[-1]
                structure = None if node.groups == 1 else node.structure()
                self._layer(steps, shape, Layer(node.matrix(), node.bias, relu=False), node.kind, structure)
            elif isinstance(node, Linear):
                self._layer(steps, shape, Layer(node.weight, node.bias, relu=False), node.kind, None)
            elif isinstance(node, LowRank):
                self._layer(steps, shape, Layer(node.first, None, relu=False), node.kind, None, advance=False)
                self._layer(steps, shape, Layer(node.second, node.bias, relu=False), node.kind, None)
            elif isinstance(node, ReLU):
                if isinstance(last, Engine):
                    l = last.layers[-1]
                    last.layers[-1] = Layer(l.weight, l.bias, relu=True)
                elif not isinstance(last, Relu):
                    steps.append(Relu(shape, shape))
            elif isinstance(node, ChannelShuffle):
                perm = node.permutation(shape[2])
                if isinstance(last, Engine):
                    l = last.layers[-1]
                    last.layers[-1] = Layer(sp.csr_array(l.weight)[perm] if sp.issparse(l.weight) else l.weight[perm],
                                            l.bias[perm], relu=l.relu)
                    if last.structure[-1] is not None:
                        last.structure[-1] = sp.csr_array(last.structure[-1])[perm]
                else:
                    steps.append(Permute(shape, shape, perm))
            elif isinstance(node, (_Pool, AdaptiveAvgPool2d)):
                pool = node.pool(shape) if isinstance(node, AdaptiveAvgPool2d) else node
                steps.append(Pool(shape, out, pool.mode, pool.kernel, pool.stride, pool.padding))
            elif isinstance(node, Flatten):
                if shape[:2] != (1, 1):
                    steps.append(FlattenStep(shape, out))
            elif isinstance(node, Concat):
                steps.append(Join(shape, out, [self.lower(b, shape) for b in node.branches]))
            else:
                raise ModelError(f"{node!r} cannot be lowered")
            shape = out
        return steps

    def _layer(self, steps, shape, layer: Layer, kind: str, structure, advance: bool = True):
        last = steps[-1] if steps else None
        out = (shape[0], shape[1], layer.n_out)
        if isinstance(last, Engine):
            last.out_shape = out
        else:
            last = Engine(shape, out)
            steps.append(last)
        last.layers.append(layer)
        last.kinds.append(kind)
        last.nodes.append(self.weighted)
        last.structure.append(structure)
        if advance:
            self.weighted += 1


@dataclass
class Lowered:
    """A network as steps: what `train_network` trains and
    `compress_network` compresses. `weighted`: how many weighted nodes the
    engine layers come from (a per-node ``density`` list has this many)."""
    input_shape: Shape
    output_shape: Shape
    steps: list
    weighted: int

    def forward(self, x, trace: bool = False):
        """The float network on ``(N, H, W, C)`` images."""
        return run_float(self.steps, np.asarray(x, dtype=np.float64), trace)


def lower(network: Network) -> Lowered:
    """`network` as steps (see the module's docstring)."""
    if not isinstance(network, Network):
        raise ModelError(f"lower() takes an sw.Network, got {type(network).__name__}")
    lowering = _Lowering()
    steps = lowering.lower(network.nodes, network.input_shape)
    return Lowered(network.input_shape, network.output_shape, steps, lowering.weighted)


def engines(steps) -> list[Engine]:
    """Every `Engine` step, in order (into Join branches, depth first)."""
    out = []
    for s in steps:
        if isinstance(s, Join):
            for b in s.branches:
                out.extend(engines(b))
        elif isinstance(s, Engine):
            out.append(s)
    return out


# ---- host steps (float and fixed point alike) ----------------------------------

_INDEX_CACHE: dict = {}


def gather_indices(in_shape: Shape, kernel, stride, padding) -> np.ndarray:
    """For the padded input flattened per image, the index of every value of
    every output pixel's patch, ``(Ho * Wo * kh * kw * C,)``."""
    key = (tuple(in_shape), tuple(kernel), tuple(stride), tuple(padding))
    if key not in _INDEX_CACHE:
        h, w, c = in_shape
        (kh, kw), (sh, sw_), (ph, pw) = kernel, stride, padding
        hp, wp = h + 2 * ph, w + 2 * pw
        ho, wo = (hp - kh) // sh + 1, (wp - kw) // sw_ + 1
        oy, ox, y, x, ch = np.meshgrid(np.arange(ho), np.arange(wo), np.arange(kh), np.arange(kw), np.arange(c),
                                       indexing="ij")
        _INDEX_CACHE[key] = (((oy * sh + y) * wp + (ox * sw_ + x)) * c + ch).reshape(-1)
    return _INDEX_CACHE[key]


def _gather(x: np.ndarray, kernel, stride, padding, fill) -> np.ndarray:
    n, h, w, c = x.shape
    (kh, kw), (ph, pw) = kernel, padding
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=fill) if ph or pw else x
    idx = gather_indices((h, w, c), kernel, stride, padding)
    ho = (h + 2 * ph - kh) // stride[0] + 1
    wo = (w + 2 * pw - kw) // stride[1] + 1
    return xp.reshape(n, -1)[:, idx].reshape(n, ho, wo, kh * kw * c)


def _avg_fixed(total: np.ndarray, n: int) -> np.ndarray:
    """``total / n`` rounded half up, in integers."""
    return (2 * total + n) // (2 * n)


def host(step: Step, x: np.ndarray, fixed: bool) -> np.ndarray:
    """Apply a host step to ``(N, H, W, C)`` `x` (int64 when `fixed`)."""
    if isinstance(step, Gather):
        return _gather(x, step.kernel, step.stride, step.padding, 0)
    if isinstance(step, Pool):
        (kh, kw), c = step.kernel, x.shape[3]
        if step.mode == "max":
            lo = np.iinfo(np.int64).min if fixed else -np.inf
            win = _gather(x, step.kernel, step.stride, step.padding, lo)
            return win.reshape(*win.shape[:3], kh * kw, c).max(axis=3)
        win = _gather(x, step.kernel, step.stride, step.padding, 0)
        total = win.reshape(*win.shape[:3], kh * kw, c).sum(axis=3)
        return _avg_fixed(total, kh * kw) if fixed else total / (kh * kw)
    if isinstance(step, FlattenStep):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(x.shape[0], 1, 1, -1)
    if isinstance(step, Permute):
        return x[..., step.perm]
    if isinstance(step, Relu):
        return np.maximum(x, 0)
    raise TypeError(f"{step!r} is not a host step")


def run_float(steps, x: np.ndarray, trace: bool = False):
    """The float network: every step on ``(N, H, W, C)`` float `x`."""
    outs = []
    for step in steps:
        if isinstance(step, Engine):
            v = x.reshape(-1, x.shape[-1])
            for layer in step.layers:
                v = layer.forward(v)
            x = v.reshape(x.shape[0], step.out_shape[0], step.out_shape[1], -1)
        elif isinstance(step, Join):
            x = np.concatenate([run_float(b, x) for b in step.branches], axis=3)
        else:
            x = host(step, x, fixed=False)
        outs.append(x)
    return outs if trace else x


def copy_steps(steps) -> list[Step]:
    """A deep-enough copy: new step objects and lists (the layers are shared)."""
    out = []
    for s in steps:
        s = dataclasses.replace(s)
        if isinstance(s, Engine):
            s.layers, s.kinds, s.nodes, s.structure, s.images = (list(s.layers), list(s.kinds), list(s.nodes),
                                                                 list(s.structure), list(s.images))
        elif isinstance(s, Join):
            s.branches = [copy_steps(b) for b in s.branches]
        out.append(s)
    return out

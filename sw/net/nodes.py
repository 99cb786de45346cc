"""A network beyond a chain of dense layers: the operations compact CNNs are
built from, each a node that knows its output shape.

Tensors are ``(N, H, W, C)`` (channels last: a pixel's channels are one
contiguous vector, which is what the engine takes). Weights keep PyTorch's
layouts: a convolution's weight is ``(C_out, C_in / groups, kh, kw)``, a
linear layer's ``(n_out, n_in)``; `Flatten` orders values as PyTorch's
``Flatten`` does on ``(N, C, H, W)`` (channel, then row, then column), so a
``Linear`` after it keeps its weight.

    net = sw.Network((28, 28, 1), [
        sw.Conv2d(w1, b1, stride=2, padding=1), sw.ReLU(),
        sw.Conv2d(w2, b2, padding=1, groups=16), sw.ReLU(),    # depthwise
        sw.Conv2d(w3, b3, groups=2), sw.ReLU(), sw.ChannelShuffle(2),
        sw.AdaptiveAvgPool2d(1), sw.Flatten(), sw.Linear(w4, b4)])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..arrays import check_ndim, real_array
from ..model import ModelError

__all__ = ["Node", "Conv2d", "Linear", "LowRank", "ReLU", "ChannelShuffle", "Concat", "AvgPool2d", "MaxPool2d",
           "AdaptiveAvgPool2d", "Flatten", "Network", "Shape"]

Shape = tuple[int, int, int]        # (H, W, C)


def _pair(value, what: str, lo: int) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= lo
                                 for v in pair):
        raise ModelError(f"{what} must be an int >= {lo} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _bias(bias, n: int, what: str) -> np.ndarray:
    if bias is None:
        return np.zeros(n)
    b = real_array(bias, f"{what} bias", ModelError)
    if b.shape != (n,):
        raise ModelError(f"{what}: bias must have shape ({n},), got {b.shape}")
    return b


def window_output(size: int, kernel: int, stride: int, padding: int, what: str) -> int:
    """Output length of a sliding window (PyTorch's floor rule)."""
    out = (size + 2 * padding - kernel) // stride + 1
    if out < 1:
        raise ModelError(f"{what}: a {kernel}-wide window (padding {padding}) does not fit an input of {size}")
    return out


class Node:
    """One operation of a `Network`."""
    weighted = False            # carries weights that the engine runs (and `compress` prunes)

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def __repr__(self):
        return f"{type(self).__name__}()"


class Conv2d(Node):
    """A 2-D convolution (cross-correlation, as PyTorch's ``Conv2d``):
    `weight` ``(C_out, C_in / groups, kh, kw)``, `bias` ``(C_out,)`` or None;
    dilation 1. ``groups == C_in == C_out`` is a depthwise convolution."""
    weighted = True

    def __init__(self, weight, bias=None, *, stride=1, padding=0, groups: int = 1):
        w = real_array(weight, "Conv2d weight", ModelError)
        check_ndim(w, 4, "Conv2d weight (C_out, C_in / groups, kh, kw)", ModelError, nonempty=True)
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ModelError(f"Conv2d groups must be an int >= 1, got {groups!r}")
        if w.shape[0] % groups:
            raise ModelError(f"Conv2d: {w.shape[0]} output channels do not split into {groups} groups")
        self.weight = w
        self.bias = _bias(bias, w.shape[0], "Conv2d")
        self.stride = _pair(stride, "Conv2d stride", 1)
        self.padding = _pair(padding, "Conv2d padding", 0)
        self.groups = int(groups)

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def kernel(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]

    @property
    def pointwise(self) -> bool:
        """A 1x1 convolution with stride 1 and no padding: a matrix-vector
        product per pixel, on the pixel's own channels (no gather)."""
        return self.kernel == (1, 1) and self.stride == (1, 1) and self.padding == (0, 0)

    @property
    def kind(self) -> str:
        kh, kw = self.kernel
        if self.groups > 1 and self.groups == self.in_channels == self.out_channels:
            return f"depthwise {kh}x{kw}"
        return f"{'grouped ' if self.groups > 1 else ''}conv {kh}x{kw}"

    def output_shape(self, shape: Shape) -> Shape:
        h, w, c = shape
        if c != self.in_channels:
            raise ModelError(f"{self!r} takes {self.in_channels} channels, its input has {c}")
        kh, kw = self.kernel
        return (window_output(h, kh, self.stride[0], self.padding[0], repr(self)),
                window_output(w, kw, self.stride[1], self.padding[1], repr(self)), self.out_channels)

    def _positions(self):
        """Rows and columns of the lowered matrix's structural entries, and
        the weight index each holds (see `matrix`)."""
        co, cig, kh, kw = self.weight.shape
        c_in, per_group = self.in_channels, co // self.groups
        o, i, y, x = np.meshgrid(np.arange(co), np.arange(cig), np.arange(kh), np.arange(kw), indexing="ij")
        channel = (o // per_group) * cig + i                      # the input channel weight [o, i] reads
        cols = (y * kw + x) * c_in + channel
        return o.reshape(-1), cols.reshape(-1)

    def matrix(self) -> sp.csr_array:
        """The convolution as a ``C_out x (kh * kw * C_in)`` matrix over a
        gathered patch, whose values are ordered (row, column, channel): entry
        ``(o, (y * kw + x) * C_in + c)`` is ``weight[o, c - g * C_in/groups,
        y, x]`` for ``c`` in ``o``'s group ``g``, zero outside it (a grouped
        convolution is block-diagonal over the channels)."""
        rows, cols = self._positions()
        kh, kw = self.kernel
        return sp.csr_array((self.weight.reshape(-1), (rows, cols)), shape=(self.out_channels, kh * kw * self.in_channels))

    def structure(self) -> sp.csr_array:
        """Where `matrix` may be nonzero (boolean; the group structure)."""
        rows, cols = self._positions()
        kh, kw = self.kernel
        return sp.csr_array((np.ones(rows.size, dtype=bool), (rows, cols)),
                            shape=(self.out_channels, kh * kw * self.in_channels))

    def with_matrix(self, matrix, bias) -> Conv2d:
        """The same convolution with the weights of a lowered `matrix`
        (entries outside the group structure must be zero)."""
        m = sp.csr_array(matrix) if sp.issparse(matrix) else sp.csr_array(np.asarray(matrix, dtype=np.float64))
        outside = m.multiply(~self.structure().toarray()) if m.nnz else m
        if sp.csr_array(outside).count_nonzero():
            raise ModelError(f"{self!r}: the matrix has weights outside the convolution's groups")
        rows, cols = self._positions()
        w = np.asarray(m.toarray()[rows, cols], dtype=np.float64).reshape(self.weight.shape)
        return Conv2d(w, bias, stride=self.stride, padding=self.padding, groups=self.groups)

    def __repr__(self):
        co, _, kh, kw = self.weight.shape
        extra = "".join(f", {k}={v}" for k, v, d in (("stride", self.stride, (1, 1)), ("padding", self.padding, (0, 0)),
                                                     ("groups", self.groups, 1)) if v != d)
        return f"Conv2d({self.in_channels} -> {co}, {kh}x{kw}{extra})"


class Linear(Node):
    """A dense layer, `weight` ``(n_out, n_in)``. On a ``(N, H, W, C)``
    tensor it acts on each pixel's channels (``n_in == C``), like a 1x1
    convolution."""
    weighted = True
    kind = "linear"

    def __init__(self, weight, bias=None):
        w = real_array(weight, "Linear weight", ModelError)
        check_ndim(w, 2, "Linear weight (n_out, n_in)", ModelError, nonempty=True)
        self.weight = w
        self.bias = _bias(bias, w.shape[0], "Linear")

    def output_shape(self, shape: Shape) -> Shape:
        if shape[2] != self.weight.shape[1]:
            raise ModelError(f"{self!r} takes {self.weight.shape[1]} values per pixel, its input has {shape[2]} "
                             f"(a Flatten before it?)")
        return shape[0], shape[1], self.weight.shape[0]

    def __repr__(self):
        return f"Linear({self.weight.shape[1]} -> {self.weight.shape[0]})"


class LowRank(Node):
    """A dense layer factorised into two, ``y = U (V x) + b`` with no
    activation between: `first` ``V`` (``rank x n_in``), `second` ``U``
    (``n_out x rank``). `LowRank.factorize` makes one from a weight by
    truncated SVD (`sw.factorize`)."""
    weighted = True
    kind = "low-rank"

    def __init__(self, first, second, bias=None):
        v = real_array(first, "LowRank first factor", ModelError)
        u = real_array(second, "LowRank second factor", ModelError)
        check_ndim(v, 2, "LowRank first factor (rank, n_in)", ModelError, nonempty=True)
        check_ndim(u, 2, "LowRank second factor (n_out, rank)", ModelError, nonempty=True)
        if u.shape[1] != v.shape[0]:
            raise ModelError(f"LowRank: the first factor has rank {v.shape[0]}, the second takes {u.shape[1]}")
        self.first, self.second = v, u
        self.bias = _bias(bias, u.shape[0], "LowRank")

    @classmethod
    def factorize(cls, weight, rank: int, bias=None) -> LowRank:
        from ..lowrank import factorize
        from ..model import Layer
        v, u = factorize(Layer(weight, bias, relu=False), rank)
        return cls(v.dense(), u.dense(), u.bias)

    @property
    def rank(self) -> int:
        return self.first.shape[0]

    def output_shape(self, shape: Shape) -> Shape:
        if shape[2] != self.first.shape[1]:
            raise ModelError(f"{self!r} takes {self.first.shape[1]} values per pixel, its input has {shape[2]}")
        return shape[0], shape[1], self.second.shape[0]

    def __repr__(self):
        return f"LowRank({self.first.shape[1]} -> {self.second.shape[0]}, rank {self.rank})"


class ReLU(Node):
    """``max(x, 0)``; after a weighted node it is that layer's write-back
    ReLU (no cost)."""


class ChannelShuffle(Node):
    """ShuffleNet's channel shuffle: the channels as ``(groups, C / groups)``,
    transposed. After a weighted node it is folded into that layer's row
    order (no cost on the engine)."""

    def __init__(self, groups: int):
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise ModelError(f"ChannelShuffle groups must be an int >= 1, got {groups!r}")
        self.groups = int(groups)

    def output_shape(self, shape: Shape) -> Shape:
        if shape[2] % self.groups:
            raise ModelError(f"{self!r}: {shape[2]} channels do not split into {self.groups} groups")
        return shape

    def permutation(self, channels: int) -> np.ndarray:
        """``out[j] = in[perm[j]]``."""
        return np.arange(channels).reshape(self.groups, channels // self.groups).T.reshape(-1)

    def __repr__(self):
        return f"ChannelShuffle({self.groups})"


class _Pool(Node):
    mode = ""

    def __init__(self, kernel_size, stride=None, padding=0):
        self.kernel = _pair(kernel_size, f"{type(self).__name__} kernel_size", 1)
        self.stride = self.kernel if stride is None else _pair(stride, f"{type(self).__name__} stride", 1)
        self.padding = _pair(padding, f"{type(self).__name__} padding", 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel)):
            raise ModelError(f"{self!r}: padding must be at most half the kernel (as in PyTorch)")

    def output_shape(self, shape: Shape) -> Shape:
        return (window_output(shape[0], self.kernel[0], self.stride[0], self.padding[0], repr(self)),
                window_output(shape[1], self.kernel[1], self.stride[1], self.padding[1], repr(self)), shape[2])

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel[0]}x{self.kernel[1]}, stride {self.stride})"


class AvgPool2d(_Pool):
    """Average pooling (zero padding counted in the average, as PyTorch's
    default). In fixed point the sum is divided rounding half up."""
    mode = "avg"


class MaxPool2d(_Pool):
    """Max pooling (padding never wins)."""
    mode = "max"


class AdaptiveAvgPool2d(Node):
    """Average pooling to `output_size` (one int or a pair) that divides the
    input: a plain `AvgPool2d` once the input's size is known."""

    def __init__(self, output_size=1):
        self.output_size = _pair(output_size, "AdaptiveAvgPool2d output_size", 1)

    def pool(self, shape: Shape) -> AvgPool2d:
        (h, w), (oh, ow) = shape[:2], self.output_size
        if h % oh or w % ow:
            raise ModelError(f"{self!r}: an output of {oh}x{ow} does not divide an input of {h}x{w}")
        return AvgPool2d((h // oh, w // ow))

    def output_shape(self, shape: Shape) -> Shape:
        return self.pool(shape).output_shape(shape)

    def __repr__(self):
        return f"AdaptiveAvgPool2d({self.output_size})"


class Flatten(Node):
    """``(N, H, W, C)`` to ``(N, 1, 1, C * H * W)`` in PyTorch's order
    (channel, row, column)."""

    def output_shape(self, shape: Shape) -> Shape:
        return 1, 1, shape[0] * shape[1] * shape[2]


class Concat(Node):
    """Branches that each take the same input, their outputs joined along
    the channels (SqueezeNet's expand, Inception). Each branch is a
    sequence of nodes; all must give the same height and width."""

    def __init__(self, *branches: Sequence[Node]):
        if len(branches) < 2:
            raise ModelError(f"Concat needs at least two branches, got {len(branches)}")
        self.branches = [_nodes(b, f"Concat branch {i}") for i, b in enumerate(branches)]
        for i, b in enumerate(self.branches):
            if not b:
                raise ModelError(f"Concat branch {i} is empty (an identity branch is not supported: "
                                 f"the branches' outputs must share one fixed-point format)")

    def output_shape(self, shape: Shape) -> Shape:
        outs = [_walk(b, shape) for b in self.branches]
        if len({o[:2] for o in outs}) != 1:
            raise ModelError(f"Concat: the branches give {', '.join(f'{h}x{w}' for h, w, _ in outs)} pixels; "
                             f"they must agree")
        return outs[0][0], outs[0][1], sum(o[2] for o in outs)

    def __repr__(self):
        return f"Concat({len(self.branches)} branches)"


def _nodes(nodes, what: str) -> list[Node]:
    nodes = list(nodes)
    for i, n in enumerate(nodes):
        if not isinstance(n, Node):
            raise ModelError(f"{what}: item {i} is a {type(n).__name__}, not an sw network node "
                             f"(sw.Conv2d, sw.Linear, sw.ReLU, ...)")
    return nodes


def _walk(nodes, shape: Shape) -> Shape:
    for n in nodes:
        shape = n.output_shape(shape)
    return shape


def _shape(value, what: str) -> Shape:
    shape = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(shape) != 3 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                  for v in shape):
        raise ModelError(f"{what} must be (height, width, channels), positive ints, got {value!r}")
    return tuple(int(v) for v in shape)


class Network:
    """`nodes` applied in order to inputs of `input_shape` ``(H, W, C)``
    (a dense model's input is ``(1, 1, n_in)``). Shapes are checked here,
    naming the node that does not fit."""

    def __init__(self, input_shape, nodes: Sequence[Node]):
        self.input_shape = _shape(input_shape, "Network input_shape")
        self.nodes = _nodes(nodes, "Network")
        if not self.nodes:
            raise ModelError("a Network needs at least one node")
        shape = self.input_shape
        for i, n in enumerate(self.nodes):
            try:
                shape = n.output_shape(shape)
            except ModelError as e:
                raise ModelError(f"node {i}: {e}") from None
        self.output_shape = shape

    def weighted_nodes(self) -> list[Node]:
        """The nodes with weights, in order (into Concat branches, depth
        first): what a per-layer ``density`` list follows."""
        def walk(nodes):
            for n in nodes:
                if isinstance(n, Concat):
                    for b in n.branches:
                        yield from walk(b)
                elif n.weighted:
                    yield n
        return list(walk(self.nodes))

    def replace_weighted(self, new: Sequence[Node]) -> Network:
        """The same network with its weighted nodes replaced, in
        `weighted_nodes` order."""
        it = iter(new)

        def walk(nodes):
            return [Concat(*(walk(b) for b in n.branches)) if isinstance(n, Concat) else (next(it) if n.weighted else n)
                    for n in nodes]
        return Network(self.input_shape, walk(self.nodes))

    def check_input(self, x, what: str = "inputs") -> np.ndarray:
        """`x` as ``(N, H, W, C)`` (a single ``(H, W, C)`` gets N = 1)."""
        x = np.asarray(x)
        if x.shape == self.input_shape:
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            raise ModelError(f"{what} must have shape (N, {', '.join(map(str, self.input_shape))}) (N, H, W, C: "
                             f"channels last; sw.net.nchw_to_nhwc converts), got {x.shape}")
        return x

    def __repr__(self):
        return f"Network({self.input_shape} -> {self.output_shape}, {len(self.nodes)} nodes)"

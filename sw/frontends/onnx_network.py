"""`sw.from_onnx` for graphs with convolutions: an `sw.Network`.

Reads ``Conv`` (groups, stride, symmetric padding, dilation 1), a
``BatchNormalization`` folded into the layer before it, ``Relu``,
``MaxPool``, ``AveragePool``, ``GlobalAveragePool``, ``Flatten``, ``Gemm``,
``MatMul`` (+ ``Add``), ``Concat`` of branches that fork from one value
(along the channels), ShuffleNet's channel shuffle as PyTorch exports it
(``Reshape`` to ``(N, g, C/g, H, W)``, ``Transpose`` ``(0, 2, 1, 3, 4)``,
``Reshape`` back), ``Identity`` and ``Dropout``. Anything else is refused,
naming the node.
"""

from __future__ import annotations

import numpy as np

from ..model import ModelError
from ..net import Network
from .netbuilder import NetBuilder

__all__ = ["network_from_onnx", "NETWORK_OPS", "SUPPORTED_NETWORK"]

# operators that make a graph a network rather than a chain of dense layers
NETWORK_OPS = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "BatchNormalization", "Transpose"}
SUPPORTED_NETWORK = ("Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm, "
                     "MatMul, Add, Concat, Reshape-Transpose-Reshape (channel shuffle), Identity, Dropout, Constant")


class _Graph:
    def __init__(self, proto, source, attrs):
        from onnx import numpy_helper
        self.source, self.attrs = source, attrs
        graph = proto.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = []
        for k, node in enumerate(graph.node):
            if node.op_type == "Constant":
                a = attrs(node)
                if "value" not in a:
                    raise ModelError(f"{source}: node {node.name or k} (Constant): only a tensor 'value' is supported")
                self.consts[node.output[0]] = numpy_helper.to_array(a["value"])
            else:
                self.nodes.append((k, node))
        self.consumers: dict = {}
        for k, node in self.nodes:
            for i in node.input:
                if i and i not in self.consts:
                    self.consumers.setdefault(i, []).append((k, node))
        inputs = [i for i in graph.input if i.name not in self.consts]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelError(f"{source}: the graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
                             f"OpenEIE imports a network with one of each")
        self.input, self.output = inputs[0], graph.output[0].name

    def where(self, k, node) -> str:
        return f"node {node.name or k} ({node.op_type})"

    def const(self, k, node, i, what):
        if len(node.input) <= i or not node.input[i]:
            return None
        if node.input[i] not in self.consts:
            raise ModelError(f"{self.source}: {self.where(k, node)}: its {what} ({node.input[i]}) is not a constant")
        return self.consts[node.input[i]].astype(np.float64)

    def input_shape(self):
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in self.input.type.tensor_type.shape.dim]
        if len(dims) == 4 and all(dims[1:]):
            return dims[2], dims[3], dims[1]
        if len(dims) == 2 and dims[1]:
            return 1, 1, dims[1]
        raise ModelError(f"{self.source}: the input {self.input.name!r} has shape {dims}: OpenEIE needs (N, C, H, W) "
                         f"(or (N, features)) with C, H and W fixed")


def _pads(g, k, node, pads, n=2):
    pads = list(pads or [0] * 2 * n)
    if pads[:n] != pads[n:]:
        raise ModelError(f"{g.source}: {g.where(k, node)} pads {pads} unevenly; only symmetric padding is supported")
    return tuple(pads[:n])


def _convert(g: _Graph, k, node, b: NetBuilder, tensor: str) -> str:
    """Add `node` (which reads `tensor`) to `b`; returns the value it gives
    (for the shuffle idiom, the value after the last of its three nodes)."""
    where = g.where(k, node)
    a = g.attrs(node)
    op = node.op_type
    data = [i for i in node.input if i and i not in g.consts]
    if data != [tensor]:
        raise ModelError(f"{g.source}: {where} reads {', '.join(data)}: only the network's value and constants "
                         f"(a weight computed at run time, or a residual add, is not supported)")
    if op == "Conv":
        if any(d != 1 for d in a.get("dilations", [1, 1])) or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ModelError(f"{g.source}: {where}: dilation and auto_pad are not supported")
        b.conv(g.const(k, node, 1, "weight"), g.const(k, node, 2, "bias"), tuple(a.get("strides", [1, 1])),
               _pads(g, k, node, a.get("pads")), int(a.get("group", 1)), where)
    elif op == "BatchNormalization":
        if a.get("training_mode", 0):
            raise ModelError(f"{g.source}: {where} is in training mode")
        b.batchnorm(g.const(k, node, 1, "scale"), g.const(k, node, 2, "bias"), g.const(k, node, 3, "mean"),
                    g.const(k, node, 4, "variance"), float(a.get("epsilon", 1e-5)), where)
    elif op == "Relu":
        b.relu(where)
    elif op in ("MaxPool", "AveragePool"):
        if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
            raise ModelError(f"{g.source}: {where}: ceil_mode and dilation are not supported")
        pads = _pads(g, k, node, a.get("pads"))
        if op == "AveragePool" and any(pads) and not a.get("count_include_pad", 0):
            raise ModelError(f"{g.source}: {where} leaves padding out of the average (count_include_pad 0); "
                             f"OpenEIE's average counts it, as PyTorch's AvgPool2d does by default")
        kernel = tuple(a["kernel_shape"])
        b.pool("max" if op == "MaxPool" else "avg", kernel, tuple(a.get("strides", [1, 1])), pads, where)
    elif op == "GlobalAveragePool":
        b.global_pool()
    elif op == "Flatten":
        if a.get("axis", 1) != 1:
            raise ModelError(f"{g.source}: {where} has axis {a['axis']}: only axis 1 is supported")
        b.flatten()
    elif op == "Gemm":
        if a.get("transA", 0) or node.input[0] != tensor:
            raise ModelError(f"{g.source}: {where}: the network's value must be A, not transposed")
        w = g.const(k, node, 1, "weight B")
        w = (w if a.get("transB", 0) else w.T) * a.get("alpha", 1.0)
        c = g.const(k, node, 2, "bias C")
        b.linear(w, None if c is None else np.broadcast_to(c * a.get("beta", 1.0), (w.shape[0],)), where)
    elif op == "MatMul":
        b.linear(g.const(k, node, 1, "weight").T, None, where)
    elif op == "Add":
        other = [i for i in node.input if i != tensor]
        b.add_bias(g.consts[other[0]], where)
    elif op == "Reshape":
        shape = g.const(k, node, 1, "shape")
        nxt = g.consumers.get(node.output[0], [])
        if shape is not None and shape.size == 5 and len(nxt) == 1 and nxt[0][1].op_type == "Transpose" \
                and list(g.attrs(nxt[0][1]).get("perm", [])) == [0, 2, 1, 3, 4]:
            k2, t = nxt[0]
            back = g.consumers.get(t.output[0], [])
            if len(back) == 1 and back[0][1].op_type == "Reshape":
                groups = int(shape[1])
                if groups < 1:
                    raise ModelError(f"{g.source}: {where}: a channel shuffle needs its group count in the shape")
                b.shuffle(groups)
                return back[0][1].output[0]
        if shape is not None and shape.size == 2:
            b.flatten()
        else:
            raise ModelError(f"{g.source}: {where}: only a flatten (to (N, -1)) or a channel shuffle "
                             f"(Reshape, Transpose (0, 2, 1, 3, 4), Reshape) is supported")
    elif op == "Dropout":
        if len(node.input) > 2 and node.input[2] in g.consts and g.consts[node.input[2]]:
            raise ModelError(f"{g.source}: {where} is in training mode")
    elif op == "Shape":
        raise ModelError(f"{g.source}: {where}: the graph computes a shape at run time (a dynamic batch axis?); "
                         f"export with a fixed batch size (torch.onnx.export without dynamic_axes folds it)")
    elif op != "Identity":
        raise ModelError(f"{g.source}: {where} is not supported: OpenEIE imports {SUPPORTED_NETWORK}")
    return node.output[0]


def _run(g: _Graph, tensor: str, b: NetBuilder, in_branch: bool):
    """Follow the graph from `tensor`, adding nodes to `b`; in a branch, stop
    at the Concat that ends it. Returns ``(value, concat node or None)``."""
    while True:
        if tensor == g.output:
            if in_branch:
                raise ModelError(f"{g.source}: a branch reaches the graph's output without a Concat")
            return tensor, None
        cons = g.consumers.get(tensor, [])
        if not cons:
            raise ModelError(f"{g.source}: the value {tensor!r} is used by no node and is not the graph's output")
        if len(cons) == 1:
            k, node = cons[0]
            if node.op_type == "Concat":
                if in_branch:
                    return tensor, (k, node)
                raise ModelError(f"{g.source}: {g.where(k, node)} joins values that do not fork from one")
            tensor = _convert(g, k, node, b, tensor)
            continue
        ends = []
        for k, node in cons:
            if node.op_type == "Concat":
                raise ModelError(f"{g.source}: {g.where(k, node)} takes {tensor!r} itself as a branch; an identity "
                                 f"branch is not supported (the branches' outputs share one fixed-point format)")
            branch = NetBuilder(g.source)
            end, join = _run(g, _convert(g, k, node, branch, tensor), branch, True)
            ends.append((end, join, branch.nodes))
        joins = {id(j[1]) for _, j, _ in ends}
        k, join = ends[0][1]
        if len(joins) != 1 or len(join.input) != len(ends):
            raise ModelError(f"{g.source}: the branches that fork from {tensor!r} do not all end in one Concat")
        if g.attrs(join).get("axis", 1) not in (1, -3):
            raise ModelError(f"{g.source}: {g.where(k, join)} joins along axis {g.attrs(join)['axis']}; only the "
                             f"channels (axis 1) are supported")
        order = list(join.input)
        b.concat([nodes for _, _, nodes in sorted(ends, key=lambda e: order.index(e[0]))])
        tensor = join.output[0]


def network_from_onnx(proto, source: str, attrs) -> Network:
    g = _Graph(proto, source, attrs)
    b = NetBuilder(source)
    _run(g, g.input.name, b, False)
    return b.network(g.input_shape())

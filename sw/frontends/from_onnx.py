"""`sw.from_onnx`: an ONNX graph as `sw.Layer`s.

A chain from its one input to its one output through ``Gemm``, ``MatMul``
(+ ``Add``), ``Relu``, ``Flatten``, ``Identity`` and ``Dropout``, with
weights and biases as initializers or ``Constant`` nodes, becomes a list of
`sw.Layer`; a graph with convolutions becomes an `sw.Network`
(`onnx_network`).
The ``onnx`` package is an optional extra (``pip install 'openeie[onnx]'``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model import Layer, ModelError
from .chain import Chain
from .onnx_network import NETWORK_OPS, network_from_onnx

__all__ = ["from_onnx"]

SUPPORTED = "Gemm, MatMul, Add, Relu, Flatten, Identity, Dropout, Constant"


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ModelError("the onnx package is not installed: pip install 'openeie[onnx]' (or onnx itself)") from None
    return onnx


def _load(model):
    onnx = _onnx()
    if isinstance(model, onnx.ModelProto):
        return model, "the ONNX model"
    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        return onnx.load(str(path)), str(path)
    except Exception as e:      # protobuf's DecodeError and others
        raise ModelError(f"{path}: not an ONNX model ({type(e).__name__}: {e})") from None


def _attrs(node) -> dict:
    onnx = _onnx()
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def from_onnx(model):
    """Float `sw.Layer`s from an ONNX model (a path or an ``onnx.ModelProto``);
    an `sw.Network` if it has convolutions, pooling, BatchNorm or a Concat
    (see `sw.frontends.onnx_network`).
    ``Gemm`` (any ``alpha``, ``beta``, ``transB``; ``transA`` 0), ``MatMul``
    by a constant, optionally followed by ``Add`` of a constant (its bias),
    each optionally followed by ``Relu``; ``Flatten`` (axis 1),
    ``Identity`` and ``Dropout`` pass values through. Any other operator, a
    branch, or a weight computed at run time is refused, naming the node."""
    from onnx import numpy_helper
    proto, source = _load(model)
    graph = proto.graph
    if any(node.op_type in NETWORK_OPS for node in graph.node):
        return network_from_onnx(proto, source, _attrs)
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ModelError(f"{source}: the graph has {len(inputs)} inputs ({', '.join(inputs) or 'none'}); "
                         f"OpenEIE imports a chain with one input")
    if len(graph.output) != 1:
        raise ModelError(f"{source}: the graph has {len(graph.output)} outputs; OpenEIE imports a chain with one")
    chain = Chain(source)
    current = inputs[0]
    for k, node in enumerate(graph.node):
        where = f"node {node.name or k} ({node.op_type})"
        a = _attrs(node)
        if node.op_type == "Constant":
            if "value" not in a:
                raise ModelError(f"{source}: {where}: only Constant nodes with a tensor 'value' are supported")
            consts[node.output[0]] = numpy_helper.to_array(a["value"])
            continue
        data = [i for i in node.input if i and i not in consts]
        if data != [current]:
            raise ModelError(f"{source}: {where} reads {', '.join(data) or 'only constants'}, not the chain's "
                             f"value {current!r}: OpenEIE imports a chain of layers (no branches, no weights "
                             f"computed at run time)")

        def const(i, what):
            if len(node.input) <= i or not node.input[i]:
                return None
            if node.input[i] not in consts:
                raise ModelError(f"{source}: {where}: its {what} ({node.input[i]}) is not a constant")
            return consts[node.input[i]].astype(np.float64)

        if node.op_type == "Gemm":
            if a.get("transA", 0):
                raise ModelError(f"{source}: {where} has transA = 1: the input must be (batch, features)")
            if node.input[0] != current:
                raise ModelError(f"{source}: {where}: the chain's value must be Gemm's first input A")
            w = const(1, "weight B")
            w = (w if a.get("transB", 0) else w.T) * a.get("alpha", 1.0)
            c = const(2, "bias C")
            chain.affine(w, None if c is None else c * a.get("beta", 1.0), where)
        elif node.op_type == "MatMul":
            if node.input[0] != current:
                raise ModelError(f"{source}: {where}: the chain's value must be MatMul's first input "
                                 f"(x @ W, W a constant)")
            chain.affine(const(1, "weight").T, None, where)
        elif node.op_type == "Add":
            other = [i for i in node.input if i != current]
            if len(other) != 1:
                raise ModelError(f"{source}: {where} adds the chain's value to itself")
            chain.add_bias(consts[other[0]].astype(np.float64), where)
        elif node.op_type == "Relu":
            chain.relu(where)
        elif node.op_type == "Flatten":
            if a.get("axis", 1) != 1:
                raise ModelError(f"{source}: {where} has axis = {a['axis']}: only axis 1, which keeps the "
                                 f"batch, is supported")
        elif node.op_type == "Dropout":
            if len(node.input) > 2 and node.input[2] and node.input[2] in consts and consts[node.input[2]]:
                raise ModelError(f"{source}: {where} is in training mode (training_mode is true)")
        elif node.op_type != "Identity":
            raise ModelError(f"{source}: {where} is not supported: OpenEIE imports {SUPPORTED}")
        current = node.output[0]
    if graph.output[0].name != current:
        raise ModelError(f"{source}: the graph's output {graph.output[0].name!r} is not the end of the chain "
                         f"({current!r})")
    return chain.layers()

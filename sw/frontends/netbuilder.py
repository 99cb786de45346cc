"""The one structure both importers build for a network with convolutions:
a sequence of `sw.net` nodes, with a BatchNorm folded into the layer before
it and a bias added by a following ``Add`` (ONNX's MatMul + Add)."""

from __future__ import annotations

import numpy as np

from ..model import ModelError
from ..net import (AdaptiveAvgPool2d, AvgPool2d, ChannelShuffle, Concat, Conv2d, Flatten, Linear, MaxPool2d, Network,
                   ReLU)


class NetBuilder:
    """Collects nodes in order; `where` strings name the module or node in
    errors."""

    def __init__(self, source: str):
        self.source = source
        self.nodes: list = []

    def error(self, where: str, msg: str) -> ModelError:
        return ModelError(f"{self.source}: {where}: {msg}")

    def conv(self, weight, bias, stride, padding, groups, where: str):
        try:
            self.nodes.append(Conv2d(np.asarray(weight, dtype=np.float64), bias, stride=stride, padding=padding,
                                     groups=groups))
        except ModelError as e:
            raise self.error(where, str(e)) from None

    def linear(self, weight, bias, where: str):
        try:
            self.nodes.append(Linear(np.asarray(weight, dtype=np.float64), bias))
        except ModelError as e:
            raise self.error(where, str(e)) from None

    def _weighted_last(self, where: str, what: str):
        last = self.nodes[-1] if self.nodes else None
        if not isinstance(last, (Conv2d, Linear)):
            raise self.error(where, f"{what} must follow a convolution or linear layer directly (it is folded into "
                                    f"that layer's weights and bias), not {last!r}")
        return last

    def add_bias(self, bias, where: str):
        last = self._weighted_last(where, "an added constant")
        b = np.asarray(bias, dtype=np.float64).reshape(-1)
        n = last.weight.shape[0]
        if b.size not in (1, n):
            raise self.error(where, f"a constant of {b.size} values added to {n} outputs")
        last.bias = last.bias + b

    def batchnorm(self, gamma, beta, mean, var, eps: float, where: str):
        """``gamma * (y - mean) / sqrt(var + eps) + beta`` folded into the
        layer before: its weights and bias scaled per output channel."""
        last = self._weighted_last(where, "a BatchNorm")
        scale = np.asarray(gamma, dtype=np.float64) / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
        if scale.shape != (last.weight.shape[0],):
            raise self.error(where, f"{scale.size} channels for a layer of {last.weight.shape[0]} outputs")
        last.weight = last.weight * scale.reshape(-1, *([1] * (last.weight.ndim - 1)))
        last.bias = (last.bias - np.asarray(mean, dtype=np.float64)) * scale + np.asarray(beta, dtype=np.float64)

    def relu(self, where: str):
        if not (self.nodes and isinstance(self.nodes[-1], ReLU)):
            self.nodes.append(ReLU())

    def pool(self, mode: str, kernel, stride, padding, where: str):
        try:
            self.nodes.append((MaxPool2d if mode == "max" else AvgPool2d)(kernel, stride, padding))
        except ModelError as e:
            raise self.error(where, str(e)) from None

    def global_pool(self, output_size=1):
        self.nodes.append(AdaptiveAvgPool2d(output_size))

    def flatten(self):
        self.nodes.append(Flatten())

    def shuffle(self, groups: int):
        self.nodes.append(ChannelShuffle(groups))

    def concat(self, branches):
        self.nodes.append(Concat(*branches))

    def network(self, input_shape) -> Network:
        try:
            return Network(input_shape, self.nodes)
        except ModelError as e:
            raise ModelError(f"{self.source}: {e}") from None

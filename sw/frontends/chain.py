"""The one structure both importers build: affine layers, each with an
optional ReLU after it."""

from __future__ import annotations

import numpy as np

from ..model import Layer, ModelError


class Chain:
    """Collects ``y = act(W x + b)`` layers in order. `where` strings name
    the module or node in errors."""

    def __init__(self, source: str):
        self.source = source
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        self.relus: list[bool] = []
        self.wheres: list[str] = []

    def affine(self, weight, bias, where: str):
        w = np.asarray(weight, dtype=np.float64)
        if w.ndim != 2:
            raise ModelError(f"{self.source}: {where}: a weight of shape {w.shape}; a layer's weight is 2-D")
        if self.weights and w.shape[1] != self.weights[-1].shape[0]:
            raise ModelError(f"{self.source}: {where} takes {w.shape[1]} inputs but {self.wheres[-1]} "
                             f"gives {self.weights[-1].shape[0]}")
        b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
        self.weights.append(w)
        self.biases.append(self._bias(b, w.shape[0], where))
        self.relus.append(False)
        self.wheres.append(where)

    def add_bias(self, bias, where: str):
        """A bias added after the last layer (ONNX's MatMul + Add)."""
        if not self.weights or self.relus[-1]:
            raise ModelError(f"{self.source}: {where} adds a constant "
                             f"{'before any layer' if not self.weights else 'after a ReLU'}: "
                             f"the accelerator adds a bias only to a layer's weighted sum")
        self.biases[-1] = self.biases[-1] + self._bias(np.asarray(bias, dtype=np.float64),
                                                       self.weights[-1].shape[0], where)

    def relu(self, where: str):
        if not self.weights:
            raise ModelError(f"{self.source}: {where} is a ReLU before any layer: the accelerator applies "
                             f"ReLU to a layer's outputs, not to the model's inputs")
        self.relus[-1] = True             # ReLU twice is ReLU once

    def _bias(self, b: np.ndarray, n_out: int, where: str) -> np.ndarray:
        if b.size == 1:
            return np.full(n_out, float(b.reshape(-1)[0]))
        b = b.reshape(-1) if b.ndim == 2 and 1 in b.shape else b
        if b.shape != (n_out,):
            raise ModelError(f"{self.source}: {where}: a bias of shape {b.shape} for {n_out} outputs")
        return b

    def layers(self) -> list[Layer]:
        if not self.weights:
            raise ModelError(f"{self.source}: holds no layer the accelerator runs (Linear, Gemm or MatMul)")
        return [Layer(w, b, r) for w, b, r in zip(self.weights, self.biases, self.relus)]

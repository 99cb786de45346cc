"""Models before and after compression.

Orientation follows PyTorch's ``Linear.weight``: a layer's weight is
``n_out x n_in`` and computes ``y = act(W x + b)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .arrays import as_array, check_ndim, integer_array, real_array

__all__ = ["Layer", "CompressedLayer", "CompressedModel", "ModelError"]


class ModelError(ValueError):
    """A model is malformed; the message names the layer and the values."""


MAX_FRAC_BITS = 64


def _as_csr(matrix, name: str) -> sp.csr_array:
    if sp.issparse(matrix):
        csr = sp.csr_array(matrix)
    else:
        arr = as_array(matrix, name, ModelError)
        check_ndim(arr, 2, f"{name} (n_out x n_in)", ModelError)
        csr = sp.csr_array(arr)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def _check_shape(shape, name: str):
    if 0 in shape:
        raise ModelError(f"{name} has shape {shape}: a layer needs at least one input and one output")


def _check_relu(relu) -> bool:
    if not isinstance(relu, (bool, np.bool_)):
        raise ModelError(f"relu must be True or False, got {relu!r}")
    return bool(relu)


class Layer:
    """A float layer ``y = act(W x + b)``.

    `weight`: ``n_out x n_in`` numpy array or scipy sparse matrix.
    `bias`: ``(n_out,)`` or None (zeros). `relu`: ReLU (True) or identity.
    """

    def __init__(self, weight, bias=None, relu: bool = True):
        if sp.issparse(weight):
            if np.iscomplexobj(weight.data) or not np.issubdtype(weight.dtype, np.number):
                raise ModelError(f"weight must hold real numbers, got dtype {weight.dtype}")
            weight = sp.csr_array(weight, dtype=np.float64)
            if not np.all(np.isfinite(weight.data)):
                bad = np.argwhere(~np.isfinite(weight.toarray()))[0]
                raise ModelError(f"weight has a NaN or infinite value at row {bad[0]}, column {bad[1]}")
        else:
            weight = real_array(weight, "weight", ModelError)
            check_ndim(weight, 2, "weight (n_out x n_in)", ModelError)
        _check_shape(weight.shape, "weight")
        n_out = weight.shape[0]
        if bias is None:
            bias = np.zeros(n_out)
        bias = real_array(bias, "bias", ModelError)
        if bias.shape != (n_out,):
            raise ModelError(f"bias must have shape ({n_out},) to match the weight's {n_out} rows, "
                             f"got {bias.shape}")
        self.weight = weight
        self.bias = bias
        self.relu = _check_relu(relu)

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    def dense(self) -> np.ndarray:
        return self.weight.toarray() if sp.issparse(self.weight) else self.weight

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Float forward pass; `x` is ``(n_in,)`` or ``(B, n_in)``."""
        y = np.asarray(x, dtype=np.float64) @ self.weight.T + self.bias
        return np.maximum(y, 0.0) if self.relu else y

    def __repr__(self):
        return f"Layer({self.n_in} -> {self.n_out}, relu={self.relu})"


class CompressedLayer:
    """The integer form of a layer.

    `codes`: ``n_out x n_in`` integers (0 = pruned), numpy or scipy sparse;
    kept as a canonical ``scipy.sparse.csr_array``.
    `codebook`: signed integer values, ``codebook[0] == 0``; a code ``c``
    stands for the weight ``codebook[c] / 2**fw``.
    `bias`: ``(n_out,)`` integers in accumulator format (``fa + fw`` fraction
    bits), or None for zeros.
    `fa`, `fw`, `fo`: fraction bits of input activations, codebook values and
    outputs; ``shift = fa + fw - fo`` must not be negative.
    `src`: the model layer whose outputs this one reads (None: the one
    before it; -1: the model's inputs). `exit_threshold`: None, or this
    layer ends an exit head (docs/design.md §15): when the margin between
    its largest and second-largest output reaches the threshold (an integer
    in its output format), the run ends with its outputs.
    """

    def __init__(self, codes, codebook, bias=None, relu: bool = True, fa: int = 0, fw: int = 0, fo: int = 0, *,
                 src: int | None = None, exit_threshold: int | None = None):
        if sp.issparse(codes):
            if codes.nnz and not np.issubdtype(codes.dtype, np.integer):
                raise ModelError(f"codes must be integers, got dtype {codes.dtype}")
        else:
            arr = as_array(codes, "codes", ModelError)
            if arr.ndim == 2 and arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise ModelError(f"codes must be integers, got dtype {arr.dtype}")
        codes = _as_csr(codes, "codes")
        _check_shape(codes.shape, "codes")
        codebook = integer_array(codebook, "codebook", ModelError)
        if codebook.ndim != 1 or codebook.size == 0:
            raise ModelError(f"codebook must be a non-empty 1-D array, got shape {codebook.shape}")
        if codebook[0] != 0:
            raise ModelError(f"codebook[0] must be 0 (code 0 is the reserved zero), got {codebook[0]}")
        if codes.nnz:
            lo, hi = int(codes.data.min()), int(codes.data.max())
            if lo < 0 or hi >= codebook.size:
                r, c = codes.nonzero()
                bad = int(np.argmax((codes.data < 0) | (codes.data >= codebook.size)))
                raise ModelError(f"code {int(codes.data[bad])} at row {r[bad]}, column {c[bad]} is "
                                 f"outside the codebook of {codebook.size} values")
        n_out = codes.shape[0]
        if bias is None:
            bias = np.zeros(n_out, dtype=np.int64)
        bias = integer_array(bias, "bias (accumulator format)", ModelError)
        if bias.shape != (n_out,):
            raise ModelError(f"bias must have shape ({n_out},), got {bias.shape}")
        for name, v in (("fa", fa), ("fw", fw), ("fo", fo)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_)) or not 0 <= v <= MAX_FRAC_BITS:
                raise ModelError(f"{name} must be an int in 0..{MAX_FRAC_BITS}, got {v!r}")
        if fa + fw - fo < 0:
            raise ModelError(f"shift = fa + fw - fo = {fa} + {fw} - {fo} is negative; "
                             f"the output cannot have more fraction bits than the product")
        self.codes = sp.csr_array(codes, dtype=np.uint8 if codebook.size <= 256 else np.int64)
        self.codebook = codebook
        self.bias = bias
        self.relu = _check_relu(relu)
        self.fa, self.fw, self.fo = int(fa), int(fw), int(fo)
        for name, v in (("src", src), ("exit_threshold", exit_threshold)):
            if v is not None and (not isinstance(v, (int, np.integer)) or isinstance(v, (bool, np.bool_))
                                  or v < (-1 if name == "src" else 0)):
                raise ModelError(f"{name} must be None or an int >= {-1 if name == 'src' else 0}, got {v!r}")
        self.src = None if src is None else int(src)
        self.exit_threshold = None if exit_threshold is None else int(exit_threshold)

    @property
    def n_out(self) -> int:
        return self.codes.shape[0]

    @property
    def n_in(self) -> int:
        return self.codes.shape[1]

    @property
    def shift(self) -> int:
        return self.fa + self.fw - self.fo

    @property
    def nnz(self) -> int:
        return self.codes.nnz

    def weights(self) -> sp.csr_array:
        """The integer weight matrix ``codebook[codes]`` (int64, sparse)."""
        w = sp.csr_array((self.codebook[self.codes.data], self.codes.indices, self.codes.indptr),
                         shape=self.codes.shape)
        return w

    def float_weight(self) -> sp.csr_array:
        return self.weights().astype(np.float64) / float(2 ** self.fw)

    def float_bias(self) -> np.ndarray:
        return self.bias / float(2 ** (self.fa + self.fw))

    def __eq__(self, other):
        if not isinstance(other, CompressedLayer):
            return NotImplemented
        n = max(self.codebook.size, other.codebook.size)
        pad = lambda c: np.pad(c, (0, n - c.size))
        return (self.codes.shape == other.codes.shape
                and (self.codes != other.codes).nnz == 0
                and np.array_equal(pad(self.codebook), pad(other.codebook))
                and np.array_equal(self.bias, other.bias)
                and (self.relu, self.fa, self.fw, self.fo, self.src, self.exit_threshold)
                == (other.relu, other.fa, other.fw, other.fo, other.src, other.exit_threshold))

    def __repr__(self):
        return (f"CompressedLayer({self.n_in} -> {self.n_out}, nnz={self.nnz}, relu={self.relu}, "
                f"fa={self.fa}, fw={self.fw}, fo={self.fo})")


def _source(layer: CompressedLayer, i: int) -> int:
    """The layer `layer` (at `i`) reads: -1 for the model's inputs."""
    src = i - 1 if layer.src is None else layer.src
    if i == 0 and src != -1:
        raise ModelError("layer 0 reads the model's inputs (its src must be None or -1)")
    if i and not 0 <= src < i:
        raise ModelError(f"layer {i}: src = {src} must be an earlier layer (0..{i - 1}); only layer 0 reads "
                         f"the model's inputs")
    return src


def check_chain(layers, kind: type, what: str) -> list:
    """`layers` as a list: non-empty, every item a `kind`, and each layer's
    inputs the previous layer's outputs. Raises `ModelError` naming the layer."""
    layers = list(layers)
    if not layers:
        raise ModelError(f"{what} needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, kind):
            raise ModelError(f"layer {i} is a {type(layer).__name__}, not an sw.{kind.__name__}")
        if i and layer.n_in != layers[i - 1].n_out:
            raise ModelError(f"layer {i} takes {layer.n_in} inputs but layer {i - 1} produces "
                             f"{layers[i - 1].n_out} outputs")
    return layers


class CompressedModel:
    """A chain of `CompressedLayer`s; layer ``i``'s output is layer ``i+1``'s
    input, in the same fixed-point format (``fo`` of one is ``fa`` of the next).
    With early exits (docs/design.md §15) the layers are in the order they
    run, a layer may read an earlier one's outputs (`CompressedLayer.src`),
    and a layer with an `exit_threshold` ends a head whose outputs end the
    run when it is confident.

    `report` holds what `sw.compress` measured, one dict per layer (empty for
    models built by hand).
    """

    def __init__(self, layers: Sequence[CompressedLayer], input_frac_bits: int, report=None):
        layers = list(layers)
        if not layers:
            raise ModelError("a model needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, CompressedLayer):
                raise ModelError(f"layer {i} is a {type(layer).__name__}, not an sw.CompressedLayer")
        sources = [_source(layer, i) for i, layer in enumerate(layers)]
        if layers[0].fa != input_frac_bits:
            raise ModelError(f"layer 0: fa = {layers[0].fa} does not match input_frac_bits = {input_frac_bits}")
        for i in range(1, len(layers)):
            src, cur = sources[i], layers[i]
            prev = layers[src]
            if cur.n_in != prev.n_out:
                raise ModelError(f"layer {i} takes {cur.n_in} inputs but layer {src} produces {prev.n_out} outputs")
            if cur.fa != prev.fo:
                raise ModelError(f"layer {i}: fa = {cur.fa} does not match layer {src}'s fo = {prev.fo}")
        last = layers[-1]
        if last.exit_threshold is not None:
            raise ModelError(f"layer {len(layers) - 1}: the last layer always ends the run; it has no exit test")
        for i, layer in enumerate(layers[:-1]):
            if layer.exit_threshold is not None and (layer.n_out != last.n_out or layer.n_out < 2):
                raise ModelError(f"layer {i}: an exit head gives the run's outputs, so it has as many as the last "
                                 f"layer ({last.n_out}, at least 2 for a margin), not {layer.n_out}")
        self.sources = sources
        self.layers = layers
        self.input_frac_bits = int(input_frac_bits)
        self.report = list(report) if report is not None else []

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def output_frac_bits(self) -> int:
        return self.layers[-1].fo

    @property
    def exits(self) -> list[int]:
        """The layers that end an exit head, in the order they run."""
        return [i for i, l in enumerate(self.layers) if l.exit_threshold is not None]

    def float_layers(self) -> list[Layer]:
        """The model as float layers (dequantised codebook and bias)."""
        return [Layer(l.float_weight(), l.float_bias(), l.relu) for l in self.layers]

    def __eq__(self, other):
        if not isinstance(other, CompressedModel):
            return NotImplemented
        return self.input_frac_bits == other.input_frac_bits and self.layers == other.layers

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        return f"CompressedModel({len(self.layers)} layers, {self.n_in} -> {self.n_out})"

"""`pack`: a compressed model to the accelerator's image; `unpack`: back.

Row ``r`` of a layer belongs to PE ``r % n_pe`` as local row ``r // n_pe``.
Per PE the slice is stored input-major (EIE's interleaved compressed columns),
each entry ``(run, code)`` with padding entries ``(R, 0)`` where a run of zeros
is longer than ``R = 2**run_bits - 1`` (DESIGN.md section 4).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .config import Config
from .fixedpoint import fits, signed_range
from .format import entry_codes, entry_dtype, entry_runs, make_entries
from .image import Image, ImageLayer
from .model import CompressedLayer, CompressedModel

__all__ = ["pack", "unpack", "pack_layer", "PackError"]


class PackError(ValueError):
    """A model does not fit a configuration; the message names the layer, the
    PE, what is needed and what the configuration has."""


def pack_layer(codes: sp.csr_array, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Encode one layer's codes for every PE.

    Returns `(entries, colptr)`: `entries` holds every PE's entries back to
    back (PE-major, then input-major), `colptr` (int64, ``n_pe * n_in + 1``)
    the start of column ``(k, j)`` at ``colptr[k * n_in + j]``.

    The trick: viewed as a ``rows_per_pe x (n_pe * n_in)`` matrix ``M`` with
    ``M[r // n_pe, (r % n_pe) * n_in + j] = W[r, j]``, whose CSR arrays are
    W's own with shifted column indices, one ``tocsc()`` puts every nonzero in
    EIE order with local rows increasing inside each column.
    """
    n_pe = config.n_pe
    n_out, n_in = codes.shape
    rows = -(-n_out // n_pe)
    indptr = np.asarray(codes.indptr, dtype=np.int64)
    indptr = np.concatenate([indptr, np.full(rows * n_pe - n_out, indptr[-1])])
    pe_of_row = np.arange(rows * n_pe, dtype=np.int64) % n_pe
    pe_of_nz = np.repeat(pe_of_row, np.diff(indptr))
    index_dtype = np.int32 if n_pe * n_in < 2**31 else np.int64
    m = sp.csc_array(sp.csr_array(
        (codes.data, (codes.indices + pe_of_nz * n_in).astype(index_dtype), indptr[::n_pe]),
        shape=(rows, n_pe * n_in)))
    local = m.indices.astype(np.int64)
    nz_ptr = m.indptr.astype(np.int64)
    nnz = local.size

    prev = np.empty(nnz, dtype=np.int64)
    prev[1:] = local[:-1]
    starts = nz_ptr[:-1]
    prev[starts[starts < nnz]] = -1           # first nonzero of each column
    gap = local - prev - 1
    pads = gap >> config.run_bits             # each padding entry skips R + 1 rows
    ends = np.cumsum(pads + 1)                # one past each nonzero's entry
    total = int(ends[-1]) if nnz else 0
    entries = np.full(total, config.max_run, dtype=entry_dtype(config))   # (R, 0)
    entries[ends - 1] = make_entries(gap & config.max_run, m.data, config)
    colptr = np.concatenate([[0], ends])[nz_ptr]
    return entries, colptr


def decode_layer(entries: np.ndarray, colptr: np.ndarray, n_in: int, config: Config):
    """Inverse of `pack_layer`: `(pe, local_row, column, code)` for every
    entry, padding included (code 0)."""
    counts = np.diff(colptr)
    col = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    steps = entry_runs(entries, config).astype(np.int64) + 1
    csum = np.cumsum(steps)
    base = np.concatenate([[0], csum])[colptr[:-1]]      # csum before each column
    local = csum - np.repeat(base, counts) - 1
    return col // n_in, local, col % n_in, entry_codes(entries, config).astype(np.int64)


def _check_layer(i: int, layer: CompressedLayer, config: Config):
    if layer.codebook.size > config.n_codes:
        raise PackError(f"layer {i}: codebook has {layer.codebook.size} values but code_bits = "
                        f"{config.code_bits} allows {config.n_codes}")
    if not fits(layer.codebook, config.weight_bits):
        lo, hi = signed_range(config.weight_bits)
        bad = int(np.argmax((layer.codebook < lo) | (layer.codebook > hi)))
        raise PackError(f"layer {i}: codebook[{bad}] = {layer.codebook[bad]} does not fit "
                        f"weight_bits = {config.weight_bits} (range {lo}..{hi})")
    if not fits(layer.bias, config.acc_bits):
        lo, hi = signed_range(config.acc_bits)
        bad = int(np.argmax((layer.bias < lo) | (layer.bias > hi)))
        raise PackError(f"layer {i}: bias[{bad}] = {layer.bias[bad]} does not fit "
                        f"acc_bits = {config.acc_bits} (range {lo}..{hi})")
    if layer.shift > config.max_shift:
        raise PackError(f"layer {i}: shift = fa + fw - fo = {layer.shift} exceeds the largest "
                        f"the hardware implements ({config.max_shift} = acc_bits - 1)")


def _check_capacity(layers: list[ImageLayer], config: Config):
    n_pe = config.n_pe
    if len(layers) > config.max_layers:
        raise PackError(f"the model has {len(layers)} layers but Config.max_layers is {config.max_layers}")
    pointers = rows = 0
    entries = np.zeros(n_pe, dtype=np.int64)
    for i, layer in enumerate(layers):
        pointers += layer.n_in + 1
        if pointers > config.pointer_depth:
            raise PackError(f"layer {i}: needs {layer.n_in + 1} pointers in every PE, {pointers} in all "
                            f"up to this layer, but Config.pointer_depth is {config.pointer_depth}")
        rows += layer.rows
        if rows > config.row_depth:
            raise PackError(f"layer {i}: needs {layer.rows} output rows in every PE ({layer.n_out} outputs "
                            f"over {n_pe} PEs), {rows} in all up to this layer, but Config.row_depth "
                            f"is {config.row_depth}")
        entries += layer.pe_entry_counts()
        if entries.max() > config.weight_depth:
            k = int(np.argmax(entries))
            raise PackError(f"layer {i}: PE {k} needs {int(entries[k])} sparse-matrix entries in all up to "
                            f"this layer ({int(layer.pe_entry_counts()[k])} in this layer, padding "
                            f"included), but Config.weight_depth is {config.weight_depth}")


def pack(model: CompressedModel, config: Config | None = None) -> Image:
    """Pack `model` for `config` (default `Config()`) as DESIGN.md section 4
    specifies; raises `PackError` if it does not fit."""
    config = Config() if config is None else config
    if not isinstance(model, CompressedModel):
        raise TypeError(f"pack() takes a CompressedModel, got {type(model).__name__}")
    image_layers = []
    for i, layer in enumerate(model.layers):
        _check_layer(i, layer, config)
        if layer.nnz and int(layer.codes.data.max()) >= config.n_codes:
            raise PackError(f"layer {i}: code {int(layer.codes.data.max())} needs more than "
                            f"code_bits = {config.code_bits}")
        entries, colptr = pack_layer(layer.codes, config)
        codebook = np.zeros(config.n_codes, dtype=np.int64)
        codebook[:layer.codebook.size] = layer.codebook
        image_layers.append(ImageLayer(
            config=config, n_in=layer.n_in, n_out=layer.n_out, relu=layer.relu,
            fa=layer.fa, fw=layer.fw, fo=layer.fo, codebook=codebook, bias=layer.bias.copy(),
            entries=entries, colptr=colptr))
        # fail early on a layer that alone cannot fit
        _check_capacity(image_layers, config)
    return Image(config, image_layers)


def unpack(image: Image) -> CompressedModel:
    """The exact inverse of `pack`: the `CompressedModel` an image holds
    (codebooks come back padded to ``2**code_bits`` values)."""
    layers = []
    for layer in image.layers:
        layers.append(CompressedLayer(layer.codes(), layer.codebook.copy(), layer.bias.copy(),
                                      layer.relu, layer.fa, layer.fw, layer.fo))
    return CompressedModel(layers, image.layers[0].fa)

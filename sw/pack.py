"""`pack`: a compressed model to the accelerator's image; `unpack`: back.

Row ``r`` of a layer belongs to PE ``r % n_pe`` as local row ``r // n_pe``.
Per PE the slice is stored input-major (EIE's interleaved compressed columns),
each entry ``(run, code)`` with padding entries ``(R, 0)`` where a run of zeros
is longer than ``R = 2**run_bits - 1`` (docs/design.md §4).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .config import Config
from .fixedpoint import fits, signed_range
from .format import encode_columns
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

    PE ``k``'s rows are ``codes[k::n_pe]``; their CSC form lists every column's
    nonzeros in increasing local row, which is EIE's order. Converting one PE
    block at a time is faster than one conversion of the whole matrix: each
    block fits in cache.
    """
    n_pe, n_in = config.n_pe, codes.shape[1]
    parts = []
    colptr = np.zeros(n_pe * n_in + 1, dtype=np.int64)
    offset = 0
    for k in range(n_pe):
        block = codes[k::n_pe].tocsc()
        entries, pointers = encode_columns(block.indices, block.data, block.indptr, config)
        colptr[k * n_in + 1:(k + 1) * n_in + 1] = pointers[1:] + offset
        offset += entries.size
        parts.append(entries)
    return np.concatenate(parts), colptr


def _check_layer(i: int, layer: CompressedLayer, config: Config):
    if layer.codebook.size > config.n_codes:
        raise PackError(f"layer {i}: codebook has {layer.codebook.size} values but code_bits = "
                        f"{config.code_bits} allows {config.n_codes}")
    for what, values, field in (("codebook", layer.codebook, "weight_bits"), ("bias", layer.bias, "acc_bits")):
        bits = getattr(config, field)
        if not fits(values, bits):
            lo, hi = signed_range(bits)
            bad = int(np.argmax((values < lo) | (values > hi)))
            raise PackError(f"layer {i}: {what}[{bad}] = {values[bad]} does not fit "
                            f"{field} = {bits} (range {lo}..{hi})")
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
        rows += layer.rows
        if layer.rows > config.row_depth:
            raise PackError(f"layer {i}: needs {layer.rows} output rows in every PE ({layer.n_out} outputs "
                            f"over {n_pe} PEs), but Config.row_depth is {config.row_depth}")
        # the banks hold every pointer, then two halves of every bias row
        slots = 2 * -(-pointers // 2) + 2 * rows
        if slots > config.pointer_depth:
            raise PackError(f"layer {i}: the pointer banks need {slots} slots in every PE up to this layer "
                            f"({pointers} pointers, n_in + 1 per layer, and 2 per bias row, {rows} rows), "
                            f"but Config.pointer_depth is {config.pointer_depth}")
        entries += layer.pe_entry_counts()
        if entries.max() > config.weight_depth:
            k = int(np.argmax(entries))
            raise PackError(f"layer {i}: PE {k} needs {int(entries[k])} sparse-matrix entries in all up to "
                            f"this layer ({int(layer.pe_entry_counts()[k])} in this layer, padding "
                            f"included), but Config.weight_depth is {config.weight_depth}")


def pack(model: CompressedModel, config: Config | None = None) -> Image:
    """Pack `model` for `config` (default `Config()`) as docs/design.md §4
    specifies; raises `PackError` if it does not fit."""
    config = Config() if config is None else config
    if not isinstance(model, CompressedModel):
        raise TypeError(f"pack() takes a CompressedModel, got {type(model).__name__}")
    image_layers = []
    for i, layer in enumerate(model.layers):
        _check_layer(i, layer, config)
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

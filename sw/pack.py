"""`pack`: a compressed model to the accelerator's image; `unpack`: back.

Row ``r`` of a layer belongs to PE ``r % n_pe`` as local row ``r // n_pe``
(or, packed with ``balance=True``, wherever `balanced_order` puts it).
Per PE the slice is stored input-major (EIE's interleaved compressed columns),
each entry ``(run, code)`` with padding entries ``(R, 0)`` where a run of zeros
is longer than ``R = 2**run_bits - 1`` (docs/design.md §4).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .config import Config
from .fixedpoint import fits, signed_range
from .format import MAX_EXIT_ACT_BITS, column_gaps, encode_columns
from .image import Image, ImageLayer, assign_banks
from .model import CompressedLayer, CompressedModel

__all__ = ["pack", "unpack", "pack_layer", "balanced_order", "short_run_order", "PackError"]


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


def balanced_order(codes: sp.csr_array, n_pe: int) -> np.ndarray | None:
    """A row order that evens the PEs' work (docs/design.md §4.1): rows by
    decreasing nonzero count (ties by row), each to the PE whose projected
    total is least: its nonzeros so far plus its free positions (a PE holds
    the positions ``h = i * n_pe + k < n_out``) times the mean of the rows
    still to place, so a PE with a position fewer takes heavier rows. Within
    a PE, rows in increasing order (short zero runs stay short). Returns the
    row at each position, or None where that is ``r % n_pe``'s own order."""
    n_out = codes.shape[0]
    nnz = np.diff(codes.indptr).astype(np.float64)
    free = np.array([len(range(k, n_out, n_pe)) for k in range(n_pe)], dtype=np.float64)
    load = np.zeros(n_pe)
    rows = [[] for _ in range(n_pe)]
    left_sum, left = float(nnz.sum()), n_out
    for r in np.argsort(-nnz, kind="stable").tolist():
        projected = np.where(free > 0, load + free * (left_sum / left), np.inf)
        k = int(np.argmin(projected))
        rows[k].append(r)
        load[k] += nnz[r]
        free[k] -= 1
        left_sum, left = left_sum - nnz[r], left - 1
    order = np.empty(n_out, dtype=np.int64)
    for k in range(n_pe):
        order[k::n_pe] = sorted(rows[k])
    return None if np.array_equal(order, np.arange(n_out)) else order


def _padding(nonzero: np.ndarray, config: Config) -> int:
    """Padding entries of a PE's rows (bool ``rows x n_in``, in local order),
    by the rule `encode_columns` encodes with (`column_gaps`)."""
    csc = sp.csc_array(nonzero)
    return int((column_gaps(csc.indices, csc.indptr) >> config.run_bits).sum())


def short_run_order(codes: sp.csr_array, config: Config, order: np.ndarray | None = None) -> np.ndarray | None:
    """`order` (the model's row at each position; None: ``r % n_pe``) with
    each PE's rows reordered to shorten the zero runs of its columns, so
    that fewer padding entries are needed (docs/design.md §4.1): greedily,
    the next local row is the one whose nonzeros fall in the columns whose
    current run is longest (weight ``(run % (max_run + 1) + 1) ** 6``, since
    a run that reaches ``max_run + 1`` costs an entry). A PE keeps its old
    order where that needs no more padding. The PEs' rows and nonzero counts
    do not change, only the order within each."""
    n_out, n_pe = codes.shape[0], config.n_pe
    order = np.arange(n_out) if order is None else np.asarray(order, dtype=np.int64).copy()
    span = config.max_run + 1
    for k in range(n_pe):
        rows = order[k::n_pe]
        nonzero = codes[rows].toarray() != 0
        weights = nonzero.astype(np.float64)
        left = np.ones(rows.size, dtype=bool)
        run = np.zeros(codes.shape[1])
        pick = np.empty(rows.size, dtype=np.int64)
        for i in range(rows.size):
            score = weights @ ((run % span + 1.0) ** 6)
            score[~left] = -1.0
            r = int(np.argmax(score))
            pick[i], left[r] = r, False
            run = np.where(nonzero[r], 0.0, run + 1.0)
        if _padding(nonzero[pick], config) < _padding(nonzero, config):
            order[k::n_pe] = rows[pick]
    return None if np.array_equal(order, np.arange(n_out)) else order


def _row_orders(model: CompressedModel, config: Config, balance: bool, row_orders, shorten_runs: bool) -> list:
    if row_orders is None:
        orders = [balanced_order(l.codes, config.n_pe) if balance else None for l in model.layers]
        if shorten_runs:
            orders = [short_run_order(l.codes, config, o) for l, o in zip(model.layers, orders)]
        return orders
    if balance or shorten_runs:
        raise ValueError("give balance=True / shorten_runs=True or row_orders, not both")
    row_orders = list(row_orders)
    if len(row_orders) != len(model.layers):
        raise ValueError(f"row_orders has {len(row_orders)} entries for {len(model.layers)} layers")
    out = []
    for i, (order, layer) in enumerate(zip(row_orders, model.layers)):
        if order is not None:
            order = np.asarray(order)
            if order.shape != (layer.n_out,) or not np.array_equal(np.sort(order), np.arange(layer.n_out)):
                raise ValueError(f"row_orders[{i}] is not a permutation of layer {i}'s {layer.n_out} outputs")
            order = None if np.array_equal(order, np.arange(layer.n_out)) else order.astype(np.int64)
        out.append(order)
    return out


def pack(model: CompressedModel, config: Config | None = None, *, balance: bool = False,
         shorten_runs: bool = False, row_orders=None) -> Image:
    """Pack `model` for `config` (default `Config()`) as docs/design.md §4
    specifies; raises `PackError` if it does not fit.

    By default row ``r`` goes to PE ``r % n_pe``. With `balance`, each
    layer's rows are placed to even the PEs' work (`balanced_order`); with
    `shorten_runs`, each PE's rows are then ordered to need fewer padding
    entries (`short_run_order`: less storage, fewer cycles); or
    `row_orders` gives each layer's order (the model's row at each hardware
    position, None for the default). Either way the outputs, from the golden
    model and the RTL alike, come back in the model's order: the next layer's
    columns follow its input's order, and the image records the orders.

    A compressed network (`sw.net.CompressedNetwork`) packs into an
    `sw.net.NetworkProgram`: an image per program (`sw.net.pack_network`)."""
    config = Config() if config is None else config
    from .net import CompressedNetwork, pack_network
    if isinstance(model, CompressedNetwork):
        return pack_network(model, config, balance=balance, shorten_runs=shorten_runs)
    if not isinstance(model, CompressedModel):
        raise TypeError(f"pack() takes a CompressedModel, got {type(model).__name__}")
    orders = _row_orders(model, config, balance, row_orders, shorten_runs)
    assign_banks(model.sources, PackError)              # two activation-buffer halves must hold what is read
    image_layers = []
    for i, (layer, order) in enumerate(zip(model.layers, orders)):
        _check_layer(i, layer, config)
        codes, bias = layer.codes, layer.bias.copy()
        if order is not None:
            codes, bias = codes[order], bias[order]
        prev = orders[model.sources[i]] if i else None
        if prev is not None:
            codes = codes[:, prev]                      # the inputs arrive in the order of the layer they come from
        entries, colptr = pack_layer(sp.csr_array(codes), config)
        codebook = np.zeros(config.n_codes, dtype=np.int64)
        codebook[:layer.codebook.size] = layer.codebook
        image_layers.append(ImageLayer(
            config=config, n_in=layer.n_in, n_out=layer.n_out, relu=layer.relu,
            fa=layer.fa, fw=layer.fw, fo=layer.fo, codebook=codebook, bias=bias,
            entries=entries, colptr=colptr, order=order, src=model.sources[i],
            exit_threshold=_threshold(i, layer, config)))
        # fail early on a layer that alone cannot fit
        _check_capacity(image_layers, config)
    return Image(config, image_layers)


def _threshold(i: int, layer: CompressedLayer, config: Config) -> int | None:
    """An exit threshold the hardware compares with: a margin of two
    ``act_bits`` values is below ``2**act_bits``, which never exits."""
    t = layer.exit_threshold
    if t is not None and not config.exit_heads:
        raise PackError(f"layer {i} ends an exit head, but the configuration has no exit test (exit_heads = 0)")
    if t is not None and config.act_bits > MAX_EXIT_ACT_BITS:
        raise PackError(f"layer {i}: exit heads need act_bits <= {MAX_EXIT_ACT_BITS} (the threshold's room in "
                        f"the layer descriptor), the configuration has {config.act_bits}")
    if t is not None and t > 1 << config.act_bits:
        raise PackError(f"layer {i}: exit threshold {t} is above 2**act_bits = {1 << config.act_bits} (which "
                        f"already means never: margins of {config.act_bits}-bit outputs are below it)")
    return t


def unpack(image: Image) -> CompressedModel:
    """The exact inverse of `pack`: the `CompressedModel` an image holds,
    in the model's row order (codebooks come back padded to ``2**code_bits``
    values)."""
    layers = []
    for i, layer in enumerate(image.layers):
        codes, bias = layer.codes(), layer.bias.copy()
        prev = image.layers[layer.src].order if i else None
        if prev is not None:
            codes = codes[:, np.argsort(prev)]
        if layer.order is not None:
            inverse = np.argsort(layer.order)
            codes, bias = codes[inverse], bias[inverse]
        layers.append(CompressedLayer(sp.csr_array(codes), layer.codebook.copy(), bias,
                                      layer.relu, layer.fa, layer.fw, layer.fo,
                                      src=None if layer.src == i - 1 else layer.src,
                                      exit_threshold=layer.exit_threshold))
    return CompressedModel(layers, image.layers[0].fa)

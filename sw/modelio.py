"""Models as ``.npz`` files (the layout is documented in README.md).

Float model, one set of keys per layer ``i = 0, 1, ...``:
``layer{i}.weight`` (``n_out x n_in`` float), optional ``layer{i}.bias``
(``n_out``), optional ``layer{i}.relu`` (bool; default: ReLU on every layer
but the last).

Compressed model: ``layer{i}.codes`` (``n_out x n_in`` integers, 0 = pruned;
or sparse as ``layer{i}.codes.data``, ``.indices``, ``.indptr``, ``.shape``
in CSR form), ``layer{i}.codebook``, ``layer{i}.bias`` (accumulator format),
``layer{i}.relu``, ``layer{i}.fa``, ``layer{i}.fw``, ``layer{i}.fo``.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .arrays import integer_array
from .files import atomic_file
from .model import CompressedLayer, CompressedModel, Layer, ModelError, check_chain

__all__ = ["load_model", "save_model", "load_array"]

_KEY = re.compile(r"^layer(\d+)\.([a-z_.]+)$")
FLOAT_FIELDS = {"weight", "bias", "relu"}
CSR_FIELDS = {"codes.data", "codes.indices", "codes.indptr", "codes.shape"}
COMPRESSED_FIELDS = {"codes", "codebook", "bias", "relu", "fa", "fw", "fo", "src", "exit_threshold"} | CSR_FIELDS


def _group(data) -> list[dict]:
    layers: dict[int, dict] = {}
    for key in data.files:
        m = _KEY.match(key)
        if not m:
            raise ModelError(f"unexpected key {key!r}: keys are layer<i>.<field> (see README)")
        try:
            layers.setdefault(int(m[1]), {})[m[2]] = data[key]
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            raise ModelError(f"{key} cannot be read as an array ({e})") from None
    if not layers:
        raise ModelError("the file holds no layers")
    missing = sorted(set(range(max(layers) + 1)) - set(layers))
    if missing:
        raise ModelError(f"layer {missing[0]} is missing (layers must be numbered 0, 1, 2, ...)")
    return [layers[i] for i in range(len(layers))]


def _scalar(fields: dict, name: str, i: int, kind):
    """A required scalar field, of exactly the kind asked: an int field must
    hold an integer (8.7 is not 8), a bool field a boolean."""
    key = f"layer{i}.{name}"
    if name not in fields:
        raise ModelError(f"missing {key}")
    v = np.asarray(fields[name])
    if v.ndim != 0:
        raise ModelError(f"{key} must be a scalar, got shape {v.shape}")
    if kind is bool:
        if v.dtype != np.bool_:
            raise ModelError(f"{key} must be a boolean, got {v.item()!r} ({v.dtype})")
        return bool(v)
    if not np.issubdtype(v.dtype, np.integer):
        raise ModelError(f"{key} must be an integer, got {v.item()!r} ({v.dtype})")
    return int(v)


def _csr_codes(g: dict, i: int) -> sp.csr_array:
    """Sparse codes from their CSR parts, every part checked (scipy itself
    accepts column indices beyond the shape)."""
    missing = sorted(f"layer{i}.{k}" for k in CSR_FIELDS if k not in g)
    if missing:
        raise ModelError(f"sparse codes need {', '.join(missing)}")
    shape = np.asarray(g["codes.shape"])
    if shape.shape != (2,) or not np.issubdtype(shape.dtype, np.integer) or np.any(shape < 1):
        raise ModelError(f"layer{i}.codes.shape must be two positive integers, got {shape.tolist()!r}")
    n_out, n_in = (int(v) for v in shape)
    data = integer_array(g["codes.data"], f"layer{i}.codes.data", ModelError)
    indices = integer_array(g["codes.indices"], f"layer{i}.codes.indices", ModelError)
    indptr = integer_array(g["codes.indptr"], f"layer{i}.codes.indptr", ModelError)
    for name, arr in (("data", data), ("indices", indices), ("indptr", indptr)):
        if arr.ndim != 1:
            raise ModelError(f"layer{i}.codes.{name} must be 1-D, got shape {arr.shape}")
    if indptr.size != n_out + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0) or indptr[-1] != data.size:
        raise ModelError(f"layer{i}.codes.indptr must rise from 0 to {data.size} (the nonzeros) in "
                         f"{n_out + 1} steps (rows + 1); got {indptr.size} values from {indptr[0] if indptr.size else '-'} "
                         f"to {indptr[-1] if indptr.size else '-'}")
    if indices.size != data.size:
        raise ModelError(f"layer{i}.codes.indices has {indices.size} values, codes.data {data.size}")
    if indices.size and (indices.min() < 0 or indices.max() >= n_in):
        bad = int(np.argmax((indices < 0) | (indices >= n_in)))
        raise ModelError(f"layer{i}.codes.indices[{bad}] = {indices[bad]} is outside the {n_in} columns "
                         f"of codes.shape")
    return sp.csr_array((data, indices, indptr), shape=(n_out, n_in))


def _layer(g: dict, i: int, compressed: bool, last: bool):
    fields = COMPRESSED_FIELDS if compressed else FLOAT_FIELDS
    unknown = sorted(set(g) - fields)
    if unknown:
        kind = "a compressed" if compressed else "a float"
        raise ModelError(f"unexpected {', '.join(f'layer{i}.{k}' for k in unknown)} in {kind} model "
                         f"(fields: {', '.join(sorted(fields))})")
    if not compressed:
        if "weight" not in g:
            raise ModelError(f"missing layer{i}.weight")
        relu = _scalar(g, "relu", i, bool) if "relu" in g else not last
        return Layer(g["weight"], g.get("bias"), relu)
    if "codes" in g and CSR_FIELDS & set(g):
        raise ModelError(f"layer{i}.codes is given both dense and in CSR parts")
    codes = g["codes"] if "codes" in g else _csr_codes(g, i)
    for name in ("codebook", "bias"):
        if name not in g:
            raise ModelError(f"missing layer{i}.{name}")
    return CompressedLayer(codes, g["codebook"], g["bias"], _scalar(g, "relu", i, bool), _scalar(g, "fa", i, int),
                           _scalar(g, "fw", i, int), _scalar(g, "fo", i, int),
                           src=_scalar(g, "src", i, int) if "src" in g else None,
                           exit_threshold=_scalar(g, "exit_threshold", i, int) if "exit_threshold" in g else None)


def load_model(path) -> list[Layer] | CompressedModel:
    """Read a float model (a list of `Layer`) or a `CompressedModel`. Every
    field is checked; errors name the file, the layer and the key."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not a model .npz file")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, zipfile.BadZipFile, UnicodeDecodeError):
        raise ModelError(f"{path}: not a valid .npz model file") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ModelError(f"{path}: holds one array (.npy), not a model (.npz with layer<i>.<field> keys)")
    with data:
        try:
            groups = _group(data)
        except ModelError as e:
            raise ModelError(f"{path}: {e}") from None
        compressed = [any(k == "codes" or k.startswith("codes.") for k in g) for g in groups]
        if any(compressed) and not all(compressed):
            raise ModelError(f"{path}: layer {compressed.index(not compressed[0])} is "
                             f"{'float' if compressed[0] else 'compressed'} but layer 0 is not: "
                             f"a model is all float or all compressed")
        out = []
        for i, g in enumerate(groups):
            try:
                out.append(_layer(g, i, compressed[0], i == len(groups) - 1))
            except ModelError as e:
                raise ModelError(f"{path}: layer {i}: {e}") from None
    try:
        return CompressedModel(out, out[0].fa) if compressed[0] else check_chain(out, Layer, "a model")
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None


def load_array(path, what: str = "inputs") -> np.ndarray:
    """One array from an ``.npy`` file (input vectors, labels, calibration
    data), with errors that name the file: a directory, an ``.npz``
    archive, a pickle or a file of another kind are refused."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not an .npy file of {what}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, UnicodeDecodeError, zipfile.BadZipFile):
        raise ModelError(f"{path}: not a valid .npy file of {what}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        names = ", ".join(data.files[:4])
        data.close()
        raise ModelError(f"{path}: is an .npz archive ({names}); {what} must be one array in an .npy file")
    return data


def save_model(model, path, *, overwrite: bool = False) -> Path:
    """Write a float model (list of `Layer`) or a `CompressedModel`
    atomically; an existing file is replaced only with `overwrite`."""
    arrays = {}
    if isinstance(model, CompressedModel):
        for i, l in enumerate(model.layers):
            arrays.update({f"layer{i}.codes.data": l.codes.data, f"layer{i}.codes.indices": l.codes.indices,
                           f"layer{i}.codes.indptr": l.codes.indptr, f"layer{i}.codes.shape": np.array(l.codes.shape),
                           f"layer{i}.codebook": l.codebook, f"layer{i}.bias": l.bias,
                           f"layer{i}.relu": np.bool_(l.relu), f"layer{i}.fa": np.int64(l.fa),
                           f"layer{i}.fw": np.int64(l.fw), f"layer{i}.fo": np.int64(l.fo)})
            if l.src is not None:           # an exit head reads an earlier layer
                arrays[f"layer{i}.src"] = np.int64(l.src)
            if l.exit_threshold is not None:
                arrays[f"layer{i}.exit_threshold"] = np.int64(l.exit_threshold)
    else:
        for i, l in enumerate(model):
            if not isinstance(l, Layer):
                raise TypeError(f"layer {i} is a {type(l).__name__}, not an sw.Layer")
            arrays.update({f"layer{i}.weight": l.dense(), f"layer{i}.bias": l.bias, f"layer{i}.relu": np.bool_(l.relu)})
    path = Path(path)
    with atomic_file(path, overwrite=overwrite) as f:
        np.savez_compressed(f, **arrays)
    return path

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

from .files import atomic_file
from .model import CompressedLayer, CompressedModel, Layer, ModelError, check_chain

__all__ = ["load_model", "save_model"]

_KEY = re.compile(r"^layer(\d+)\.([a-z_.]+)$")


def _group(data) -> list[dict]:
    layers: dict[int, dict] = {}
    for key in data.files:
        m = _KEY.match(key)
        if not m:
            raise ModelError(f"unexpected key {key!r}: keys are layer<i>.<field> (see README)")
        layers.setdefault(int(m[1]), {})[m[2]] = data[key]
    if not layers:
        raise ModelError("the file holds no layers")
    missing = sorted(set(range(max(layers) + 1)) - set(layers))
    if missing:
        raise ModelError(f"layer {missing[0]} is missing (layers must be numbered 0, 1, 2, ...)")
    return [layers[i] for i in range(len(layers))]


def _scalar(fields: dict, name: str, i: int, kind):
    if name not in fields:
        raise ModelError(f"layer {i}: missing layer{i}.{name}")
    v = fields[name]
    if np.ndim(v) != 0:
        raise ModelError(f"layer {i}: layer{i}.{name} must be a scalar, got shape {np.shape(v)}")
    return kind(v)


def load_model(path) -> list[Layer] | CompressedModel:
    """Read a float model (a list of `Layer`) or a `CompressedModel`."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ModelError(f"{path}: cannot read as .npz ({e})") from None
    with data:
        groups = _group(data)
        compressed = any("codes" in g or "codes.data" in g for g in groups)
        out = []
        for i, g in enumerate(groups):
            try:
                if compressed:
                    if "codes.data" in g:
                        codes = sp.csr_array((g["codes.data"], g["codes.indices"], g["codes.indptr"]),
                                             shape=tuple(int(s) for s in g["codes.shape"]))
                    elif "codes" in g:
                        codes = g["codes"]
                    else:
                        raise ModelError("missing codes")
                    out.append(CompressedLayer(codes, g.get("codebook", np.zeros(1, dtype=np.int64)),
                                               g.get("bias"), _scalar(g, "relu", i, bool), _scalar(g, "fa", i, int),
                                               _scalar(g, "fw", i, int), _scalar(g, "fo", i, int)))
                else:
                    if "weight" not in g:
                        raise ModelError("missing weight")
                    relu = _scalar(g, "relu", i, bool) if "relu" in g else i < len(groups) - 1
                    out.append(Layer(g["weight"], g.get("bias"), relu))
            except ModelError as e:
                raise ModelError(f"{path}: layer {i}: {e}") from None
            except KeyError as e:
                raise ModelError(f"{path}: layer {i}: missing {e}") from None
    try:
        return CompressedModel(out, out[0].fa) if compressed else check_chain(out, Layer, "a model")
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None


def save_model(model, path) -> Path:
    """Write a float model (list of `Layer`) or a `CompressedModel` atomically."""
    arrays = {}
    if isinstance(model, CompressedModel):
        for i, l in enumerate(model.layers):
            arrays.update({f"layer{i}.codes.data": l.codes.data, f"layer{i}.codes.indices": l.codes.indices,
                           f"layer{i}.codes.indptr": l.codes.indptr, f"layer{i}.codes.shape": np.array(l.codes.shape),
                           f"layer{i}.codebook": l.codebook, f"layer{i}.bias": l.bias,
                           f"layer{i}.relu": np.bool_(l.relu), f"layer{i}.fa": np.int64(l.fa),
                           f"layer{i}.fw": np.int64(l.fw), f"layer{i}.fo": np.int64(l.fo)})
    else:
        for i, l in enumerate(model):
            if not isinstance(l, Layer):
                raise TypeError(f"layer {i} is a {type(l).__name__}, not an sw.Layer")
            arrays.update({f"layer{i}.weight": l.dense(), f"layer{i}.bias": l.bias, f"layer{i}.relu": np.bool_(l.relu)})
    path = Path(path)
    with atomic_file(path) as f:
        np.savez_compressed(f, **arrays)
    return path

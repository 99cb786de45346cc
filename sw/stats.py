"""Storage and balance accounting of an image (docs/design.md §8).

Bits per nonzero weight count everything the accelerator stores for a layer:
entries (padding included), pointers, codebook and bias (as stored: one word
per PE row). Huffman coding of codes and runs (Deep Compression's third stage)
is accounting only: the hardware stores fixed-width entries.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from .format import entry_runs
from .image import Image

__all__ = ["ImageStats", "image_stats", "huffman_lengths"]


def huffman_lengths(freq: np.ndarray) -> np.ndarray:
    """Huffman code length of each symbol (0 for symbols that never occur)."""
    freq = np.asarray(freq, dtype=np.int64)
    used = np.flatnonzero(freq)
    lengths = np.zeros(freq.size, dtype=np.int64)
    if used.size == 1:
        lengths[used] = 1
    if used.size <= 1:
        return lengths
    heap = [(int(freq[s]), n, [int(s)]) for n, s in enumerate(used)]
    heapq.heapify(heap)
    tie = len(heap)
    while len(heap) > 1:
        fa, _, a = heapq.heappop(heap)
        fb, _, b = heapq.heappop(heap)
        lengths[a + b] += 1            # every symbol under the merged node is one bit deeper
        heapq.heappush(heap, (fa + fb, tie, a + b))
        tie += 1
    return lengths


@dataclass
class ImageStats:
    """`layers`: one dict per layer; `total`: the same sums over the model."""
    layers: list[dict]
    total: dict

    def table(self) -> str:
        """A readable table, one row per layer and a total."""
        cols = [("layer", "{}"), ("shape", "{}"), ("nnz", "{:,}"), ("entries", "{:,}"), ("padding", "{:,}"),
                ("imbalance", "{:.3f}"), ("bits/nz", "{:.2f}"), ("huffman bits/nz", "{:.2f}"),
                ("ratio", "{:.1f}x"), ("huffman ratio", "{:.1f}x")]
        rows = []
        for s in self.layers + [self.total]:
            rows.append(["-" if s[key] is None else fmt.format(s[key]) for key, fmt in
                         zip(["layer", "shape", "nnz", "entries", "padding", "imbalance", "bits_per_nonzero",
                              "huffman_bits_per_nonzero", "compression_ratio", "huffman_compression_ratio"],
                             [f for _, f in cols])])
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, (h, _) in enumerate(cols)]
        line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))
        out = [line([h for h, _ in cols]), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        return "\n".join(out)

    def to_dict(self) -> dict:
        return {"layers": self.layers, "total": self.total}


def _sums(parts: list[dict]) -> dict:
    keys = ["nnz", "entries", "padding", "dense_bits", "entry_bits", "pointer_bits", "codebook_bits", "bias_bits",
            "total_bits", "huffman_bits"]
    return {k: sum(p[k] for p in parts) for k in keys}


def _ratios(s: dict):
    # None (JSON null) where a layer has no nonzero weight at all
    s["bits_per_nonzero"] = s["total_bits"] / s["nnz"] if s["nnz"] else None
    s["huffman_bits_per_nonzero"] = s["huffman_bits"] / s["nnz"] if s["nnz"] else None
    s["compression_ratio"] = s["dense_bits"] / s["total_bits"]
    s["huffman_compression_ratio"] = s["dense_bits"] / s["huffman_bits"]


def _imbalance(per_pe: np.ndarray) -> float:
    """Max over mean of the per-PE entry counts (1 when there are none)."""
    return float(per_pe.max() / per_pe.mean()) if per_pe.mean() else 1.0


def image_stats(image: Image) -> ImageStats:
    c = image.config
    layers = []
    for i, layer in enumerate(image.layers):
        runs = entry_runs(layer.entries, c).astype(np.int64)
        code_freq = np.bincount(layer.entry_codes, minlength=c.n_codes)
        run_freq = np.bincount(runs, minlength=c.max_run + 1)
        per_pe = layer.pe_entry_counts()
        nnz = layer.nnz
        s = {
            "layer": i, "shape": f"{layer.n_in}->{layer.n_out}", "n_in": layer.n_in, "n_out": layer.n_out,
            "nnz": nnz, "entries": int(layer.entries.size), "padding": int(layer.entries.size) - nnz,
            "per_pe_entries": [int(v) for v in per_pe],
            "imbalance": _imbalance(per_pe),
            "dense_bits": 32 * layer.n_in * layer.n_out,
            "entry_bits": int(layer.entries.size) * c.entry_bits,
            "pointer_bits": c.n_pe * (layer.n_in + 1) * c.pointer_bits,
            "codebook_bits": c.n_codes * c.weight_bits,
            "bias_bits": layer.rows * c.n_pe * c.acc_bits,
        }
        s["total_bits"] = s["entry_bits"] + s["pointer_bits"] + s["codebook_bits"] + s["bias_bits"]
        coded = int(code_freq @ huffman_lengths(code_freq) + run_freq @ huffman_lengths(run_freq))
        s["huffman_bits"] = s["total_bits"] - s["entry_bits"] + coded
        _ratios(s)
        layers.append(s)
    total = _sums(layers)
    total.update(layer="total", shape=f"{image.n_in}->{image.n_out}")
    per_pe = np.sum([l["per_pe_entries"] for l in layers], axis=0)
    total["per_pe_entries"] = [int(v) for v in per_pe]
    total["imbalance"] = _imbalance(per_pe)
    _ratios(total)
    return ImageStats(layers, total)

"""The accelerator's image: what `sw.pack` produces and everything else reads.

An `Image` holds, per layer, every PE's entries and pointers (docs/design.md
§4), the codebook and the bias; `memories()` lays them out in the
RTL's memories (`sw.format`), `save()` writes those as `$readmemh` files plus
a manifest, and `Image.load()` rebuilds the image from the files alone, so
what the hardware loads is what the golden model runs.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import format as fmt
from . import manifest as manifest_mod
from .config import Config
from .files import atomic_directory
from .format import Descriptor, FormatError, MemoryImage

__all__ = ["Image", "ImageLayer", "PESlice", "ImageError"]


class ImageError(FormatError):
    """An image directory is missing, corrupt, edited or of another version."""


def _replaceable(path: Path) -> bool:
    """An image directory (a manifest of this format) or an empty directory:
    what `Image.save(overwrite=True)` may replace."""
    if not path.is_dir() or path.is_symlink():
        return False
    try:
        if not any(path.iterdir()):
            return True
        return json.loads((path / "manifest.json").read_bytes()).get("format") == fmt.FORMAT_NAME
    except (OSError, ValueError, AttributeError):
        return False


def _order(order, n_out: int, where: str) -> np.ndarray | None:
    """A layer's row order from a manifest: empty for the identity, else a
    permutation of ``0 .. n_out - 1``."""
    if not order:
        return None
    if not all(type(v) is int for v in order):
        raise ImageError(f"{where}: the row order must list integers")
    arr = np.asarray(order, dtype=np.int64)
    if arr.shape != (n_out,) or not np.array_equal(np.sort(arr), np.arange(n_out)):
        raise ImageError(f"{where}: the row order is not a permutation of the layer's {n_out} outputs")
    if np.array_equal(arr, np.arange(n_out)):
        raise ImageError(f"{where}: an identity row order is written as [], not listed")
    return arr


@dataclass(frozen=True)
class PESlice:
    """One PE's part of one layer: `entries` (encoded ``(code << run_bits) |
    run``) and `pointers` (``n_in + 1`` offsets into `entries`)."""
    entries: np.ndarray
    pointers: np.ndarray


class ImageLayer:
    """One packed layer. `entries` holds every PE's entries back to back,
    `colptr[k * n_in + j]` is where column ``j`` of PE ``k`` starts in it.

    `order`: the model's output row at each hardware output position
    (position ``h`` is local row ``h // n_pe`` of PE ``h % n_pe``), or None
    for the identity. The memories hold the layer in hardware order: its rows
    and biases permuted by `order`, its columns by the previous layer's."""

    def __init__(self, *, config: Config, n_in: int, n_out: int, relu: bool, fa: int, fw: int, fo: int,
                 codebook: np.ndarray, bias: np.ndarray, entries: np.ndarray, colptr: np.ndarray,
                 src: int, order: np.ndarray | None = None, exit_threshold: int | None = None):
        self.config = config
        self.order = order
        self.src = src                          # the layer whose outputs it reads, -1 the input
        self.exit_threshold = exit_threshold
        self.n_in, self.n_out, self.relu = int(n_in), int(n_out), bool(relu)
        self.fa, self.fw, self.fo = int(fa), int(fw), int(fo)
        self.codebook = codebook
        self.bias = bias
        self.entries = entries
        self.colptr = colptr

    @property
    def shift(self) -> int:
        return self.fa + self.fw - self.fo

    @property
    def rows(self) -> int:
        """Output rows per PE (the last few PEs may have one unused)."""
        return self.config.rows_per_pe(self.n_out)

    @functools.cached_property
    def pes(self) -> list[PESlice]:
        n = self.n_in
        out = []
        for k in range(self.config.n_pe):
            ptr = self.colptr[k * n:(k + 1) * n + 1]
            out.append(PESlice(self.entries[ptr[0]:ptr[-1]], ptr - ptr[0]))
        return out

    @functools.cached_property
    def column_counts(self) -> np.ndarray:
        """Entries (padding included) of column ``j`` in PE ``k``: ``(n_pe, n_in)``."""
        return np.diff(self.colptr).reshape(self.config.n_pe, self.n_in)

    def pe_entry_counts(self) -> np.ndarray:
        return self.column_counts.sum(axis=1)

    @functools.cached_property
    def local_rows(self) -> np.ndarray:
        """The local row every entry decodes to (padding included)."""
        return fmt.decode_rows(self.entries, self.colptr, self.config)

    @functools.cached_property
    def entry_codes(self) -> np.ndarray:
        return fmt.entry_codes(self.entries, self.config).astype(np.int64)

    @functools.cached_property
    def pe_matrices(self) -> list[sp.csc_array]:
        """PE ``k``'s weights as a ``rows x n_in`` CSC matrix of
        ``codebook[code]`` (int64), built on the image's own arrays: the
        stored order is already CSC. Padding entries stay as explicit zeros."""
        n, out = self.n_in, []
        values = self.codebook[self.entry_codes]
        for k in range(self.config.n_pe):
            ptr = self.colptr[k * n:(k + 1) * n + 1]
            sl = slice(ptr[0], ptr[-1])
            out.append(sp.csc_array((values[sl], self.local_rows[sl], ptr - ptr[0]), shape=(self.rows, n)))
        return out

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """Exact ``W @ x`` for inputs ``(B, n_in)`` int64: ``(B, n_out)`` int64."""
        out = np.empty((x.shape[0], self.rows, self.config.n_pe), dtype=np.int64)
        for k, m in enumerate(self.pe_matrices):
            out[:, :, k] = (m @ x.T).T
        return out.reshape(x.shape[0], self.rows * self.config.n_pe)[:, :self.n_out]

    def _entry_pe_and_column(self):
        col = np.repeat(np.arange(self.colptr.size - 1, dtype=np.int64), np.diff(self.colptr))
        return col // self.n_in, col % self.n_in

    def codes(self) -> sp.csr_array:
        """The layer's codes as an ``n_out x n_in`` sparse matrix."""
        pe, col = self._entry_pe_and_column()
        keep = self.entry_codes != 0
        rows = self.local_rows[keep] * self.config.n_pe + pe[keep]
        code = self.entry_codes[keep].astype(np.uint8 if self.config.code_bits <= 8 else np.int64)
        return sp.csr_array((code, (rows, col[keep])), shape=(self.n_out, self.n_in))

    @functools.cached_property
    def nonzero_counts(self) -> np.ndarray:
        """Nonzero weights of column ``j`` in PE ``k``: ``(n_pe, n_in)``."""
        nz = np.concatenate([[0], np.cumsum(self.entry_codes != 0)])
        return np.diff(nz[self.colptr]).reshape(self.config.n_pe, self.n_in)

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.entry_codes))

    def validate(self, index: int):
        """Check that the entries decode inside the layer: raises `ImageError`."""
        local = self.local_rows
        bad = local >= self.rows
        if self.n_out % self.config.n_pe:    # the last local row exists only in the first PEs
            pe, _ = self._entry_pe_and_column()
            bad |= (self.entry_codes != 0) & (local * self.config.n_pe + pe >= self.n_out)
        if bad.any():
            e = int(np.argmax(bad))
            pe, col = self._entry_pe_and_column()
            raise ImageError(f"layer {index}, PE {int(pe[e])}, input {int(col[e])}: an entry decodes to "
                             f"local row {int(local[e])}, outside the layer's {self.n_out} outputs")


def assign_banks(sources: list[int], where=ImageError) -> list[tuple[int, int]]:
    """The activation-buffer halves each layer reads and writes, ``(src,
    dst)``, for layers that read `sources` (-1: the input stream, layer 0
    only). A layer writes the half it reads when nothing later reads that
    input (in place: the write-back comes after the whole input is read),
    else the other half, which must then hold nothing still to be read: two
    halves hold a trunk and one exit head of any depth. Layer 0 writes half
    0. Raises `where` if a layer's input would be overwritten before it is
    read."""
    n = len(sources)
    last_read = {}
    for i, src in enumerate(sources):
        last_read[src] = i
    holder = [None, None]                   # the layer whose outputs each half holds
    out = []
    for i, src in enumerate(sources):
        if i == 0:
            out.append((0, 0))
            holder[0] = 0
            continue
        if src not in holder:
            raise where(f"layer {i} reads layer {src}'s outputs, which no longer are in the activation buffer "
                        f"(two halves hold a trunk and one exit head branching off it)")
        sb = holder.index(src)
        if last_read[src] == i:
            db = sb
        else:
            db = 1 - sb
            other = holder[db]
            if other is not None and last_read.get(other, -1) > i:
                raise where(f"layer {i} needs a third half of the activation buffer: layers {src} and {other}'s "
                            f"outputs are both read later")
        holder[db] = i
        out.append((sb, db))
    return out


class Image:
    """A packed model for one `Config`: `layers[l].pes[k].entries` etc.
    Layers are in the order they run; `ImageLayer.src` says which one's
    outputs a layer reads (an early-exit head, docs/design.md §15)."""

    def __init__(self, config: Config, layers: list[ImageLayer]):
        self.config = config
        self.layers = list(layers)
        self.banks = assign_banks(self.sources)

    @property
    def sources(self) -> list[int]:
        return [l.src for l in self.layers]

    @property
    def exits(self) -> list[int]:
        """The layers that end an exit head, in the order they run."""
        return [i for i, l in enumerate(self.layers) if l.exit_threshold is not None]

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    @property
    def balanced(self) -> bool:
        """Whether any layer's rows sit at other positions than ``r % n_pe``."""
        return any(l.order is not None for l in self.layers)

    def model_order(self, y: np.ndarray, layer: int = -1) -> np.ndarray:
        """`layer`'s outputs ``(..., n_out)`` as the hardware produces them,
        put back in the model's order."""
        order = self.layers[layer].order
        if order is None:
            return y
        out = np.empty_like(y)
        out[..., order] = y
        return out

    def run_order(self, y: np.ndarray, exits: np.ndarray) -> np.ndarray:
        """A batch of runs' outputs ``(B, n_out)`` as the hardware produces
        them, each from the layer its run ended at (`exits[b]`: 0 the last
        layer, ``k`` the ``k``-th exit head), put back in the model's order."""
        out = self.model_order(y)
        for k, l in enumerate(self.exits, start=1):
            out = np.where((np.asarray(exits) == k)[:, None], self.model_order(y, l), out)
        return out

    # ---- layout in memories -----------------------------------------------

    def descriptors(self) -> list[Descriptor]:
        """The layer table. The biases follow all pointers in the pointer
        banks: layer ``l``'s local row 0 at bank word ``bias_base``."""
        out, ptr_base = [], 0
        bias_base = -(-sum(l.n_in + 1 for l in self.layers) // 2)
        for i, layer in enumerate(self.layers):
            src_bank, dst_bank = self.banks[i]
            out.append(Descriptor(n_in=layer.n_in, n_out=layer.n_out, ptr_base=ptr_base, bias_base=bias_base,
                                  shift=layer.shift, relu=layer.relu, last=i == len(self.layers) - 1,
                                  src_bank=src_bank, dst_bank=dst_bank, exit=layer.exit_threshold is not None,
                                  threshold=layer.exit_threshold or 0))
            ptr_base += layer.n_in + 1
            bias_base += layer.rows
        return out

    def memories(self) -> dict[str, MemoryImage]:
        """Every RTL memory as ``name -> MemoryImage(width, depth, words)``,
        exactly as the hardware holds it (see `sw.format`)."""
        return dict(self._memories)

    @functools.cached_property
    def _memories(self) -> dict[str, MemoryImage]:
        c = self.config
        shapes = fmt.memory_shapes(c)
        descs = self.descriptors()
        n_ptr = sum(l.n_in + 1 for l in self.layers)
        n_bias = sum(l.rows for l in self.layers)

        def mem(name, words):
            width, depth = shapes[name]
            return MemoryImage(name, width, depth, fmt.mask_words(words, width))

        out = {"layers": mem("layers", [w for d in descs for w in d.words()])}
        codebooks = np.concatenate([l.codebook for l in self.layers])
        out["codebook"] = mem("codebook", codebooks)

        pointers = np.zeros((c.n_pe, n_ptr), dtype=np.int64)
        bias = np.zeros((c.n_pe, n_bias), dtype=np.int64)
        bias0 = descs[0].bias_base
        entry_base = np.zeros(c.n_pe, dtype=np.int64)
        for layer, d in zip(self.layers, descs):
            n = layer.n_in
            idx = np.arange(c.n_pe)[:, None] * n + np.arange(n + 1)[None, :]
            rel = layer.colptr[idx] - layer.colptr[idx[:, :1]]
            pointers[:, d.ptr_base:d.ptr_base + n + 1] = rel + entry_base[:, None]
            entry_base += layer.pe_entry_counts()
            b = np.zeros(layer.rows * c.n_pe, dtype=np.int64)
            b[:layer.n_out] = layer.bias
            bias[:, d.bias_base - bias0:d.bias_base - bias0 + layer.rows] = b.reshape(layer.rows, c.n_pe).T
        low, high = fmt.split_bias(bias, c)
        for k in range(c.n_pe):
            entries = np.concatenate([l.pes[k].entries for l in self.layers])
            name = fmt.pe_memory_name
            out[name(k, "entries")] = mem(name(k, "entries"), fmt.pack_words(entries, c).view(np.int64))
            for bank, half in (("ptr_even", low), ("ptr_odd", high)):
                words = np.zeros(bias0 + n_bias, dtype=np.uint64)
                ptr = pointers[k, 0::2] if bank == "ptr_even" else pointers[k, 1::2]
                words[:ptr.size] = ptr
                words[bias0:] = half[k]
                out[name(k, bank)] = mem(name(k, bank), words.view(np.int64))
        return out

    @classmethod
    def from_memories(cls, config: Config, memories: dict[str, MemoryImage], formats: list[dict]) -> Image:
        """Rebuild an image from its memories; `formats` gives each layer's
        ``fa``, ``fw``, ``fo`` (not held in any memory). Validates that the
        memories are consistent; raises `ImageError` naming what is not."""
        missing = [n for n in fmt.memory_names(config) if n not in memories]
        if missing:
            raise ImageError(f"memories missing: {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        c = config
        table = memories["layers"].padded().reshape(c.max_layers, fmt.DESC_WORDS)
        descs = []
        for i in range(c.max_layers):
            descs.append(Descriptor.from_words(table[i]))
            if descs[-1].last:
                break
        else:
            raise ImageError("the layer table has no layer marked last")
        if len(formats) != len(descs):
            raise ImageError(f"the manifest describes {len(formats)} layers, the layer table {len(descs)}")
        codebook = fmt.signed_words(memories["codebook"].padded(), c.weight_bits)
        entries = [fmt.unpack_words(memories[fmt.pe_memory_name(k, "entries")].words, c) for k in range(c.n_pe)]
        ptrs, bias_mem = [], []
        for k in range(c.n_pe):
            even = memories[fmt.pe_memory_name(k, "ptr_even")].padded()
            odd = memories[fmt.pe_memory_name(k, "ptr_odd")].padded()
            ptrs.append(np.stack([even, odd], axis=1).reshape(-1).astype(np.int64))
            bias_mem.append(fmt.join_bias(even, odd, c))
        bias_mem = np.stack(bias_mem)
        # which layer each reads: the last to write its half (layer 0: the input)
        sources, holder = [], [None, None]
        for i, d in enumerate(descs):
            src = -1 if i == 0 else holder[d.src_bank]
            if i and src is None:
                raise ImageError(f"layer {i}: reads activation-buffer half {d.src_bank}, which no layer wrote")
            if i == 0 and d.dst_bank != 0:
                raise ImageError("layer 0 writes activation-buffer half 1; sw.pack writes half 0")
            sources.append(src)
            holder[d.dst_bank] = i
        layers = []
        for i, (d, f) in enumerate(zip(descs, formats)):
            where = f"layer {i}"
            if d.n_in < 1 or d.n_out < 1:
                raise ImageError(f"{where}: descriptor has n_in = {d.n_in}, n_out = {d.n_out}")
            if d.ptr_base + d.n_in + 1 > c.pointer_depth:
                raise ImageError(f"{where}: pointers {d.ptr_base}..{d.ptr_base + d.n_in} exceed "
                                 f"pointer_depth {c.pointer_depth}")
            rows = c.rows_per_pe(d.n_out)
            if rows > c.row_depth:
                raise ImageError(f"{where}: {rows} rows per PE exceed row_depth {c.row_depth}")
            if d.bias_base + rows > c.bank_depth:
                raise ImageError(f"{where}: biases at bank words {d.bias_base}..{d.bias_base + rows - 1} exceed "
                                 f"the pointer banks' {c.bank_depth} words")
            if i and d.n_in != descs[sources[i]].n_out:
                raise ImageError(f"{where}: takes {d.n_in} inputs but layer {sources[i]} produces "
                                 f"{descs[sources[i]].n_out}")
            if d.exit and (d.last or d.n_out != descs[-1].n_out or d.n_out < 2):
                raise ImageError(f"{where}: an exit test on a layer that is last, or whose {d.n_out} outputs are "
                                 f"not the last layer's {descs[-1].n_out} (at least 2)")
            if not d.exit and d.threshold:
                raise ImageError(f"{where}: a threshold ({d.threshold}) without an exit test")
            if f["fa"] + f["fw"] - f["fo"] != d.shift:
                raise ImageError(f"{where}: the manifest's formats (fa={f['fa']}, fw={f['fw']}, fo={f['fo']}) "
                                 f"do not give the layer table's shift {d.shift}")
            if d.shift > c.max_shift:
                raise ImageError(f"{where}: shift {d.shift} exceeds the largest the hardware implements "
                                 f"({c.max_shift} = acc_bits - 1)")
            layer_codebook = codebook[i << c.code_bits:(i + 1) << c.code_bits].copy()
            if layer_codebook[0] != 0:
                raise ImageError(f"{where}: codebook[0] = {layer_codebook[0]}, but code 0 is the reserved "
                                 f"zero of padding entries and must be 0")
            parts, colptr_parts, offset = [], [np.zeros(1, dtype=np.int64)], 0
            for k in range(c.n_pe):
                p = ptrs[k][d.ptr_base:d.ptr_base + d.n_in + 1]
                if np.any(np.diff(p) < 0) or p[0] < 0 or p[-1] > entries[k].size:
                    raise ImageError(f"{where}, PE {k}: pointers are not increasing inside the "
                                     f"{entries[k].size} stored entries (first {p[0]}, last {p[-1]})")
                parts.append(entries[k][p[0]:p[-1]])
                colptr_parts.append(p[1:] - p[0] + offset)
                offset += int(p[-1] - p[0])
            b = bias_mem[:, d.bias_base:d.bias_base + rows].T.reshape(-1)[:d.n_out]
            layer = ImageLayer(config=c, n_in=d.n_in, n_out=d.n_out, relu=d.relu, fa=f["fa"], fw=f["fw"],
                               fo=f["fo"], codebook=layer_codebook,
                               bias=b.copy(), entries=np.concatenate(parts),
                               colptr=np.concatenate(colptr_parts), order=_order(f.get("order"), d.n_out, where),
                               src=sources[i], exit_threshold=d.threshold if d.exit else None)
            layer.validate(i)
            layers.append(layer)
        for i in range(1, len(layers)):
            src = layers[sources[i]]
            if layers[i].fa != src.fo:
                raise ImageError(f"layer {i}: fa = {layers[i].fa} does not match layer {sources[i]}'s fo = {src.fo}")
        image = cls(c, layers)
        if image.banks != [(d.src_bank, d.dst_bank) for d in descs]:
            raise ImageError("the layer table's activation-buffer halves are not the ones sw.pack assigns")
        return image

    # ---- files --------------------------------------------------------------

    def manifest(self, files: dict[str, dict]) -> dict:
        """The manifest of this image with the given memory files, sealed
        with its own checksum (`sw.manifest`)."""
        return manifest_mod.seal({
            "format": fmt.FORMAT_NAME,
            "version": manifest_mod.MANIFEST_VERSION,
            "config": self.config.to_dict(),
            "layers": [self._layer_manifest(l) for l in self.layers],
            "memories": files,
        })

    @staticmethod
    def _layer_manifest(l: ImageLayer) -> dict:
        return {"n_in": l.n_in, "n_out": l.n_out, "relu": l.relu, "fa": l.fa, "fw": l.fw, "fo": l.fo,
                "shift": l.shift, "nnz": l.nnz, "entries": int(l.entries.size),
                "order": [] if l.order is None else l.order.tolist(), "src": l.src,
                "exit_threshold": l.exit_threshold}

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the image as a directory: ``manifest.json`` plus one
        `$readmemh` file per memory. The directory appears complete or not at
        all (written under a temporary name, then renamed into place).

        Without `overwrite` nothing that exists at `path`, or appears there
        during the save, is ever replaced: `sw.files.OutputExistsError`. With
        it, only an OpenEIE image or an empty directory is replaced, and
        atomically. Temporaries of earlier saves of `path` that were killed
        half-way are removed."""
        with atomic_directory(path, overwrite=overwrite, replaceable=_replaceable) as tmp:
            files = {}
            for name, m in self.memories().items():
                data = m.hex_bytes()
                (tmp / f"{name}.hex").write_bytes(data)
                files[name] = {"file": f"{name}.hex", "width": m.width, "depth": m.depth,
                               "words": int(m.words.size), "sha256": fmt.sha256(data)}
            (tmp / "manifest.json").write_text(json.dumps(self.manifest(files), indent=1) + "\n")
        return Path(os.path.abspath(path))

    @classmethod
    def load(cls, path) -> Image:
        """Read a directory written by `save`, strictly: the manifest's every
        field (its own checksum, types, the configuration with every key),
        every file's checksum and contents, every layer field against the
        memories, and finally that the memories are exactly what `sw.pack`
        writes for the model they hold. So an image that loads runs the same
        on the golden model and on the RTL. Raises `ImageError` naming the
        file, memory, layer or field."""
        path = Path(path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise ImageError(f"{path}: not an OpenEIE image (no manifest.json)")
        try:
            manifest = json.loads(manifest_path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ImageError(f"{manifest_path}: not valid JSON ({e})") from None
        try:
            config, formats, files = manifest_mod.check_manifest(manifest, str(manifest_path))
        except FormatError as e:
            raise ImageError(str(e)) from None
        memories = {}
        for name, entry in files.items():
            file = path / entry["file"]
            if not file.is_file():
                raise ImageError(f"{file}: missing")
            data = file.read_bytes()
            if fmt.sha256(data) != entry["sha256"]:
                raise ImageError(f"{file}: checksum does not match the manifest (corrupt or edited)")
            try:
                words = fmt.parse_hex(data, entry["width"], entry["depth"], str(file))
            except FormatError as e:
                raise ImageError(str(e)) from None
            if words.size != entry["words"]:
                raise ImageError(f"{file}: {words.size} words, the manifest says {entry['words']}")
            memories[name] = MemoryImage(name, entry["width"], entry["depth"], words)
        try:
            image = cls.from_memories(config, memories, formats)
            for i, (layer, f) in enumerate(zip(image.layers, formats)):
                got = cls._layer_manifest(layer)
                for k, v in got.items():
                    if f[k] != v:
                        raise ImageError(f"layer {i}: the manifest says {k} = {f[k]!r}, the memories hold {v!r}")
            image.check_canonical(memories)
        except ImageError as e:
            raise ImageError(f"{path}: {e}") from None
        return image

    def check_canonical(self, memories: dict[str, MemoryImage]):
        """Check that `memories` (as read from files, say, and rebuilt into
        this image by `from_memories`) are exactly what `sw.pack` writes for
        the model this image holds (`sw.unpack`): no hand-made padding, stray
        words, or contents the golden model and the RTL could read apart.
        Raises `ImageError` naming the memory and the first word that differs."""
        from .model import ModelError
        from .pack import PackError, pack, unpack
        try:
            canonical = pack(unpack(self), self.config, row_orders=[l.order for l in self.layers]).memories()
        except (ModelError, PackError) as e:
            raise ImageError(str(e)) from None
        for name, m in memories.items():
            want = canonical[name].words
            if np.array_equal(m.words, want):
                continue
            n = min(m.words.size, want.size)
            diff = np.flatnonzero(m.words[:n] != want[:n])
            if diff.size:
                w = int(diff[0])
                detail = f"word {w} is {int(m.words[w]):#x}, sw.pack writes {int(want[w]):#x}"
            else:
                detail = f"{m.words.size} words, sw.pack writes {want.size}"
            raise ImageError(f"memory {name}: {detail} (not as sw.pack writes this model: edited?)")

    # ---- accounting ----------------------------------------------------------

    def stats(self):
        """Storage and balance per layer and PE; see `sw.stats.ImageStats`."""
        from .stats import image_stats
        return image_stats(self)

    def __repr__(self):
        shape = " -> ".join([str(self.n_in)] + [str(l.n_out) for l in self.layers])
        return f"Image({shape}, n_pe={self.config.n_pe})"

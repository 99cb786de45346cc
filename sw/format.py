"""The weight image format (docs/design.md §4) as bits in memories.

The one place that says how an image sits in the accelerator's memories;
`sw.pack` writes it, `hw` builds its memories from `memory_specs`, `sim`
loads it, `synth` reports it. Memories (`Config` gives every width and
depth):

=================  ============================  =================================
name               width x depth                 contents
=================  ============================  =================================
``layers``         32 x ``8 * max_layers``       layer descriptors, 8 words each
                                                 (`DESCRIPTOR_FIELDS`)
``codebook``       ``weight_bits`` x             codebook of layer ``l`` at
                   ``max_layers << code_bits``   ``l << code_bits``
``pe{k}.entries``  ``word_bits`` x               entries of PE ``k``, all layers
                   ``entry_words``               back to back; lane ``e`` of word
                                                 ``w`` is entry ``w * E + e``
``pe{k}.ptr_even`` ``bank_bits`` x               the two banks of PE ``k``:
``pe{k}.ptr_odd``  ``pointer_depth / 2`` each    absolute pointers first (global
                                                 pointer ``g`` in bank ``g % 2`` at
                                                 word ``g // 2``), then the biases
                                                 (row ``i * n_pe + k`` of layer
                                                 ``l`` at word ``bias_base[l] + i``,
                                                 low half in the even bank, high
                                                 half in the odd one)
=================  ============================  =================================

Layer ``l``'s pointers are at global pointer index ``ptr_base[l] + j``
(``j`` in ``0..n_in``); ``ptr_base`` and ``bias_base`` are the same in every
PE, entry offsets differ per PE and are folded into the absolute pointers.
The biases share the pointer banks because both banks are read in one cycle
and sit idle during write-back, when the biases are needed: no memory of
their own (on an FPGA, no block RAM of their own).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from .config import Config

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "DESC_WORDS", "DESCRIPTOR_FIELDS", "MAX_EXIT_ACT_BITS", "Descriptor", "MemoryImage", "MemorySpec",
    "memory_specs", "kind_specs", "memory_shapes", "split_bias", "join_bias", "PE_MEMORIES", "GLOBAL_MEMORIES",
    "make_entries", "entry_runs", "entry_codes", "encode_columns", "decode_rows", "pack_words", "unpack_words",
    "memory_names", "pe_memory_name", "hex_bytes", "parse_hex", "FormatError",
]

FORMAT_NAME = "openeie-image"
FORMAT_VERSION = 3         # the memory layout (2: biases in the pointer banks; 3: descriptors name their banks
                           # and carry exit tests)


class FormatError(ValueError):
    """An image, or a file of one, does not follow the format."""


# ---- entries ---------------------------------------------------------------

def entry_dtype(config: Config):
    return np.uint8 if config.entry_bits <= 8 else np.uint16


def make_entries(runs, codes, config: Config) -> np.ndarray:
    """Encode `(run, code)` pairs: ``(code << run_bits) | run``."""
    runs = np.asarray(runs)
    codes = np.asarray(codes)
    out = (codes.astype(np.uint32) << config.run_bits) | runs.astype(np.uint32)
    return out.astype(entry_dtype(config))


def entry_runs(entries, config: Config) -> np.ndarray:
    return np.asarray(entries) & config.max_run


def entry_codes(entries, config: Config) -> np.ndarray:
    return np.asarray(entries) >> config.run_bits


def pack_words(entries, config: Config) -> np.ndarray:
    """Pack entries little-endian into sparse-matrix words (uint64); the last
    word is zero-filled (a zero lane is a padding entry of run 0)."""
    E = config.entries_per_word
    entries = np.asarray(entries, dtype=np.uint64)
    n_words = -(-entries.size // E)
    lanes = np.zeros(n_words * E, dtype=np.uint64)
    lanes[:entries.size] = entries
    lanes = lanes.reshape(n_words, E)
    shifts = np.arange(E, dtype=np.uint64) * np.uint64(config.entry_bits)
    return np.bitwise_or.reduce(lanes << shifts, axis=1) if E > 1 else lanes[:, 0].copy()


def unpack_words(words, config: Config) -> np.ndarray:
    """Inverse of `pack_words`: every lane of every word, in entry order."""
    E = config.entries_per_word
    words = np.asarray(words, dtype=np.uint64)
    shifts = np.arange(E, dtype=np.uint64) * np.uint64(config.entry_bits)
    mask = np.uint64((1 << config.entry_bits) - 1)
    lanes = (words[:, None] >> shifts) & mask
    return lanes.reshape(-1).astype(entry_dtype(config))


def column_gaps(local: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """The zero rows before each nonzero of CSC columns (`local` rows,
    increasing inside each column; `indptr`): since the previous nonzero of
    its column, or since row 0. A gap ``z`` needs ``z >> run_bits`` padding
    entries."""
    nnz = local.size
    local = local.astype(np.int64, copy=False)
    prev = np.empty(nnz, dtype=np.int64)
    prev[1:] = local[:-1]
    starts = np.asarray(indptr)[:-1]
    prev[starts[starts < nnz]] = -1           # first nonzero of each column
    return local - prev - 1


def encode_columns(local: np.ndarray, codes: np.ndarray, indptr: np.ndarray, config: Config):
    """Encode the compressed columns of one PE (CSC arrays: `local` rows,
    increasing inside each column; `codes`; `indptr`). Returns `(entries,
    pointers)`."""
    gap = column_gaps(local, indptr)
    pads = gap >> config.run_bits             # each padding entry skips R + 1 rows
    if not pads.any():
        return make_entries(gap, codes, config), indptr.astype(np.int64)
    ends = np.cumsum(pads + 1)                # one past each nonzero's entry
    entries = np.full(int(ends[-1]), config.max_run, dtype=entry_dtype(config))   # (R, 0)
    entries[ends - 1] = make_entries(gap & config.max_run, codes, config)
    return entries, np.concatenate([[0], ends])[indptr]


def decode_rows(entries: np.ndarray, colptr: np.ndarray, config: Config) -> np.ndarray:
    """Local row of every entry under `colptr` (docs/design.md §4:
    ``row = -1; row += run + 1`` per entry, restarting at each column).
    int32 when the running sum allows (it is what scipy's indices use)."""
    dt = np.int32 if entries.size * (config.max_run + 1) < 2**31 else np.int64
    counts = np.diff(colptr)
    steps = entry_runs(entries, config).astype(dt)
    steps += 1
    csum = np.cumsum(steps, dtype=dt)
    base = np.concatenate([np.zeros(1, dt), csum])[colptr[:-1] - colptr[0]]     # csum before each column
    csum -= np.repeat(base, counts)
    csum -= 1
    return csum


# ---- layer descriptors -----------------------------------------------------

DESC_WORDS = 8          # words per descriptor in the `layers` memory

# (word, lsb, width) of every descriptor field: the one table `Descriptor`
# encodes with and the control unit decodes with
DESCRIPTOR_FIELDS = {
    "n_in": (0, 0, 32),
    "n_out": (1, 0, 32),
    "ptr_base": (2, 0, 32),
    "bias_base": (3, 0, 32),
    "shift": (4, 0, 8),
    "relu": (4, 8, 1),
    "last": (4, 9, 1),
    "src_bank": (4, 10, 1),     # the activation-buffer half the layer reads (layer 0 reads the input)
    "dst_bank": (4, 11, 1),     # and the one it writes (the same one: in place)
    "exit": (4, 12, 1),         # the layer ends an exit head: test its outputs' margin
    "threshold": (4, 13, 19),   # the margin that ends the run there (in word 4: a sixth word would cost
                                # every layer a cycle of DESC; so exit heads need act_bits <= 18)
}
MAX_EXIT_ACT_BITS = DESCRIPTOR_FIELDS["threshold"][2] - 1     # thresholds go up to 2**act_bits


@dataclass(frozen=True)
class Descriptor:
    """What the control unit needs to run one layer (all PEs share it)."""
    n_in: int
    n_out: int
    ptr_base: int       # global pointer index of this layer's pointer 0
    bias_base: int      # pointer-bank word of this layer's local row 0's bias
    shift: int
    relu: bool
    last: bool
    src_bank: int = 0
    dst_bank: int = 0
    exit: bool = False
    threshold: int = 0

    def words(self) -> list[int]:
        w = [0] * DESC_WORDS
        for name, (word, lsb, width) in DESCRIPTOR_FIELDS.items():
            value = int(getattr(self, name))
            if not 0 <= value < 1 << width:
                raise FormatError(f"descriptor field {name} = {value} does not fit {width} bits")
            w[word] |= value << lsb
        return w

    @classmethod
    def from_words(cls, w) -> Descriptor:
        w = [int(x) for x in w]
        fields = {name: (w[word] >> lsb) & ((1 << width) - 1)
                  for name, (word, lsb, width) in DESCRIPTOR_FIELDS.items()}
        return cls(**{k: bool(v) if k in ("relu", "last", "exit") else v for k, v in fields.items()})


# ---- memories --------------------------------------------------------------

PE_MEMORIES = ("entries", "ptr_even", "ptr_odd")       # per PE, in host-map kind order
GLOBAL_MEMORIES = ("layers", "codebook")


@dataclass(frozen=True)
class MemorySpec:
    """One RTL memory that an image fills: its image name (``pe3.entries``),
    kind (``entries``), PE (None for a global memory), shape, and whether
    its contents are two's complement (`signed`: initial values are given
    to the hardware as signed integers)."""
    name: str
    kind: str
    pe: int | None
    width: int
    depth: int
    signed: bool


def pe_memory_name(pe: int, what: str) -> str:
    return f"pe{pe}.{what}"


def kind_specs(config: Config) -> dict[str, MemorySpec]:
    """One spec per kind of memory (a PE memory's with ``pe`` None, named by
    its kind): what a hardware block builds its memory from."""
    c = config
    specs = [MemorySpec("layers", "layers", None, 32, DESC_WORDS * c.max_layers, False),
             MemorySpec("codebook", "codebook", None, c.weight_bits, c.max_layers << c.code_bits, True),
             MemorySpec("entries", "entries", None, c.word_bits, c.entry_words, False),
             MemorySpec("ptr_even", "ptr_even", None, c.bank_bits, c.bank_depth, False),
             MemorySpec("ptr_odd", "ptr_odd", None, c.bank_bits, c.bank_depth, False)]
    return {s.kind: s for s in specs}


def memory_specs(config: Config) -> dict[str, MemorySpec]:
    """Every image memory, in a stable order: the one description the image,
    the hardware, the host map, the simulator and the synthesis report use."""
    kinds = kind_specs(config)
    out = {k: kinds[k] for k in GLOBAL_MEMORIES}
    for pe in range(config.n_pe):
        for kind in PE_MEMORIES:
            name = pe_memory_name(pe, kind)
            out[name] = dataclasses.replace(kinds[kind], name=name, pe=pe)
    return out


def memory_shapes(config: Config) -> dict[str, tuple[int, int]]:
    """Every image memory's `(width, depth)`, in a stable order."""
    return {name: (s.width, s.depth) for name, s in memory_specs(config).items()}


def memory_names(config: Config) -> list[str]:
    return list(memory_specs(config))


def split_bias(bias, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Biases (signed, accumulator format) as the words of the even bank (the
    low ``bias_low_bits``) and of the odd bank (the rest, two's complement)."""
    b = mask_words(bias, config.acc_bits)
    low = config.bias_low_bits
    return b & np.uint64((1 << low) - 1), b >> np.uint64(low)


def join_bias(even, odd, config: Config) -> np.ndarray:
    """Inverse of `split_bias`: signed biases from the two banks' words."""
    low = config.bias_low_bits
    high_mask = np.uint64((1 << (config.acc_bits - low)) - 1)
    words = (np.asarray(odd, dtype=np.uint64) & high_mask) << np.uint64(low)
    words |= np.asarray(even, dtype=np.uint64) & np.uint64((1 << low) - 1)
    return signed_words(words, config.acc_bits)


@dataclass(frozen=True, eq=False)
class MemoryImage:
    """One RTL memory as the hardware holds it: `words` (uint64, two's
    complement masked to `width`) fill addresses ``0..len(words)-1``; the rest
    of the `depth` words are zero."""
    name: str
    width: int
    depth: int
    words: np.ndarray

    def __post_init__(self):
        if self.words.dtype != np.uint64 or self.words.ndim != 1:
            raise FormatError(f"memory {self.name}: words must be a 1-D uint64 array")
        if self.words.size > self.depth:
            raise FormatError(
                f"memory {self.name}: {self.words.size} words do not fit its depth {self.depth}")
        if self.width < 64 and self.words.size and int(self.words.max()) >> self.width:
            raise FormatError(f"memory {self.name}: a word is wider than {self.width} bits")

    def padded(self, depth: int | None = None) -> np.ndarray:
        """The words zero-filled to `depth` (default: the memory's depth)."""
        out = np.zeros(self.depth if depth is None else depth, dtype=np.uint64)
        out[:self.words.size] = self.words
        return out

    def hex_bytes(self) -> bytes:
        return hex_bytes(self.words, self.width)

    def __eq__(self, other):
        return (isinstance(other, MemoryImage) and (self.name, self.width, self.depth)
                == (other.name, other.width, other.depth) and np.array_equal(self.words, other.words))


def mask_words(values, width: int) -> np.ndarray:
    """Signed or unsigned integers to `width`-bit two's complement uint64."""
    values = np.asarray(values, dtype=np.int64)
    if width >= 64:
        return values.view(np.uint64)
    return (values & np.int64((1 << width) - 1)).astype(np.uint64)


def signed_words(words, width: int) -> np.ndarray:
    """Inverse of `mask_words` for signed contents."""
    w = np.asarray(words, dtype=np.uint64)
    if width >= 64:
        return w.view(np.int64)
    v = w.astype(np.int64)
    return np.where(v >> (width - 1), v - (np.int64(1) << np.int64(width)), v)


# ---- $readmemh files -------------------------------------------------------

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_bytes(words, width: int) -> bytes:
    """A `$readmemh` file: one word per line, fixed `ceil(width/4)` lower-case
    hex digits, no address markers or comments."""
    words = np.asarray(words, dtype=np.uint64)
    digits = -(-width // 4)
    shifts = np.arange(digits - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = ((words[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)
    out = np.empty((words.size, digits + 1), dtype=np.uint8)
    out[:, :digits] = _HEX[nibbles]
    out[:, digits] = ord("\n")
    return out.tobytes()


def parse_hex(data: bytes, width: int, depth: int, where: str) -> np.ndarray:
    """Parse a file written by `hex_bytes`; strict, so edits and truncation
    are caught with the file and line named in `where`."""
    digits = -(-width // 4)
    line = digits + 1
    if len(data) % line:
        raise FormatError(f"{where}: length {len(data)} is not a whole number of "
                          f"{digits}-digit lines (truncated or edited?)")
    n = len(data) // line
    if n > depth:
        raise FormatError(f"{where}: {n} words exceed the memory depth {depth}")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(n, line)
    if n and not np.all(raw[:, digits] == ord("\n")):
        bad = int(np.argmax(raw[:, digits] != ord("\n")))
        raise FormatError(f"{where}: line {bad + 1} is not {digits} hex digits")
    chars = raw[:, :digits]
    value = np.full(chars.shape, 255, dtype=np.uint8)
    for v, c in enumerate(b"0123456789abcdef"):
        value[chars == c] = v
    if n and value.max() == 255:
        bad = int(np.argmax((value == 255).any(axis=1)))
        raise FormatError(f"{where}: line {bad + 1} has a character that is not a "
                          f"lower-case hex digit: {bytes(chars[bad])!r}")
    words = np.zeros(n, dtype=np.uint64)
    for d in range(digits):
        words = (words << np.uint64(4)) | value[:, d].astype(np.uint64)
    if width % 4 and n and int(words.max()) >> width:
        bad = int(np.argmax(words >> np.uint64(width)))
        raise FormatError(f"{where}: line {bad + 1} is wider than {width} bits")
    return words


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

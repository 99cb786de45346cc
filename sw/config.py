"""The hardware configuration (docs/design.md §3): one immutable object that
`sw` packs for and `hw` builds from. Every width and depth of the accelerator
is here or derived here; nothing about it is repeated elsewhere."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

__all__ = ["Config", "ConfigError", "PRESETS"]


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent."""


def _is_pow2(n: int) -> bool:
    return n > 0 and (n & (n - 1)) == 0


@dataclass(frozen=True)
class Config:
    """Hardware parameters. Defaults are generous enough to simulate EIE's
    benchmark layers at 64 PEs; real boards use smaller presets.

    Capacities are per PE. Summed over all layers of a model:
    ``weight_depth`` sparse-matrix entries; ``pointer_depth`` slots of the
    two pointer banks, for column pointers (a layer uses ``n_in + 1``) and
    biases (a layer uses two per output row it has in the PE, one in each
    bank); ``max_layers`` layer descriptors. For each layer on its own:
    ``row_depth`` output rows per PE (a layer uses ``ceil(n_out / n_pe)``;
    the depth of the accumulator and of each half of the activation buffer).
    ``input_width``: layer 0's input values per beat of the input stream (its
    zeros are skipped a beat at a time). ``broadcast_width``: activations
    the broadcast sends, and each PE takes, per cycle (1 or 2; layer 0's up
    to 2 of a beat; later layers' from a nonzero tree per lane).
    ``exit_heads``: 1 builds the exit test that ends a run at a confident
    exit head (docs/design.md §15); 0 leaves it out (about 180 logic cells
    fewer on an iCE40), and images with exit heads are refused.
    ``column_fifo_depth``: nonempty columns each PE's column FIFO holds
    between the pointer banks and the sparse-matrix reads (per lane); 7
    keeps a PE at a column a cycle, fewer cost cycles where columns are
    short; four or fewer are built in registers, not a memory (for the
    iCE40, where a memory costs an EBR per 16 bits of width); at least 3.
    ``busy_logs``: 1 builds each PE's count of its busy cycles, logged per
    layer for the host (docs/design.md §8); 0 leaves them out (about 150
    logic cells a PE on an iCE40), and `sim` then reports no busy cycles.
    ``short_pipeline``: 1 leaves out the registers that only a fast clock
    needs (behind block RAMs, beside the multiplier, between the write-back's
    shifter stages: docs/design.md §7), for a slow part such as the
    iCE40 UP5K; the same results in fewer cycles a layer and fewer cells,
    at a lower Fmax. 0 (the default) is the pipeline that meets 100 MHz on
    the ECP5.
    """

    n_pe: int = 16
    code_bits: int = 4
    run_bits: int = 4
    act_bits: int = 16
    weight_bits: int = 16
    acc_bits: int = 32
    fifo_depth: int = 8
    input_width: int = 1
    broadcast_width: int = 1
    entries_per_word: int = 2
    weight_depth: int = 65536
    pointer_depth: int = 32768
    row_depth: int = 1024
    max_layers: int = 16
    exit_heads: int = 1
    short_pipeline: int = 0
    column_fifo_depth: int = 7
    busy_logs: int = 1

    # ---- validation -------------------------------------------------------

    _RANGES = {
        "n_pe": (1, 256),
        "code_bits": (1, 8),
        "run_bits": (1, 8),
        "act_bits": (2, 32),
        "weight_bits": (2, 32),
        "acc_bits": (2, 64),
        "fifo_depth": (4, 1024),   # the queues keep at least 3 pairs free (hw.accelerator.queue_slack)
        "input_width": (1, 64),
        "broadcast_width": (1, 2),
        "entries_per_word": (1, 64),
        "weight_depth": (1, 1 << 24),
        "pointer_depth": (2, 1 << 24),
        "row_depth": (1, 1 << 20),
        "max_layers": (1, 256),
        "exit_heads": (0, 1),
        "short_pipeline": (0, 1),
        "column_fifo_depth": (3, 1024),   # at 2 a second column can find the FIFO full (hw.register_fifo)
        "busy_logs": (0, 1),
    }

    # fields added after images were first written, and the value an image
    # without one was packed for (so that it still loads, strict as loads are)
    _SINCE = {"short_pipeline": 0, "column_fifo_depth": 7, "busy_logs": 1}

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"Config.{field.name} must be an int, got {value!r}")
            lo, hi = self._RANGES[field.name]
            if not lo <= value <= hi:
                raise ConfigError(f"Config.{field.name} must be in [{lo}, {hi}], got {value}")
        for name in ("n_pe", "entries_per_word", "input_width"):
            if not _is_pow2(getattr(self, name)):
                raise ConfigError(f"Config.{name} must be a power of two, got {getattr(self, name)}")
        if self.acc_bits < self.act_bits:
            raise ConfigError(
                f"Config.acc_bits ({self.acc_bits}) must be at least act_bits ({self.act_bits})")
        if self.word_bits > 64:
            raise ConfigError(
                f"a sparse-matrix word holds entries_per_word * (code_bits + run_bits) = "
                f"{self.entries_per_word} * {self.entry_bits} = {self.word_bits} bits; at most 64 are supported")
        if self.weight_depth % self.entries_per_word:
            raise ConfigError(
                f"Config.weight_depth ({self.weight_depth}) must be a multiple of "
                f"entries_per_word ({self.entries_per_word})")
        if self.pointer_depth % 2:
            raise ConfigError(
                f"Config.pointer_depth ({self.pointer_depth}) must be even: pointers live in two banks")

    # ---- derived widths ---------------------------------------------------

    @property
    def entry_bits(self) -> int:
        """Width of one `(run, code)` entry; `code` is in the high bits."""
        return self.code_bits + self.run_bits

    @property
    def word_bits(self) -> int:
        """Width of one sparse-matrix memory word (`entries_per_word` lanes)."""
        return self.entry_bits * self.entries_per_word

    @property
    def entry_words(self) -> int:
        """Depth of the sparse-matrix memory in words."""
        return self.weight_depth // self.entries_per_word

    @property
    def n_codes(self) -> int:
        """Codebook length per layer; code 0 is the reserved exact zero."""
        return 1 << self.code_bits

    @property
    def max_run(self) -> int:
        """Longest run of zeros one entry can skip (`R` in docs/design.md §4)."""
        return (1 << self.run_bits) - 1

    @property
    def pointer_bits(self) -> int:
        """Width of an absolute pointer into the sparse-matrix memory (0..weight_depth)."""
        return self.weight_depth.bit_length()

    @property
    def bank_depth(self) -> int:
        """Words in each of the two pointer banks (pointers, then biases)."""
        return self.pointer_depth // 2

    @property
    def bias_low_bits(self) -> int:
        """Bits of a bias in the even bank (its low half); the rest is in the odd bank."""
        return -(-self.acc_bits // 2)

    @property
    def bank_bits(self) -> int:
        """Width of a pointer-bank word: a pointer or half a bias."""
        return max(self.pointer_bits, self.bias_low_bits)

    @property
    def max_inputs(self) -> int:
        """Largest `n_in` of any layer (layer 0 is bounded by the pointer memory;
        later layers also by the activation buffers, see `max_outputs`)."""
        return self.pointer_depth - 1

    def rows_per_pe(self, n_out: int) -> int:
        """Output rows each PE holds for a layer of `n_out` outputs (row ``r``
        is PE ``r % n_pe``'s local row ``r // n_pe``)."""
        return -(-n_out // self.n_pe)

    @property
    def max_outputs(self) -> int:
        """Largest `n_out` of any layer: `row_depth` rows in each PE."""
        return self.row_depth * self.n_pe

    @property
    def max_shift(self) -> int:
        """Largest write-back shift the hardware implements (`acc_bits` or more
        would leave only the sign)."""
        return self.acc_bits - 1

    # ---- presets ----------------------------------------------------------

    @classmethod
    def preset(cls, name: str, **changes) -> Config:
        """A configuration sized for a real part (see `PRESETS`), with
        `changes` on top (e.g. ``n_pe=16``: fewer PEs, the same memories per
        PE)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name]["config"], **changes})

    # ---- serialisation ----------------------------------------------------

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, *, complete: bool = False) -> Config:
        """A configuration from a dict; fields it lacks take their defaults
        unless `complete` (an image's manifest must list every field)."""
        if not isinstance(data, dict):
            raise ConfigError(f"a configuration must be a JSON object, got {type(data).__name__}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(map(str, unknown))}")
        missing = [k for k in known if k not in data and k not in cls._SINCE]
        if complete and missing:
            raise ConfigError(f"configuration keys missing: {', '.join(missing)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls.from_dict(json.loads(text))

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def key(self) -> str:
        """A short stable name for this configuration (used for build caches)."""
        import hashlib
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


# Configurations sized for the parts OpenEIE is synthesised for (`synth`):
# the whole accelerator fits with room for routing and every large memory
# sits in block RAM. `holds` says what a model may need per PE (the
# capacities are per PE, summed over layers).
PRESETS = {
    "ecp5-85f": {
        "part": "Lattice ECP5 LFE5U-85F (ULX3S)",
        # int8 activations and codebook values, 24-bit accumulators: what fits 64 PEs
        # (81% of the LUTs; 16-bit activations need about 25% more per PE)
        # input_width and broadcast_width 1: a board's UART bridge feeds one value a beat
        "config": dict(n_pe=64, code_bits=4, run_bits=4, act_bits=8, weight_bits=8, acc_bits=24, fifo_depth=16,
                       input_width=1, broadcast_width=1, entries_per_word=1, weight_depth=2048, pointer_depth=2048,
                       row_depth=32, max_layers=4, exit_heads=1, short_pipeline=0, column_fifo_depth=7, busy_logs=1),
        "holds": "2,048 entries (nonzeros and padding) per PE, 131,072 in all, in one 2048 x 9 block RAM; 2,048 "
                 "pointer-bank slots per PE in two 1024-word block RAMs (n_in + 1 per layer, and 2 per output row "
                 "for the biases); 32 output rows per PE in any one layer (2,048 outputs); 4 layers. A 384 -> "
                 "1536 -> 384 feed-forward block at 10% density (118,000 nonzeros) fits.",
    },
    "ice40-up5k": {
        "part": "Lattice iCE40 UP5K",
        # 4 PEs in the 30 EBR: a PE reads six memories at once, each an EBR at 16 bits
        # or less, so the accumulators are 16 bits, the queue entries 16 (an 8-bit
        # column index: 256 pointer-bank slots) and the column FIFO is in registers;
        # no busy logs and no exit test, for the logic cells (docs/design.md §11)
        "config": dict(n_pe=4, code_bits=4, run_bits=4, act_bits=8, weight_bits=8, acc_bits=16, fifo_depth=8,
                       input_width=1, broadcast_width=1, entries_per_word=2, weight_depth=32768, pointer_depth=256,
                       row_depth=64, max_layers=4, exit_heads=0, short_pipeline=1, column_fifo_depth=4,
                       busy_logs=0),
        "holds": "32,768 entries per PE (one SPRAM each: it has no initial contents, so the sparse matrix is "
                 "loaded at run time), 256 pointer-bank slots per PE (n_in + 1 per layer and 2 per output row), "
                 "64 output rows in any one layer, 4 layers: the digits MLP fits (95.6% with 16-bit "
                 "accumulators, 96.7% with the icebreaker preset's 24), without exit heads.",
    },
    "icebreaker": {
        "part": "Lattice iCE40 UP5K on the iCEBreaker, beside the UART bridge",
        # the board's build (`make bitstream BOARD=icebreaker`): 2 PEs with 24-bit
        # accumulators, the exit test and busy logs, the column FIFO in EBR
        "config": dict(n_pe=2, code_bits=4, run_bits=4, act_bits=8, weight_bits=8, acc_bits=24, fifo_depth=8,
                       input_width=1, broadcast_width=1, entries_per_word=2, weight_depth=32768, pointer_depth=512,
                       row_depth=64, max_layers=4, exit_heads=1, short_pipeline=1, column_fifo_depth=7, busy_logs=1),
        "holds": "32,768 entries per PE (one SPRAM each: it has no initial contents, so the sparse matrix is "
                 "loaded at run time), 512 pointer-bank slots per PE (n_in + 1 per layer and 2 per output row), "
                 "64 output rows in any one layer, 4 layers: the digits MLP fits, and exit heads may be used.",
    },
}

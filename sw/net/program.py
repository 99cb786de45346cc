"""A compressed network packed for the accelerator, run bit-exactly, and its
cycles predicted.

    program = sw.pack(cnet, config)                 # or sw.net.pack_network
    y = sw.golden.run_network(program, x_int)       # (N, H, W, C) integers
    cycles = program.cycles(x_int)                  # the exact cycle model

Each `Engine` step becomes one image per ``max_layers`` layers (a longer
chain is split into programs that follow each other; the format is the same
across the cut). The host runs every other step between programs, on
integers (`sw.net.lower.host`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .. import golden
from ..config import Config
from ..fixedpoint import signed_range
from ..model import CompressedModel, ModelError
from .compress import CompressedNetwork
from .lower import Engine, Join, engines, host

__all__ = ["NetworkProgram", "NetworkCycles", "pack_network", "run_network"]


@dataclass
class NetworkCycles:
    """What the cycle model (`sw.perf.simulate`) predicts for a batch of
    images: `per_image` ``(N,)`` accelerator cycles (every program's vectors,
    start to done, summed; host steps take none), and `by_kind` the cycles
    (summed over the batch) in each kind of layer (``T_measured``) and, as
    ``"per-vector overhead"``, the rest of each run (start, descriptors,
    write-back drain, output). `vectors_per_image`: the runs an image takes
    (each program's vectors; a split program's twice)."""
    per_image: np.ndarray
    by_kind: dict
    vectors_per_image: int

    @property
    def mean(self) -> float:
        return float(self.per_image.mean())

    def shares(self) -> dict:
        total = sum(self.by_kind.values())
        return {k: v / total for k, v in self.by_kind.items()} if total else {}


@dataclass
class NetworkProgram:
    """A `CompressedNetwork` whose engine steps carry their packed `Image`s."""
    config: Config
    input_shape: tuple
    output_shape: tuple
    steps: list
    input_frac_bits: int
    output_frac_bits: int
    report: list = field(default_factory=list)

    def images(self) -> list:
        return [img for e in engines(self.steps) for img in e.images]

    def save(self, path, *, overwrite: bool = False):
        """Write the program as a directory (`sw.net.files`): atomically, and
        without `overwrite` never over anything that exists."""
        from .files import save_program
        return save_program(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path) -> NetworkProgram:
        """Read a directory written by `save`, strictly (`sw.net.files`)."""
        from .files import load_program
        return load_program(path)

    def check_input(self, x) -> np.ndarray:
        """Integer images ``(N, H, W, C)`` in the ``act_bits`` range, as int64."""
        x = np.asarray(x)
        if x.shape == tuple(self.input_shape):
            x = x[None]
        if x.ndim != 4 or x.shape[1:] != tuple(self.input_shape):
            raise ValueError(f"inputs must have shape (N, {', '.join(map(str, self.input_shape))}) (N, H, W, C), "
                             f"got {x.shape}")
        if x.size and not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"inputs must be integers in the accelerator's fixed-point format "
                            f"(sw.quantize_input), got dtype {x.dtype}")
        lo, hi = signed_range(self.config.act_bits)
        x = x.astype(np.int64)
        if x.size and (x.min() < lo or x.max() > hi):
            pos = np.unravel_index(np.argmax((x < lo) | (x > hi)), x.shape)
            raise ValueError(f"input {tuple(int(p) for p in pos)} = {x[pos]} is outside the act_bits = "
                             f"{self.config.act_bits} range {lo}..{hi}")
        return x

    def walk(self, x, run_engine, trace=None):
        """Every step on integer images `x`; `run_engine(step, k, image,
        vectors)` runs program `k` of an engine step on ``(N * pixels, C)``
        vectors and returns its outputs. `trace` collects each step's output."""
        return _walk(self.steps, self.check_input(x), run_engine, trace)

    def cycles(self, x) -> NetworkCycles:
        """The cycle model on integer images `x`."""
        from ..perf import simulate
        x = self.check_input(x)
        n = x.shape[0]
        per_image = np.zeros(n, dtype=np.int64)
        by_kind: dict = {}
        vectors = [0]

        def run(step, k, image, v):
            perf = simulate(image, v)
            per_image[:] += perf.cycles.reshape(n, -1).sum(axis=1)
            first = sum(len(img.layers) for img in step.images[:k])
            for l in range(len(image.layers)):
                kind = step.kinds[first + l]
                by_kind[kind] = by_kind.get(kind, 0) + int(perf.layer_cycles[:, l].sum())
            rest = int(perf.cycles.sum() - perf.layer_cycles.sum())
            by_kind["per-vector overhead"] = by_kind.get("per-vector overhead", 0) + rest
            vectors[0] += v.shape[0] // n
            return golden.run(image, v).astype(np.int64)

        _walk(self.steps, x, run, None)
        return NetworkCycles(per_image, by_kind, vectors[0])


def _walk(steps, x, run_engine, trace):
    for step in steps:
        if isinstance(step, Engine):
            n = x.shape[0]
            v = x.reshape(-1, x.shape[3])
            for k, image in enumerate(step.images):
                v = run_engine(step, k, image, v)
            x = v.reshape(n, step.out_shape[0], step.out_shape[1], -1)
        elif isinstance(step, Join):
            x = np.concatenate([_walk(b, x, run_engine, None) for b in step.branches], axis=3)
        else:
            x = host(step, x, fixed=True)
        if trace is not None:
            trace.append(x)
    return x


def _pack_steps(steps, config: Config, options: dict, counter: list) -> list:
    from ..pack import PackError, pack
    out = []
    for step in steps:
        if isinstance(step, Engine):
            layers = step.layers
            images = []
            for start in range(0, len(layers), config.max_layers):
                chunk = layers[start:start + config.max_layers]
                try:
                    images.append(pack(CompressedModel(chunk, chunk[0].fa), config, **options))
                except PackError as e:
                    kinds = ", ".join(step.kinds[start:start + config.max_layers])
                    raise PackError(f"program {counter[0]} ({kinds}; network layers {counter[1] + start} to "
                                    f"{counter[1] + start + len(chunk) - 1}): {e}") from None
                counter[0] += 1
            counter[1] += len(layers)
            step = replace(step, images=images)
        elif isinstance(step, Join):
            step = replace(step, branches=[_pack_steps(b, config, options, counter) for b in step.branches])
        out.append(step)
    return out


def pack_network(cnet: CompressedNetwork, config: Config | None = None, **options) -> NetworkProgram:
    """Pack every engine step of `cnet` for `config` (`options` as
    `sw.pack`'s). A layer too large for the configuration fails with
    `sw.pack`'s capacity error."""
    if not isinstance(cnet, CompressedNetwork):
        raise ModelError(f"pack_network takes an sw.net.CompressedNetwork, got {type(cnet).__name__}")
    config = Config() if config is None else config
    return NetworkProgram(config, cnet.input_shape, cnet.output_shape, _pack_steps(cnet.steps, config, options, [0, 0]),
                          cnet.input_frac_bits, cnet.output_frac_bits, list(cnet.report))


def run_network(program: NetworkProgram, x, trace: bool = False):
    """Run `program` on integer images ``(N, H, W, C)`` bit-exactly (the
    golden model for each program, the host steps between). Returns the
    output ``(N, H', W', C')`` int64 (``(N, 1, 1, classes)`` after a
    Flatten and Linear), or with `trace` every step's output."""
    if not isinstance(program, NetworkProgram):
        raise TypeError(f"run_network takes an sw.net.NetworkProgram (sw.pack of a compressed network), "
                        f"got {type(program).__name__}")
    outs = [] if trace else None
    y = program.walk(x, lambda step, k, image, v: golden.run(image, v).astype(np.int64), outs)
    return outs if trace else y

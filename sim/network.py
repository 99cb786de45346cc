"""A packed network (`sw.net.NetworkProgram`) on the RTL: every program's
vectors through Verilator (one launch per program; the build is cached per
configuration), the host steps between, every output of every program
checked against the golden model.

    result = sim.run_network(program, x_int)       # (N, H, W, C) integers
    result.bit_exact_images, result.cycles_per_image

Each program's RTL outputs are compared with the golden model's on the same
inputs, and the golden outputs go on to the next step: a mismatch is
reported for the program where it happens (and the image it belongs to),
not smeared over the layers after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from sw import golden
from sw.perf import simulate

from .runner import run, stderr_progress

__all__ = ["NetworkSimResult", "run_network"]


@dataclass
class NetworkSimResult:
    """`outputs`: the network's outputs (``(N, ...)`` int64; each program ran
    on the golden model's inputs, so for an image with `image_ok` they are
    the RTL's outputs too). `image_ok[n]`: every output of every program for image ``n``
    matched the golden model. `cycles_per_image[n]`: RTL cycles of its
    vectors (start to done, summed over programs); `model_cycles_per_image`:
    what the cycle model (`sw.perf.simulate`) predicts for the same.
    `programs`: per program, its name, vectors, mismatched vectors, RTL and
    model cycles."""
    outputs: np.ndarray
    image_ok: np.ndarray
    cycles_per_image: np.ndarray
    model_cycles_per_image: np.ndarray
    programs: list = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def bit_exact_images(self) -> int:
        return int(self.image_ok.sum())

    @property
    def cycle_model_exact(self) -> bool:
        return bool(np.array_equal(self.cycles_per_image, self.model_cycles_per_image))


def run_network(program, x, *, progress=stderr_progress, progress_bar: bool | None = None) -> NetworkSimResult:
    """Run `program` on integer images `x` on the RTL (see the module)."""
    t0 = time.perf_counter()
    x = program.check_input(x)
    n = x.shape[0]
    ok = np.ones(n, dtype=bool)
    cycles = np.zeros(n, dtype=np.int64)
    model = np.zeros(n, dtype=np.int64)
    programs = []

    def run_engine(step, k, image, v):
        first = sum(len(i.layers) for i in step.images[:k])
        name = f"program {len(programs)} ({', '.join(step.kinds[first:first + len(image.layers)])})"
        if progress:
            progress(f"{name}: {v.shape[0]:,} vectors on the RTL")
        result = run(image, v, progress=progress, progress_bar=progress_bar)
        expect = golden.run(image, v).astype(np.int64)
        got = result.outputs.astype(np.int64)
        bad = np.any(got != expect, axis=1).reshape(n, -1)
        ok[:] &= ~bad.any(axis=1)
        rtl = result.cycles.reshape(n, -1).sum(axis=1)
        predicted = simulate(image, v).cycles.reshape(n, -1).sum(axis=1)
        cycles[:] += rtl
        model[:] += predicted
        programs.append({"program": name, "vectors": int(v.shape[0]), "mismatched_vectors": int(bad.sum()),
                         "rtl_cycles": int(rtl.sum()), "model_cycles": int(predicted.sum())})
        return expect

    y = program.walk(x, run_engine)
    return NetworkSimResult(y, ok, cycles, model, programs, time.perf_counter() - t0)

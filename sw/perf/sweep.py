"""Sweeps of the cycle model over configurations and synthetic layers.

A sweep is a list of `Point`s, each evaluated on its own (a seeded synthetic
layer packed for its configuration, then `sw.perf.simulate`), so any
`concurrent.futures.Executor` can run it: a process pool on one machine, or
a cluster's (Dask's and Ray's clients offer the same interface)::

    from concurrent.futures import ProcessPoolExecutor
    points = grid(layers=["NT-We", "Alex-7"], n_pe=[16, 64, 256], fifo_depth=[8, 16])
    with ProcessPoolExecutor() as pool:
        rows = sweep(points, executor=pool)
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass

import numpy as np

from .. import eie

__all__ = ["Point", "evaluate", "sweep", "grid"]


@dataclass(frozen=True)
class Point:
    """One evaluation: an EIE layer by name (`sw.eie.LAYERS`), or a shape
    and densities; the PE count, queue depth, run width, input and broadcast
    widths and whether the rows are balanced (``sw.pack(balance=True)``); the seed and
    number of input vectors. A density given with a `layer` overrides the
    layer's own."""
    layer: str | None = None
    n_in: int | None = None
    n_out: int | None = None
    weight_density: float | None = None
    act_density: float | None = None
    n_pe: int = eie.EIE_N_PE
    fifo_depth: int = 8
    run_bits: int = 4
    input_width: int = 1
    broadcast_width: int = 1
    balance: bool = False
    vectors: int = 1
    seed: int = 0

    def resolved(self) -> dict:
        """The shape and densities, from the EIE layer where not given."""
        spec = {s.name: s for s in eie.LAYERS}.get(self.layer) if self.layer else None
        if self.layer and spec is None:
            raise KeyError(f"no EIE layer {self.layer!r}; the layers are {', '.join(s.name for s in eie.LAYERS)}")
        out = {}
        for name in ("n_in", "n_out", "weight_density", "act_density"):
            value = getattr(self, name)
            if value is None:
                if spec is None:
                    raise ValueError(f"a point without an EIE layer needs {name}")
                value = getattr(spec, name)
            out[name] = value
        out["relu"] = spec.relu if spec else True
        return out


def evaluate(point: Point) -> dict:
    """The cycle model's numbers for `point` (means over its vectors): a
    JSON-ready dict of the point's fields and ``t_measured``, ``t_ideal``,
    ``efficiency``, ``stall_cycles``, ``busy_max_over_mean``, ``entries``,
    ``padding`` (entries in the image that carry no weight) and ``seconds``
    (packing and the model)."""
    from . import simulate
    t0 = time.perf_counter()
    shape = point.resolved()
    seed = [point.seed, *(int(v * 1e6) if isinstance(v, float) else v
                          for v in (shape["n_in"], shape["n_out"], shape["weight_density"], shape["act_density"]))]
    if point.layer and all(getattr(point, n) is None for n in ("n_in", "n_out", "weight_density", "act_density")):
        model, x = eie.layer(point.layer, point.vectors, point.seed)     # the suite's own matrices
    else:
        model, x = eie.synthetic(shape["n_in"], shape["n_out"], shape["weight_density"], shape["act_density"],
                                 relu=shape["relu"], vectors=point.vectors, seed=seed)
    image = eie.pack(model, point.n_pe, balance=point.balance, fifo_depth=point.fifo_depth,
                     run_bits=point.run_bits, input_width=point.input_width,
                     broadcast_width=point.broadcast_width)
    r = simulate(image, x)
    busy = r.pe_busy[:, 0, :].astype(np.float64)
    entries = int(image.layers[0].pe_entry_counts().sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        balance = float(np.nanmean(busy.max(axis=1) / busy.mean(axis=1)))
    return {**dataclasses.asdict(point), **shape,
            "t_measured": float(r.layer_cycles[:, 0].mean()), "t_ideal": float(r.ideal_cycles[:, 0].mean()),
            "efficiency": float(np.nanmean(r.efficiency[:, 0])) if np.any(~np.isnan(r.efficiency)) else None,
            "stall_cycles": float(r.stall_cycles[:, 0].mean()),
            "busy_max_over_mean": None if np.isnan(balance) else balance,
            "entries": entries, "padding": entries - int(model.layers[0].codes.nnz),
            "seconds": time.perf_counter() - t0}


def grid(**axes) -> list[Point]:
    """Every combination of the given `Point` fields' values (each a list),
    e.g. ``grid(layer=["NT-We"], n_pe=[16, 64], fifo_depth=[8, 16])``."""
    unknown = set(axes) - {f.name for f in dataclasses.fields(Point)}
    if unknown:
        raise ValueError(f"not a sweep axis: {', '.join(sorted(unknown))}")
    names = list(axes)
    return [Point(**dict(zip(names, values))) for values in itertools.product(*(axes[n] for n in names))]


def sweep(points, executor=None, progress=None) -> list[dict]:
    """`evaluate` every point, in order; with `executor` (any
    `concurrent.futures.Executor`) in parallel. `progress(done, total)` is
    called as results arrive."""
    points = list(points)
    if executor is None:
        results = []
        for i, p in enumerate(points):
            results.append(evaluate(p))
            if progress:
                progress(i + 1, len(points))
        return results
    futures = [executor.submit(evaluate, p) for p in points]
    results = []
    for i, f in enumerate(futures):
        results.append(f.result())
        if progress:
            progress(i + 1, len(points))
    return results

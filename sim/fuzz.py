"""A long random campaign on the RTL: ``make fuzz [VECTORS=10000] [CONFIGS=4]``
(``python -m sim.fuzz``).

Random configurations (PE counts, code, run, weight, activation and
accumulator widths, entries a word, queue depths, input and broadcast
widths), and on each, in one simulator launch, random models (layer counts,
shapes, densities, padding-heavy and empty columns and rows, codebooks and
biases at both ends of their ranges) loaded one after another through the
host port, run on random inputs (some all zero): every output against the
golden model and every counter against the cycle model; the same inputs
again with random idle cycles and backpressure (outputs only: stalls change
the timing), and resets in the middle of a run before it. With ``--poison``
(``make fuzz POISON=1``) every configuration runs the build whose block RAM
reads that collide with a write return garbage (`hw.collisions`).

A vector that disagrees is shrunk: the first one of its run, alone, in a
new launch, and, if it still disagrees, with as many of its nonzero inputs
zeroed as keep it disagreeing (delta debugging, `minimize`); the case
(configuration, image, that vector) is saved under ``build/fuzz/failures/``
and, with ``--save-regressions``, under ``tests/regressions/``, which
``tests/test_regressions.py`` replays in every test run. Writes ``build/fuzz/report.json`` (``vectors``: distinct
vectors, each checked for outputs and every counter; ``stalled_vectors``:
those run again with stalls; ``configurations``, ``output_mismatches``,
``cycle_mismatches``, ``seconds``, and per configuration the details). Exit status 1 on any
mismatch. Deterministic for a ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import sw
from sw import perf
from sw.files import atomic_file

from .random_models import random_exit_model, random_inputs, random_model
from .runner import SimulationError, make_result, make_run_step, run_job

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "fuzz"
REGRESSIONS = ROOT / "tests" / "regressions"


def random_config(rng, max_pe: int) -> sw.Config:
    """A configuration the hardware accepts, drawn until one is valid."""
    from hw.accelerator import queue_slack

    pes = [n for n in (1, 2, 4, 8, 16, 32, 64) if n <= max_pe]
    while True:
        try:
            config = sw.Config(
                n_pe=int(rng.choice(pes)), code_bits=int(rng.integers(2, 5)), run_bits=int(rng.integers(2, 6)),
                entries_per_word=int(rng.choice([1, 2, 4])), act_bits=int(rng.choice([8, 12, 16])),
                weight_bits=int(rng.choice([6, 8, 10])), acc_bits=int(rng.choice([20, 24, 28])),
                fifo_depth=int(rng.choice([4, 8, 16])), input_width=int(rng.choice([1, 2, 4])),
                broadcast_width=int(rng.choice([1, 2])), weight_depth=4096, pointer_depth=1024, row_depth=64,
                max_layers=4, column_fifo_depth=int(rng.choice([3, 4, 7])), busy_logs=int(rng.random() < 0.8))
        except sw.ConfigError:
            continue
        if config.fifo_depth > queue_slack(config):
            return config


def random_image(rng, config: sw.Config):
    """A random model that fits `config`, packed (rows balanced or not, runs shortened or not)."""
    while True:
        dims = [int(rng.integers(4, 60))] + [int(rng.integers(1, min(3 * config.n_pe + 20, 64 * config.n_pe)))
                                             for _ in range(int(rng.integers(1, 4)))]
        extreme = bool(rng.random() < 0.3)
        density = float(rng.choice([0.03, 0.1, 0.4, 0.9])) if rng.random() < 0.5 else None
        if len(dims) >= 3 and rng.random() < 0.3 and dims[-1] >= 2:
            # an exit head (one layer) after a trunk layer, its threshold anywhere from 0 to never
            trunk = dims[:4]
            after = int(rng.integers(0, len(trunk) - 2))
            threshold = int(rng.integers(0, 1 << int(rng.integers(1, config.act_bits + 2))))
            model = random_exit_model(rng, config, trunk, {after: []}, thresholds=[threshold], extreme=extreme,
                                      density=density)
        else:
            model = random_model(rng, config, dims, extreme=extreme, density=density)
        try:
            return sw.pack(model, config, balance=bool(rng.random() < 0.5), shorten_runs=bool(rng.random() < 0.3))
        except sw.PackError:
            continue


def disagreements(image: sw.Image, x: np.ndarray, result) -> tuple[np.ndarray, np.ndarray]:
    """Per vector of `x`: whether the RTL's outputs or exit (`result`, a
    `sim.SimResult`) differ from the golden model's, and whether any of its
    counters differs from the cycle model's."""
    y, exits = sw.golden.run(image, x, exits=True)
    wrong = ~np.all(result.outputs == y, axis=1) | (result.exits != exits)
    model = perf.simulate(image, x)
    late = np.zeros(len(x), dtype=bool)
    for c, measured in result.counters().items():
        late |= (measured != getattr(model, c)).reshape(len(x), -1).any(axis=1)
    return wrong, late


def _failing(image: sw.Image, xs: np.ndarray, where: Path, poison: bool = False) -> np.ndarray:
    """Run `xs` in one new launch: per vector, whether it disagrees
    (outputs or counters)."""
    np.save(where / "candidates.npy", xs)
    results, info, seconds, _ = run_job(image, [make_run_step(image, where / "candidates.npy")],
                                        progress=None, progress_bar=False, poison=poison)
    wrong, late = disagreements(image, xs, make_result(image, xs, results, "s0", info, seconds, seconds))
    (where / "candidates.npy").unlink()
    return wrong | late


def minimize(image: sw.Image, v: np.ndarray, where: Path, launches: int = 16,
             poison: bool = False) -> tuple[np.ndarray, int]:
    """A failing vector `v` with as many of its nonzero inputs zeroed as
    still fails: delta debugging over the nonzero positions (every way of
    zeroing one chunk of them tried in one launch, the chunks halved when
    none fails), at most `launches` launches. Returns the vector and the
    launches used; the caller confirms it alone."""
    v, used = v.copy(), 0
    chunk = max(1, np.count_nonzero(v) // 2)
    while used < launches:
        nonzero = np.flatnonzero(v)
        if len(nonzero) == 0:
            break
        groups = [nonzero[i:i + chunk] for i in range(0, len(nonzero), chunk)]
        candidates = np.repeat(v[None], len(groups), axis=0)
        for c, g in enumerate(groups):
            candidates[c, g] = 0
        fails = _failing(image, candidates, where, poison)
        used += 1
        if fails.any():
            v = candidates[int(np.flatnonzero(fails)[0])]
            chunk = max(1, min(chunk, np.count_nonzero(v) // 2))
        elif chunk == 1:
            break
        else:
            chunk //= 2
    return v, used


def _shrink(image: sw.Image, x: np.ndarray, bad: int, where: Path, poison: bool = False) -> dict:
    """The first disagreeing vector alone in a new launch, then with as few
    nonzero inputs as still disagree (`minimize`, kept only if it still
    fails alone): saved with its image, and whether it disagrees on its own."""
    where.mkdir(parents=True, exist_ok=True)
    image.save(where / "image", overwrite=True)
    v = x[bad:bad + 1]
    alone = bool(_failing(image, v, where, poison)[0])
    out = {"dir": str(where), "vector": int(bad), "passes_alone": not alone, "nonzeros": int(np.count_nonzero(v))}
    if alone:
        small, launches = minimize(image, v[0], where, poison=poison)
        if np.count_nonzero(small) < out["nonzeros"] and _failing(image, small[None], where, poison)[0]:
            v = small[None]
        out.update(nonzeros_minimized=int(np.count_nonzero(v)), minimize_launches=launches)
    np.save(where / "x.npy", v)
    return out


def fuzz_config(rng, config: sw.Config, vectors: int, images: int, work: Path, name: str, *,
                poison: bool = False) -> dict:
    steps, cases = [], []
    per_image = -(-vectors // images)                              # at least `vectors` in all
    for i in range(images):
        image = random_image(rng, config)
        x = random_inputs(rng, per_image, image.n_in, config.act_bits, density=float(rng.uniform(0.05, 1.0)),
                          extreme=bool(rng.random() < 0.2))
        x[rng.random(len(x)) < 0.05] = 0                            # all-zero vectors
        image.save(work / f"{name}-{i}")
        path = work / f"{name}-{i}.npy"
        np.save(path, x)
        if i:
            steps.append({"op": "load", "image": str(work / f"{name}-{i}")})
        if rng.random() < 0.5:                                      # a reset in the middle of a run first
            steps.append({**make_run_step(image, path), "op": "abort", "after_cycles": int(rng.integers(1, 200)),
                          "wait_cycles": int(rng.integers(0, 100))})
        steps.append(make_run_step(image, path))
        timed = len(steps) - 1
        stalled = None
        if rng.random() < 0.5:                                      # the same inputs, with stalls on both sides
            n = min(len(x), 64)
            np.save(work / f"{name}-{i}-stalled.npy", x[:n])
            steps.append(make_run_step(image, work / f"{name}-{i}-stalled.npy", idle=float(rng.uniform(0, 0.5)),
                                       backpressure=float(rng.uniform(0, 0.5)), seed=int(rng.integers(1 << 16))))
            stalled = (len(steps) - 1, n)
        cases.append((image, x, timed, stalled))
    t0 = time.perf_counter()
    results, info, seconds, _ = run_job(cases[0][0], steps, progress=print, progress_bar=False, poison=poison)
    out = {"name": name, "config": config.to_dict(), "images": images, "vectors": 0, "stalled_vectors": 0,
           "aborts": sum(s["op"] == "abort" for s in steps), "output_mismatches": 0, "cycle_mismatches": 0,
           "exit_images": sum(bool(image.exits) for image, *_ in cases), "exit_vectors_left_early": 0,
           "sim_seconds": seconds, "failures": []}
    for k, (image, x, timed, stalled) in enumerate(cases):
        result = make_result(image, x, results, f"s{timed}", info, seconds, seconds)
        wrong, late = disagreements(image, x, result)
        out["exit_vectors_left_early"] += int(np.count_nonzero(result.exits))
        out["vectors"] += len(x)
        out["output_mismatches"] += int(wrong.sum())
        out["cycle_mismatches"] += int(late.sum())
        if stalled is not None:
            index, n = stalled
            r = make_result(image, x[:n], results, f"s{index}", info, seconds, seconds)
            y, exits = sw.golden.run(image, x[:n], exits=True)
            bad = ~np.all(r.outputs == y, axis=1) | (r.exits != exits)          # stalls change the timing
            out["stalled_vectors"] += n
            out["output_mismatches"] += int(bad.sum())
            wrong[:n] |= bad
        if wrong.any() or late.any():
            first = int(np.flatnonzero(wrong | late)[0])
            out["failures"].append({"image": k, "output_vectors": int(wrong.sum()), "cycle_vectors": int(late.sum()),
                                    **_shrink(image, x, first, OUT / "failures" / f"{name}-{k}", poison)})
    out["wall_seconds"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=10_000, help="vectors in all (default 10,000)")
    parser.add_argument("--configs", type=int, default=4, help="random configurations, a Verilator build each")
    parser.add_argument("--images", type=int, default=3, help="random images per configuration")
    parser.add_argument("--max-pe", type=int, default=16, help="largest PE count drawn (64: builds of many minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-regressions", action="store_true",
                        help="also copy each shrunk failure into tests/regressions/ (replayed by the test suite)")
    parser.add_argument("--poison", action="store_true",
                        help="run the build whose block RAM reads that collide with a write return garbage "
                             "(hw.collisions): no output may depend on one")
    parser.add_argument("--out", type=Path, default=OUT / "report.json")
    args = parser.parse_args(argv)
    if args.vectors < 1 or args.configs < 1 or args.images < 1:
        parser.error("--vectors, --configs and --images must be at least 1")
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=OUT))
    report = {"seed": args.seed, "poison": args.poison, "vectors": 0, "stalled_vectors": 0, "configurations": 0, "output_mismatches": 0,
              "cycle_mismatches": 0, "runs": []}
    try:
        for c in range(args.configs):
            config = random_config(rng, args.max_pe)
            name = f"c{c}-{config.n_pe}pe"
            print(f"[{c + 1}/{args.configs}] {name}: code_bits {config.code_bits}, run_bits {config.run_bits}, "
                  f"act_bits {config.act_bits}, weight_bits {config.weight_bits}, acc_bits {config.acc_bits}, "
                  f"fifo_depth {config.fifo_depth}, input_width {config.input_width}, "
                  f"broadcast_width {config.broadcast_width}, entries_per_word {config.entries_per_word}, "
                  f"column_fifo_depth {config.column_fifo_depth}, busy_logs {config.busy_logs}", flush=True)
            try:
                run = fuzz_config(rng, config, -(-args.vectors // args.configs), args.images, work, name,
                                  poison=args.poison)
            except SimulationError as e:            # the design hung or the simulator failed: a failure too
                run = {"name": name, "config": config.to_dict(), "vectors": 0, "stalled_vectors": 0,
                       "output_mismatches": 0, "cycle_mismatches": 0, "error": str(e), "failures": []}
            report["runs"].append(run)
            report["configurations"] += 1
            for k in ("vectors", "stalled_vectors", "output_mismatches", "cycle_mismatches"):
                report[k] += run[k]
            print(f"  {run['vectors']:,} vectors (and {run['stalled_vectors']:,} again with stalls): "
                  f"{run['output_mismatches']} output and {run['cycle_mismatches']} "
                  f"cycle mismatches{'; ERROR ' + run['error'] if 'error' in run else ''}", flush=True)
            report["seconds"] = time.perf_counter() - t0
            with atomic_file(args.out, "w") as f:             # written after each configuration
                json.dump(report, f, indent=1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    failures = [f for r in report["runs"] for f in r["failures"]]
    if args.save_regressions:
        for f in failures:
            shutil.copytree(f["dir"], REGRESSIONS / Path(f["dir"]).name, dirs_exist_ok=True)
    bad = report["output_mismatches"] + report["cycle_mismatches"] + sum("error" in r for r in report["runs"])
    print(f"{report['vectors']:,} vectors on {report['configurations']} configurations in {report['seconds']:.0f} s: "
          f"{report['output_mismatches']} output and {report['cycle_mismatches']} cycle mismatches; "
          f"wrote {args.out}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""`sim.run`: an image and inputs through the RTL under Verilator."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sw import golden, metrics
from sw.image import Image

from .build import PLUSARG, TOP, BuildInfo, build, cache_root, verilator_environment, verilator_runner

__all__ = ["run", "run_job", "SimResult", "SimulationError", "stderr_progress"]


def stderr_progress(line: str):
    """The default `progress`: lines on stderr (builds take minutes)."""
    print(line, file=sys.stderr, flush=True)


class SimulationError(RuntimeError):
    """The simulation failed or timed out; the message ends with the log's tail."""


@dataclass
class SimResult:
    """What one `run` measured, per input vector ``b``, layer ``l``, PE ``k``.

    `outputs[b]`: the run's outputs (the golden model's dtype): the last
    layer's, or an exit head's; `exits[b]`: which exit it left by (0: none,
    as `sw.golden.exits_taken`). A layer an exit skipped counts 0 cycles.
    `cycles[b]`: from start to done. `layer_cycles[b, l]`: ``T_measured``
    (first broadcast to last write-back, both included). `stall_cycles[b, l]`:
    broadcast stalls. `pe_busy[b, l, k]`: cycles PE ``k`` issued an entry
    (None if the hardware has no busy logs: `Config.busy_logs` 0).
    `ideal_cycles[b, l]` and `efficiency[b, l]` as docs/design.md §8
    defines them (NaN for a layer with no work at all).
    `wall_seconds` covers the whole call (a first build included),
    `sim_seconds` the simulator process (start-up and image loading
    included); `phases` splits the wall time into ``build``, ``simulate`` and
    ``metrics`` seconds.
    """
    outputs: np.ndarray
    exits: np.ndarray
    cycles: np.ndarray
    layer_cycles: np.ndarray
    stall_cycles: np.ndarray
    pe_busy: np.ndarray | None
    ideal_cycles: np.ndarray
    efficiency: np.ndarray
    build: BuildInfo
    wall_seconds: float
    sim_seconds: float
    extra: dict = field(default_factory=dict)
    phases: dict = field(default_factory=dict)

    @property
    def simulated_cycles(self) -> int:
        return int(self.cycles.sum())

    def counters(self) -> dict[str, np.ndarray]:
        """The counters the hardware reported, by name (as `sw.perf.simulate`
        names its predictions): `pe_busy` only where it has busy logs."""
        names = ("cycles", "layer_cycles", "stall_cycles") + (("pe_busy",) if self.pe_busy is not None else ())
        return {name: getattr(self, name) for name in names}

    def summary(self) -> dict:
        """Per-layer means and totals, JSON-ready."""
        with np.errstate(all="ignore"):
            eff = [None if np.isnan(v) else float(v) for v in np.nanmean(self.efficiency, axis=0)] \
                if np.any(~np.isnan(self.efficiency)) else [None] * self.layer_cycles.shape[1]
        return {
            "vectors": int(self.outputs.shape[0]),
            "cycles_per_vector": float(self.cycles.mean()),
            "layer_cycles_mean": [float(v) for v in self.layer_cycles.mean(axis=0)],
            "ideal_cycles_mean": [float(v) for v in self.ideal_cycles.mean(axis=0)],
            "efficiency_mean": eff,
            "stall_cycles_mean": [float(v) for v in self.stall_cycles.mean(axis=0)],
            "simulated_cycles": self.simulated_cycles,
            "wall_seconds": self.wall_seconds,
            "sim_seconds": self.sim_seconds,
            "cycles_per_second": self.simulated_cycles / self.sim_seconds if self.sim_seconds else None,
            "build_seconds": self.build.seconds,
            "build_cached": self.build.cached,
            "phases_seconds": dict(self.phases),
        }


def _log_tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class _ProgressBar:
    """A tqdm bar over the vectors the simulator has finished, read from the
    file the bench rewrites after each vector (``vectors cycles``). Shown
    only on a terminal (tqdm's ``disable=None``)."""

    def __init__(self, total: int, path: Path, enabled: bool | None):
        self.total, self.path, self.enabled = total, path, enabled
        self._stop = threading.Event()

    def __enter__(self):
        from tqdm import tqdm
        self.bar = tqdm(total=self.total, unit="vector", desc="simulating", file=sys.stderr,
                        disable=None if self.enabled is None else not self.enabled, dynamic_ncols=True)
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _read(self):
        try:
            done, cycles = (int(v) for v in self.path.read_text().split())
        except (OSError, ValueError):
            return
        self.bar.n = done
        self.bar.set_postfix_str(f"{cycles:,} cycles", refresh=False)
        self.bar.refresh()

    def _poll(self):
        while not self._stop.wait(0.5):
            self._read()

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        self._read()
        self.bar.close()


@contextlib.contextmanager
def _saved_inputs(x: np.ndarray):
    """`x` in a temporary ``.npy`` beside the runs (the bench reads it), removed afterwards."""
    root = cache_root() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="inputs-", suffix=".npy", dir=root)
    os.close(fd)
    try:
        np.save(path, x)
        yield path
    finally:
        os.unlink(path)


def run_job(image: Image, steps: list[dict], *, waves: bool = False, keep: Path | None = None,
            progress=stderr_progress, progress_bar: bool | None = None,
            board: dict | None = None, preloaded: bool = False,
            poison: bool = False) -> tuple[dict, BuildInfo, float, Path | None]:
    """Run bench steps (see `sim.bench`) for `image`'s configuration; the
    image is loaded at simulator start. Returns `(results, build, seconds,
    waves_file)`. `progress_bar`: None shows one on a terminal only.
    With `board` (see `sim.build.design_for`) the board top is simulated
    instead, its memories empty at start unless `preloaded`, and the steps
    are `sim.board_bench`'s. `poison`: see `sim.build.build`."""
    from cocotb_tools.runner import get_results

    info = build(image.config, waves=waves, progress=progress, board=board, poison=poison)
    root = cache_root() / "runs"
    root.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    try:
        image.save(run_dir / "image")
        job = {"config": image.config.to_dict(), "steps": steps, "results": str(run_dir / "results.npz"),
               "board": board, "image": str(run_dir / "image")}
        (run_dir / "job.json").write_text(json.dumps(job))
        env = {"OEIE_JOB": str(run_dir / "job.json"), "OEIE_PROGRESS": str(run_dir / "progress"),
               # cocotb rewrites the asserts of every *.py it imports by default,
               # which made importing numpy take seconds inside the simulator
               "COCOTB_REWRITE_ASSERTION_FILES": "bench.py board_bench.py"}
        total = sum(step.get("vectors", 0) for step in steps if step["op"] == "run")
        t0 = time.perf_counter()
        with verilator_environment(), _ProgressBar(total, run_dir / "progress", progress_bar):
            xml = verilator_runner().test(
                test_module="sim.board_bench" if board else "sim.bench", hdl_toplevel=TOP,
                hdl_toplevel_lang="verilog", build_dir=info.build_dir, test_dir=run_dir,
                plusargs=[] if board and not preloaded else [f"+{PLUSARG}={run_dir / 'image'}"], extra_env=env,
                waves=waves,
                results_xml=str(run_dir / "results.xml"), log_file=run_dir / "sim.log")
        seconds = time.perf_counter() - t0
        try:
            _, failed = get_results(xml)
        except RuntimeError:            # no results file: the simulator itself died
            failed = 1
        if failed or not (run_dir / "results.npz").is_file():
            raise SimulationError(f"the simulation failed; log {run_dir / 'sim.log'}:\n{_log_tail(run_dir / 'sim.log')}")
        with np.load(run_dir / "results.npz") as f:
            results = {k: f[k] for k in f.files}
        wave = None
        if waves:
            found = [p for p in (run_dir / "dump.fst", run_dir / "dump.vcd") if p.is_file()]
            if found and keep is not None:
                keep.parent.mkdir(parents=True, exist_ok=True)
                wave = keep.with_suffix(found[0].suffix)
                for old in (keep.with_suffix(".fst"), keep.with_suffix(".vcd")):
                    old.unlink(missing_ok=True)         # no stale waveform of the other kind beside it
                shutil.move(found[0], wave)
        shutil.rmtree(run_dir)
        return results, info, seconds, wave
    except SimulationError:
        raise                       # keep the run directory for inspection
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _max_cycles(image: Image) -> int:
    """A generous bound on one vector's cycles, for the bench's timeouts."""
    c = image.config
    total = 0
    for layer in image.layers:
        total += layer.n_in + int(layer.pe_entry_counts().max()) + 2 * layer.n_in + layer.rows + layer.n_out + 200
    return 4 * total + c.row_depth + 1000


def make_run_step(image: Image, inputs: Path | str, **options) -> dict:
    """A bench ``run`` step (see `sim.bench`) for `image` on the vectors in
    the ``.npy`` file `inputs`; `options`: ``idle``, ``backpressure``, ``seed``."""
    n = len(np.load(inputs, mmap_mode="r"))
    return {"op": "run", "inputs": str(inputs), "vectors": n, "n_out": image.n_out, "n_layers": len(image.layers),
            "max_cycles": _max_cycles(image), "max_polls": image.config.row_depth + 1000, **options}


def run(image: Image, inputs, *, waves: bool = False, waves_path: Path | None = None, idle: float = 0.0,
        backpressure: float = 0.0, seed: int = 0, progress=stderr_progress,
        progress_bar: bool | None = None, poison: bool = False) -> SimResult:
    """Run `inputs` (``(n_in,)`` or ``(B, n_in)`` integers, ``B >= 1``)
    through the RTL built for ``image.config``, with `image` in its memories.

    The Verilator model is built once per configuration and cached; a new
    image only restarts the simulator. `idle` and `backpressure` are the
    probabilities of an idle input cycle and of a refused output cycle.
    With `waves`, a waveform is written to `waves_path` (FST if Verilator's
    FST support can be built here, else VCD). `progress` takes lines of
    text about the build (None: quiet); `progress_bar` shows the vectors
    done with an ETA (None: on a terminal only). `poison` runs the build
    whose block RAM reads are inverted where they collide with a write
    (`hw.collisions`): its results equal the others' if no result depends
    on such a read.
    """
    x = golden.check_input(image, inputs)
    if x.shape[0] == 0:
        raise ValueError(f"no input vectors to simulate (shape {x.shape})")
    for name, p in (("idle", idle), ("backpressure", backpressure)):
        if not 0 <= p < 1:
            raise ValueError(f"{name} is a probability in [0, 1), got {p!r}")
    t0 = time.perf_counter()
    with _saved_inputs(x) as inputs_path:
        step = make_run_step(image, inputs_path, idle=idle, backpressure=backpressure, seed=seed)
        results, info, seconds, wave = run_job(image, [step], waves=waves, keep=waves_path, progress=progress,
                                               progress_bar=progress_bar, poison=poison)
    t1 = time.perf_counter()
    result = make_result(image, x, results, "s0", info, t1 - t0, seconds, wave)
    result.wall_seconds = time.perf_counter() - t0
    result.phases = {"build": info.seconds, "simulate": seconds, "metrics": time.perf_counter() - t1}
    return result


def make_result(image: Image, x: np.ndarray, results: dict, key: str, info: BuildInfo, wall: float,
                sim_seconds: float, wave=None) -> SimResult:
    exits = results[f"{key}_exits"]
    work = metrics.work(image, x, exits=exits)
    ideal = metrics.ideal_cycles(work, image.config.n_pe)
    layer_cycles = results[f"{key}_layer_cycles"]
    ordered = image.run_order(results[f"{key}_outputs"], exits)
    return SimResult(
        outputs=ordered.astype(golden.output_dtype(image.config.act_bits)), exits=exits,
        cycles=results[f"{key}_cycles"], layer_cycles=layer_cycles, stall_cycles=results[f"{key}_stall_cycles"],
        pe_busy=results[f"{key}_pe_busy"] if image.config.busy_logs else None,
        ideal_cycles=ideal, efficiency=metrics.efficiency(ideal, layer_cycles),
        build=info, wall_seconds=wall, sim_seconds=sim_seconds, extra={"work": work, "waves": wave})


# the simulated board: a UART bit every 8 clock cycles, requests abandoned after 20,000
SIM_BOARD = {"divisor": 8, "timeout": 20_000}


def run_board(image: Image, inputs, *, corrupt_byte: int | None = None, drop_byte: int | None = None,
              board: dict | None = None,
              preloaded: bool = False, verify: bool = True, probe_timeout: bool = False,
              progress=stderr_progress) -> dict:
    """Drive the simulated board top with the host driver over its UART
    pins: load `image` (the memories start empty), run `inputs`, read the
    counters (`preloaded`: the memories start with the image, as from a
    bitstream, and are only verified). `corrupt_byte`: flip a bit of that byte of the host's stream
    (counted from the first), to exercise the link's recovery; `drop_byte`:
    leave that byte out (the board abandons the request after its timeout);
    `probe_timeout`: first ask for outputs with no run going (the bridge
    answers `stream_timeout` after its timeout). Returns
    ``outputs``, ``cycles`` (on-chip, per vector), and the link's ``bytes_sent``,
    ``bytes_received`` and cycles spent identifying the board, loading,
    verifying (`Device.verify`: every memory read back) and running
    (`Device.run` alone, the counter reads after each vector left out), and
    whether a verification caught a word changed afterwards."""
    board = dict(board or SIM_BOARD)
    x = golden.check_input(image, inputs)
    with _saved_inputs(x) as inputs_path:
        step = {"op": "board", "inputs": inputs_path, "vectors": 0, "corrupt_byte": corrupt_byte,
                "drop_byte": drop_byte,
                "preloaded": preloaded, "verify": verify, "probe_timeout": probe_timeout}
        results, info, seconds, _ = run_job(image, [step], progress=progress, progress_bar=False, board=board,
                                            preloaded=preloaded)
    sent, received, ident, load, verify, run_cycles, caught, timed_out = (int(v) for v in results["s0_link"])
    return {"outputs": results["s0_outputs"].astype(golden.output_dtype(image.config.act_bits)),   # Device.run's order
            "exits": results["s0_exits"], "cycles": results["s0_cycles"], "bytes_sent": sent, "bytes_received": received,
            "identify_cycles": ident, "load_cycles": load, "verify_cycles": verify, "run_cycles": run_cycles,
            "verify_caught_a_change": bool(caught) if verify else None,
            "stream_timed_out": bool(timed_out) if probe_timeout else None, "board": board,
            "sim_seconds": seconds, "build": info}

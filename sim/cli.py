"""``python -m sim`` (``make sim``): a model through the RTL, checked bit for
bit against the golden model, with a summary and a JSON report.

Default: the digits MLP shipped in ``models/`` (pruned 64-64-32-10, trained by
``models/train_digits.py``), compressed to 4-bit shared weights, batched four
vectors a run (`sw.batched`), packed with balanced rows for 16 PEs with two
broadcast lanes, eight input values a beat and 16-deep queues (`JOB_CONFIG`;
the options below override it), and run on the 360 held-out test images.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import sw
from sw.cli import add_config_options, cli_errors, config_from_args, load_inputs, warn_wraps
from sw.files import atomic_file, output_path
from sw.modelio import load_array

from .build import cache_root
from .runner import SimulationError, run

__all__ = ["main"]

MODELS = Path(__file__).resolve().parents[1] / "models"

# The default job's hardware and batch, beside sw.Config()'s defaults: the
# digits MLP's layers are small (4, 2 and 1 rows per PE), so a vector is
# mostly fixed costs; four vectors a run share them, and with two lanes,
# eight values a beat and deeper queues the PEs, not the broadcast, bind.
# 267 cycles per vector with sw.Config() and one vector a run; about 127
# with these (docs/design.md §16).
JOB_CONFIG = {"input_width": 8, "broadcast_width": 2, "fifo_depth": 16}
JOB_BATCH = 4


def _log(line=""):
    print(line, flush=True)


def _default_job(args):
    layers = sw.load_model(MODELS / "digits_mlp.npz")
    data = np.load(MODELS / "digits_data.npz")
    config = config_from_args(args)
    own = not (args.preset or args.config)       # the job's own defaults, where no option gave a value
    if own:
        config = config.replace(**{k: v for k, v in JOB_CONFIG.items() if getattr(args, k) is None})
    # a preset or configuration file is taken as it is, one vector a run
    # (presets are sized for a board's memories, not for copies of the model)
    batch = args.batch if args.batch is not None else JOB_BATCH if own else 1
    density = [float(np.count_nonzero(l.dense()) / l.dense().size) for l in layers]
    _log(f"model: digits MLP {' -> '.join(str(n) for n in [layers[0].n_in] + [l.n_out for l in layers])}, "
         f"weight density {'/'.join(f'{d:.2f}' for d in density)} (pruned and retrained)")
    model = sw.compress(layers, density=1.0, calibration=data["x_cal"], config=config)
    image = sw.pack(sw.batched(model, batch), config, balance=not args.no_balance)
    x_test = data["x_test"][:args.vectors] if args.vectors else data["x_test"]
    labels = data["y_test"][:len(x_test)]
    x = sw.quantize_input(x_test, model.input_frac_bits, config.act_bits)
    float_out = sw.forward(layers, x_test)
    changed = [f"{f.name} {getattr(config, f.name)}" for f in dataclasses.fields(config)
               if f.name != "n_pe" and getattr(config, f.name) != f.default]
    copies = f"{batch} copies, one per vector of a run, " if batch > 1 else ""
    _log(f"compressed to {config.code_bits}-bit shared weights, {config.act_bits}-bit activations; "
         f"packed ({copies}{'rows balanced' if not args.no_balance else 'row r on PE r % n_pe'}) for "
         f"{config.n_pe} PEs{' (' + ', '.join(changed) + ')' if changed else ''} "
         f"({image.stats().total['bits_per_nonzero']:.1f} bits per nonzero weight)")
    info = {"float_accuracy": float(np.mean(float_out.argmax(axis=1) == labels)), "model": "models/digits_mlp.npz",
            "batch": batch}
    if "dense_float_accuracy" in data and not args.vectors:     # measured on all 360 test images
        info["dense_float_accuracy"] = float(data["dense_float_accuracy"])
    return image, x, labels, info


def _given_job(args):
    if args.input is None:
        raise ValueError("--image needs --input (an .npy of input vectors)")
    image = sw.Image.load(args.image)
    if args.preset or args.config or args.no_balance:
        option = "preset" if args.preset else "config" if args.config else "no-balance"
        raise ValueError(f"--{option} applies to the default model; an --image was packed for its own "
                         f"configuration")
    for f in dataclasses.fields(sw.Config):
        given, packed = getattr(args, f.name), getattr(image.config, f.name)
        if given is not None and given != packed:
            option = f"--{f.name.replace('_', '-')}"
            raise ValueError(f"{args.image} was packed for {f.name} = {packed}; {option} {given} "
                             f"would need it packed again (python -m sw pack ... {option} {given})")
    batch = args.batch or 1
    x = load_inputs(args.input, image, quantize=True, batch=batch)
    if args.vectors:
        x = x[:args.vectors]
    labels = None
    if args.labels:
        labels = load_array(args.labels, "labels")
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"--labels {args.labels}: labels must be a 1-D array of integers, got "
                             f"shape {labels.shape} {labels.dtype}")
        if len(labels) < len(x):
            raise ValueError(f"--labels {args.labels} has {len(labels)} labels for {len(x)} input vectors")
        labels = labels[:len(x)]
    return image, x, labels, {"model": str(args.image), "batch": batch}


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _table(result, image, batch: int) -> list[str]:
    """Per layer, mean over runs, the cycles divided among a run's `batch` vectors."""
    lines = [f"  {'layer':>5}  {'shape':>12}  {'T_measured':>10}  {'T_ideal':>8}  {'efficiency':>10}  "
             f"{'stalls':>7}  {'busy max/mean':>13}"]
    busy = None if result.pe_busy is None else result.pe_busy.mean(axis=0)
    eff = result.summary()["efficiency_mean"]
    for l, layer in enumerate(image.layers):
        if busy is None:                        # no busy logs in this hardware (Config.busy_logs)
            balance = "-"
        else:
            balance = f"{busy[l].max() / busy[l].mean():.2f}" if busy[l].mean() else "nan"
        e = "-" if eff[l] is None else f"{eff[l]:.3f}"
        shape = f"{layer.n_in // batch}->{layer.n_out // batch}" + (f" x{batch}" if batch > 1 else "")
        lines.append(f"  {l:>5}  {shape:>12}  {result.layer_cycles[:, l].mean() / batch:>10.1f}  "
                     f"{result.ideal_cycles[:, l].mean() / batch:>8.1f}  {e:>10}  "
                     f"{result.stall_cycles[:, l].mean() / batch:>7.1f}  {balance:>13}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", type=Path, help="an image directory (python -m sw pack); default: the digits MLP")
    parser.add_argument("--input", type=Path,
                        help="input vectors .npy for --image (integers, or floats quantised with the image's format)")
    parser.add_argument("--labels", type=Path, help="labels .npy, to report accuracy for --image")
    parser.add_argument("--vectors", type=_positive, help="run only the first N vectors (default: all; 8 with --waves)")
    parser.add_argument("--waves", action="store_true", help="write a waveform (FST; VCD where lz4 is missing, see sim.lz4)")
    parser.add_argument("--report", type=Path, default=cache_root() / "report.json",
                        help="JSON report path (replaced on every run)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown on a terminal only)")
    parser.add_argument("--batch", type=_positive,
                        help=f"vectors a run: the default model is packed as that many copies (sw.batched; default "
                             f"{JOB_BATCH}, or 1 with --preset or --config); an --image packed with python -m sw "
                             f"pack --batch N needs the same N (default 1)")
    parser.add_argument("--no-balance", action="store_true",
                        help="pack the default model with row r on PE r %% n_pe (default: rows balanced)")
    add_config_options(parser, "the default model's hardware (defaults: sw.Config() with "
                       + ", ".join(f"{k} {v}" for k, v in JOB_CONFIG.items())
                       + "; with --image, the image's)")
    args = parser.parse_args(argv)
    if args.waves and args.vectors is None:
        args.vectors = 8
    try:
        with cli_errors():
            return _main(args)
    except SystemExit as e:
        return e.code


def _main(args) -> int:
    phases = {}
    t0 = time.perf_counter()
    output_path(args.report, overwrite=True)         # a bad report path fails now, not after the simulation
    image, x, labels, info = _given_job(args) if args.image else _default_job(args)
    phases["prepare"] = time.perf_counter() - t0
    batch = info["batch"]
    runs = sw.stack(x, batch)             # batch 1: the vectors themselves
    _log(f"simulating {len(x)} input vectors on the RTL (cocotb + Verilator)"
         + (f", {batch} a run ({len(runs)} runs)" if batch > 1 else "") + " ...")
    waves_path = cache_root() / "waves" if args.waves else None
    try:
        result = run(image, runs, waves=args.waves, waves_path=waves_path, progress=_log,
                     progress_bar=False if args.no_progress else None)
    except SimulationError as e:
        raise ValueError(str(e)) from None
    phases.update(build=result.phases["build"], simulate=result.phases["simulate"])
    t1 = time.perf_counter()
    expected = sw.golden.run(image, runs)
    phases["check"] = time.perf_counter() - t1
    bad = int(np.count_nonzero(result.outputs != expected))
    exact = bad == 0
    summary = result.summary()
    # per vector: a run's cycles shared by the vectors it carried (the zero
    # vectors that fill a last run are not counted as vectors)
    summary.update(vectors=int(len(x)), runs=int(len(runs)), batch=batch,
                   cycles_per_run=float(result.cycles.mean()), cycles_per_vector=float(result.cycles.sum() / len(x)))
    rate = summary["simulated_cycles"] / max(result.sim_seconds, 1e-9)
    _log()
    _log(f"bit-exact against the golden model: {'yes' if exact else 'NO'} "
         f"({expected.size - bad} of {expected.size} outputs equal)")
    warn_wraps(image, runs)
    outputs, expected = sw.unstack(result.outputs, batch, len(x)), sw.unstack(expected, batch, len(x))
    accuracy = None
    if labels is not None:
        accuracy = float(np.mean(outputs.argmax(axis=1) == labels))
        golden_acc = float(np.mean(expected.argmax(axis=1) == labels))
        extra = f", float model {info['float_accuracy']:.2%}" if "float_accuracy" in info else ""
        if "dense_float_accuracy" in info:
            extra += f" (before pruning and sharing {info['dense_float_accuracy']:.2%})"
        _log(f"accuracy on {len(labels)} labelled vectors: RTL {accuracy:.2%}, golden {golden_acc:.2%}{extra}")
    if batch > 1:
        _log(f"cycles per vector: {summary['cycles_per_vector']:.1f} (a run of {batch} vectors: "
             f"{summary['cycles_per_run']:.1f}, start to done); per layer, per vector, mean over runs:")
    else:
        _log(f"cycles per vector: {summary['cycles_per_vector']:.1f} (start to done); per layer, mean over vectors:")
    for line in _table(result, image, batch):
        _log(line)
    build = "cached" if result.build.cached else f"built in {result.build.seconds:.0f} s"
    _log(f"simulated {summary['simulated_cycles']:,} cycles in {result.sim_seconds:.1f} s "
         f"({rate:,.0f} cycles/s, simulator start-up included; Verilator model {build})")
    if result.extra.get("waves"):
        _log(f"waveform: {result.extra['waves']}")
    phases["total"] = time.perf_counter() - t0
    report = {
        "model": info["model"], "config": image.config.to_dict(), "vectors": int(len(x)), "batch": batch,
        "bit_exact": exact, "mismatched_outputs": bad, "accuracy": accuracy,
        "float_accuracy": info.get("float_accuracy"), "dense_float_accuracy": info.get("dense_float_accuracy"),
        # per layer: n_in and n_out of one copy; cycles per vector (a run's / batch), busy per run
        "layers": [{"n_in": l.n_in // batch, "n_out": l.n_out // batch, "relu": l.relu,
                    "t_measured_mean": float(result.layer_cycles[:, i].mean() / batch),
                    "t_ideal_mean": float(result.ideal_cycles[:, i].mean() / batch),
                    "efficiency_mean": summary["efficiency_mean"][i],
                    "stall_cycles_mean": float(result.stall_cycles[:, i].mean() / batch),
                    "pe_busy_mean": None if result.pe_busy is None
                    else [float(v) for v in result.pe_busy[:, i].mean(axis=0)]}
                   for i, l in enumerate(image.layers)],
        "summary": summary, "phases_seconds": phases, "total_seconds": phases["total"],
        "waves": str(result.extra["waves"]) if result.extra.get("waves") else None,
    }
    with atomic_file(args.report, "w") as f:
        json.dump(report, f, indent=1, allow_nan=False)
        f.write("\n")
    _log(f"report: {args.report}")
    return 0 if exact else 1

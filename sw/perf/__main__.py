"""The cycle model from the command line.

    python -m sw.perf run IMAGE_DIR INPUTS.npy [--json]
    python -m sw.perf sweep [--layer NT-We,Alex-7] [--n-pe 16,64,256] [--fifo-depth 8,16]
                            [--weight-density ..] [--act-density ..] [--n-in ..] [--n-out ..]
                            [--run-bits ..] [--input-width ..] [--broadcast-width 1,2]
                            [--balance no,yes] [--vectors 1] [--seed 0] [--jobs N] [--out FILE.json]

`run` predicts what `python -m sim` would measure for an image and inputs;
`sweep` evaluates every combination of the listed values (comma-separated)
on seeded synthetic layers (`sw.eie`), in a process pool with `--jobs`.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from sw.batching import stack
from sw.cli import add_batch_option, load_inputs


def _list(kind):
    def parse(text):
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind.__name__}s, got {text!r}")
    return parse


def _bool(text: str) -> bool:
    if text.lower() in ("1", "yes", "true", "on"):
        return True
    if text.lower() in ("0", "no", "false", "off"):
        return False
    raise ValueError(text)


_bool.__name__ = "yes/no value"


def _run(args) -> int:
    from sw.image import Image
    from . import simulate
    image = Image.load(args.image)
    x = load_inputs(args.inputs, image, quantize=False, batch=args.batch)
    r = simulate(image, stack(x, args.batch))
    # per run (a run of a batched image carries `batch` vectors)
    summary = {"vectors": int(len(x)), "runs": int(r.cycles.shape[0]), "batch": args.batch,
               "cycles_per_vector": float(r.cycles.sum() / len(x)), "cycles": r.cycles.tolist(),
               "layer_cycles": r.layer_cycles.tolist(), "ideal_cycles": r.ideal_cycles.tolist(),
               "stall_cycles": r.stall_cycles.tolist(),
               "efficiency": [[None if np.isnan(v) else float(v) for v in row] for row in r.efficiency]}
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    runs = f" in {summary['runs']} runs of {args.batch}" if args.batch > 1 else ""
    print(f"{image.config.n_pe} PEs, {len(image.layers)} layers, {summary['vectors']} vectors{runs}: "
          f"{summary['cycles_per_vector']:,.1f} cycles per vector; per layer, per run:")
    for l in range(r.layer_cycles.shape[1]):
        eff = r.efficiency[:, l]
        eff = np.nanmean(eff) if np.any(~np.isnan(eff)) else float("nan")
        print(f"  layer {l}: T_measured {r.layer_cycles[:, l].mean():,.1f}  T_ideal {r.ideal_cycles[:, l].mean():,.1f}"
              f"  efficiency {eff:.3f}  stalls {r.stall_cycles[:, l].mean():,.1f}")
    return 0


def _sweep(args) -> int:
    from sw.files import atomic_file
    from .sweep import grid, sweep
    axes = {name: getattr(args, name) for name in ("layer", "n_in", "n_out", "weight_density", "act_density",
                                                   "n_pe", "fifo_depth", "run_bits", "input_width", "broadcast_width",
                                                   "balance")
            if getattr(args, name) is not None}
    if "layer" not in axes and not {"n_in", "n_out", "weight_density", "act_density"} <= set(axes):
        axes["layer"] = ["NT-We"]
        print("no --layer or shape given: sweeping NT-We", file=sys.stderr)
    points = grid(**axes, vectors=[args.vectors], seed=[args.seed])
    for p in points:
        p.resolved()                # a bad layer name or a missing shape fails before any work
    print(f"{len(points)} points{f' on {args.jobs} processes' if args.jobs > 1 else ''}", file=sys.stderr)

    def progress(done, total):
        print(f"\r  {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = sweep(points, executor=pool, progress=progress)
    else:
        rows = sweep(points, progress=progress)
    cols = ["layer", "n_in", "n_out", "weight_density", "act_density", "n_pe", "fifo_depth", "run_bits",
            "input_width", "broadcast_width", "balance", "t_measured", "t_ideal", "efficiency", "stall_cycles"]
    print("  ".join(cols))
    for row in rows:
        print("  ".join(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols))
    if args.out:
        with atomic_file(args.out, "w") as f:
            json.dump(rows, f, indent=1)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sw.perf", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="predict the RTL's cycles for an image and inputs")
    run.add_argument("image", type=Path)
    run.add_argument("inputs", type=Path, help=".npy file of (n_in,) or (B, n_in) integers")
    run.add_argument("--json", action="store_true")
    add_batch_option(run)
    sw_ = sub.add_parser("sweep", help="the model over configurations and synthetic layers")
    sw_.add_argument("--layer", type=_list(str), help="EIE layers (sw.eie), e.g. NT-We,Alex-7")
    for name, kind in (("n-in", int), ("n-out", int), ("weight-density", float), ("act-density", float),
                       ("n-pe", int), ("fifo-depth", int), ("run-bits", int), ("input-width", int),
                       ("broadcast-width", int), ("balance", _bool)):
        sw_.add_argument(f"--{name}", type=_list(kind))
    sw_.add_argument("--vectors", type=int, default=1)
    sw_.add_argument("--seed", type=int, default=0)
    sw_.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    sw_.add_argument("--out", type=Path, help="write the rows as JSON")
    args = parser.parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _sweep(args)
    except (KeyError, ValueError, TypeError, OSError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Cycles per vector of `make sim`'s digits MLP by batch and configuration.

    make bench-batch          (or: python bench/batching.py [--rtl])

For each row: the model compressed as `python -m sim` compresses it, packed
from `sw.batched(model, batch)` (balanced rows or not) for 16 PEs, and the
360 test vectors run through the cycle model (`sw.perf.simulate`, which the
test suite holds equal to the RTL on every counter), stacked `batch` a run.
Reports cycles per vector (a run's cycles over the vectors it carried),
per layer per vector, the stall cycles, the busiest PE's entries and the
image's sparse-matrix entries in the fullest PE (all layers). With `--rtl` the default job's row is
also run on the RTL (Verilator) and both counts must agree. Writes
``build/bench/batching.json``. Cycle counts are exact and machine-independent.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sw  # noqa: E402
from sim.cli import JOB_BATCH, JOB_CONFIG, MODELS  # noqa: E402
from sw.files import atomic_file  # noqa: E402
from sw.perf import simulate  # noqa: E402

OLD = {"input_width": 1, "broadcast_width": 1, "fifo_depth": 8}      # sw.Config()'s own
ROWS = [  # (label, configuration changes, batch, balanced rows)
    ("sw.Config(), one vector a run", OLD, 1, False),
    ("sw.Config(), batch 4, balanced", OLD, 4, True),
    ("make sim's configuration, one vector a run", JOB_CONFIG, 1, False),
    ("... balanced", JOB_CONFIG, 1, True),
    ("... batch 2, balanced", JOB_CONFIG, 2, True),
    ("... batch 4", JOB_CONFIG, 4, False),
    ("... batch 4, balanced (make sim)", JOB_CONFIG, JOB_BATCH, True),
    ("... batch 8, balanced", JOB_CONFIG, 8, True),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rtl", action="store_true", help="also run make sim's row on the RTL and compare")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "batching.json")
    args = parser.parse_args()
    layers = sw.load_model(MODELS / "digits_mlp.npz")
    data = np.load(MODELS / "digits_data.npz")
    rows = []
    print(f"{'':46} {'cycles/vector':>13} {'per layer':>20} {'stalls':>7} {'busy max':>8} {'entries/PE':>10}")
    for label, changes, batch, balance in ROWS:
        config = sw.Config(**changes)
        model = sw.compress(layers, density=1.0, calibration=data["x_cal"], config=config)
        x = sw.quantize_input(data["x_test"], model.input_frac_bits, config.act_bits)
        image = sw.pack(sw.batched(model, batch), config, balance=balance)
        runs = sw.stack(x, batch)
        r = simulate(image, runs)
        row = {"label": label, "config": config.to_dict(), "batch": batch, "balance": balance,
               "vectors": len(x), "runs": len(runs),
               "cycles_per_vector": float(r.cycles.sum() / len(x)),
               "layer_cycles_per_vector": [float(v) for v in r.layer_cycles.sum(axis=0) / len(x)],
               "stall_cycles_per_vector": float(r.stall_cycles.sum() / len(x)),
               "busy_max_per_vector": float(r.pe_busy.max(axis=2).sum() / len(x)),
               "entries_per_pe": int(sum(l.pe_entry_counts() for l in image.layers).max())}
        if args.rtl and label.endswith("(make sim)"):
            import sim
            result = sim.run(image, runs, progress=print)
            assert np.array_equal(result.outputs, sw.golden.run(image, runs)), "RTL outputs differ"
            assert np.array_equal(result.cycles, r.cycles), "RTL and cycle model differ"
            row["rtl_cycles_per_vector"] = float(result.cycles.sum() / len(x))
            print(f"  RTL: {row['rtl_cycles_per_vector']:.1f} cycles per vector, cycles and outputs as "
                  f"predicted (cycle model, golden model)")
        rows.append(row)
        per_layer = "/".join(f"{v:.1f}" for v in row["layer_cycles_per_vector"])
        print(f"{label:46} {row['cycles_per_vector']:>13.1f} {per_layer:>20} "
              f"{row['stall_cycles_per_vector']:>7.1f} {row['busy_max_per_vector']:>8.1f} "
              f"{row['entries_per_pe']:>10}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(args.out, "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""A 4096 -> 4096 layer (9% weights, 35%-dense input) through the RTL.

    make bench-sim           (or: python bench/sim_layer.py [--n-pe 16] [--vectors 3])

Reports, per input vector, RTL cycles of the layer (T_measured), T_ideal and
their ratio (efficiency, docs/design.md §8; goal >= 0.90 at 16 PEs), the
Verilator build time of this configuration, simulated cycles per second, and
the wall time of a warm ``python -m sim`` (the ``make sim`` job; goal < 60 s).
Every output is compared with the golden model. Writes
``build/bench/sim_layer.json``. Cycle counts are exact and machine-independent;
the times are not.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sim  # noqa: E402
import sw  # noqa: E402
from sw.files import atomic_file  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-pe", type=int, default=16)
    parser.add_argument("--vectors", type=int, default=3)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--skip-make-sim", action="store_true", help="do not time python -m sim")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.size
    codes = sp.random(n, n, density=0.09, format="csr", random_state=1,
                      data_rvs=lambda k: rng.integers(1, 16, k)).astype(np.uint8)
    codebook = np.concatenate([[0], rng.integers(-2000, 2000, 15)])
    layer = sw.CompressedLayer(codes, codebook, rng.integers(-1000, 1000, n), True, 10, 12, 10)
    model = sw.CompressedModel([layer], 10)
    per_pe = codes.nnz / args.n_pe
    config = sw.Config(n_pe=args.n_pe, weight_depth=1 << int(np.ceil(np.log2(per_pe * 1.2))),
                       pointer_depth=2 * (n + 1) + 2, row_depth=n // args.n_pe)
    t0 = time.perf_counter()
    image = sw.pack(model, config)
    t_pack = time.perf_counter() - t0
    x = rng.integers(-3000, 3000, size=(args.vectors, n)).astype(np.int16)
    x[rng.random(x.shape) >= 0.35] = 0

    print(f"{n} -> {n}, {codes.nnz:,} nonzeros (9%), 35%-dense input, {args.n_pe} PEs; packed in {t_pack:.2f} s")
    result = sim.run(image, x, progress=print)
    exact = bool(np.array_equal(result.outputs, sw.golden.run(image, x)))
    cycles = int(result.layer_cycles.sum())
    rate = result.simulated_cycles / result.sim_seconds
    print(f"bit-exact: {'yes' if exact else 'NO'}")
    for b in range(args.vectors):
        print(f"  vector {b}: T_measured {int(result.layer_cycles[b, 0]):,}  T_ideal {int(result.ideal_cycles[b, 0]):,}"
              f"  efficiency {result.efficiency[b, 0]:.4f}  stalls {int(result.stall_cycles[b, 0]):,}"
              f"  busy max/mean {result.pe_busy[b, 0].max() / result.pe_busy[b, 0].mean():.4f}")
    build = "cached" if result.build.cached else f"{result.build.seconds:.1f} s"
    print(f"Verilator build: {build}; simulated {result.simulated_cycles:,} cycles in {result.sim_seconds:.1f} s "
          f"= {rate:,.0f} cycles/s (simulator start-up and image loading included)")
    report = {
        "layer": f"{n}->{n}", "nonzeros": int(codes.nnz), "n_pe": args.n_pe, "config": config.to_dict(),
        "bit_exact": exact, "t_measured": result.layer_cycles[:, 0].tolist(),
        "t_ideal": result.ideal_cycles[:, 0].tolist(), "efficiency": result.efficiency[:, 0].tolist(),
        "stall_cycles": result.stall_cycles[:, 0].tolist(), "pack_seconds": t_pack,
        "build_seconds": result.build.seconds, "build_cached": result.build.cached,
        "sim_seconds": result.sim_seconds, "simulated_cycles": result.simulated_cycles,
        "cycles_per_second": rate, "layer_cycles_total": cycles,
        "phases_seconds": {"pack": t_pack, **result.phases},
    }
    if not args.skip_make_sim:
        subprocess.run([sys.executable, "-m", "sim", "--vectors", "1"], cwd=ROOT, check=True,
                       capture_output=True)               # warm the default build
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sim"], cwd=ROOT, check=True, capture_output=True)
        report["make_sim_warm_seconds"] = time.perf_counter() - t0
        print(f"python -m sim (the make sim job, warm): {report['make_sim_warm_seconds']:.1f} s")
    out = ROOT / "build" / "bench" / "sim_layer.json"
    with atomic_file(out, "w") as f:
        f.write(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())

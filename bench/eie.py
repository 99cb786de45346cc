"""EIE's nine benchmark layers on the RTL at 64 PEs, beside EIE's own numbers.

    make bench-eie        (or: python bench/eie.py [--n-pe 64] [--vectors 1] [--layers NT-We,Alex-7]
                                                   [--no-sweeps] [--jobs 2])

For each layer of docs/design.md §8 (`sw.eie`: seeded synthetic matrices and
inputs of EIE's shapes and densities), packed for 64 PEs and run on the RTL
under Verilator: T_measured, T_ideal and efficiency, EIE's cycles (its
actual microseconds x 800 MHz) and efficiency, padding, broadcast stalls,
PE busy max/mean, whether every output equals the golden model's and every
counter the cycle model's (`sw.perf`), the time at the Fmax of a synthesis
report, and scipy's CSR matrix-vector product on this CPU for scale.

Then, with the cycle model (exact, so no RTL is needed): efficiency against
the activation-queue depth (EIE's figure 8) and speedup against the PE count
1..256 (EIE's figure 11), swept in a process pool.

Writes build/bench/eie.json (one object per layer), eie.md, eie_sweeps.json
and PNG plots eie_efficiency.png, eie_queue_depth.png, eie_pe_scaling.png,
eie_pe_work.png. Cycle counts are exact and machine-independent; the
seconds are not.
"""

import argparse
import json
import sys
import time
import timeit
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sim  # noqa: E402
import sw  # noqa: E402
from sw import eie, perf  # noqa: E402
from sw.files import atomic_file, save_figure  # noqa: E402
from sw.perf.sweep import grid, sweep  # noqa: E402
from hw.accelerator import queue_slack  # noqa: E402

OUT = ROOT / "build" / "bench"
QUEUE_DEPTHS = [2, 4, 8, 10, 12, 16, 24, 32, 48, 64]     # from the least the hardware allows (queue_slack + 1)
PE_COUNTS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
WORK_LAYER = "NT-We"                                   # EIE's worst layer (0.65)


def fmax_report(n_pe: int):
    """The ECP5 synthesis report for `n_pe` PEs if there is one, else the
    largest routed one (its PE count is said): (path, MHz) or (None, None)."""
    reports = []
    for path in sorted((ROOT / "build" / "synth").glob("ecp5-*pe/report.json")):
        try:
            r = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if r.get("fmax_mhz"):
            reports.append((r["n_pe"], path, r["fmax_mhz"]))
    exact = [r for r in reports if r[0] == n_pe]
    best = exact or sorted(reports)[-1:]
    return (best[0][1].relative_to(ROOT).as_posix(), best[0][2]) if best else (None, None)


def csr_microseconds(model: sw.CompressedModel, x: np.ndarray) -> float:
    """scipy's float32 CSR matrix-vector product of the layer's weights on
    this CPU (the best of five timings)."""
    layer = model.layers[0]
    codes = layer.codes
    w = sp.csr_array((layer.codebook[codes.data].astype(np.float32) / 2 ** layer.fw, codes.indices, codes.indptr),
                     shape=codes.shape)
    v = x[0].astype(np.float32)
    number = 20
    return min(timeit.repeat(lambda: w @ v, number=number, repeat=5)) / number * 1e6


def measure(model, x, n_pe: int, balance: bool):
    """One RTL run of a layer, checked against the golden model and the cycle model."""
    image = sw.pack(model, eie.suite_config(n_pe), balance=balance)
    result = sim.run(image, x, progress=print, progress_bar=False)
    perf.simulate(image, x[:1])                         # warm (compiles the kernels once per process)
    t0 = time.perf_counter()
    model_result = perf.simulate(image, x)
    model_seconds = time.perf_counter() - t0
    busy = result.pe_busy[:, 0, :].astype(np.float64)
    return {
        "t_measured": float(result.layer_cycles[:, 0].mean()), "t_ideal": float(result.ideal_cycles[:, 0].mean()),
        "efficiency": float(np.mean(result.efficiency[:, 0])),
        "bit_exact": bool(np.array_equal(result.outputs, sw.golden.run(image, x))),
        "model_exact": all(np.array_equal(getattr(result, c), getattr(model_result, c))
                           for c in ("cycles", "layer_cycles", "stall_cycles", "pe_busy")),
        "stall_cycles": float(result.stall_cycles[:, 0].mean()),
        "busy_max": float(busy.max(axis=1).mean()), "busy_mean": float(busy.mean()),
        "busy_max_over_mean": float((busy.max(axis=1) / busy.mean(axis=1)).mean()),
        "entries": int(image.layers[0].pe_entry_counts().sum()),
        "rtl_sim_seconds": result.sim_seconds, "model_seconds": model_seconds,
    }, result


def run_layer(spec, n_pe: int, vectors: int, fmax) -> tuple[dict, object]:
    """The layer packed both ways: rows balanced (`sw.pack(balance=True)`, the
    headline numbers) and row ``r`` on PE ``r % n_pe`` (``*_unbalanced``)."""
    model, x = eie.layer(spec.name, vectors)
    plain, _ = measure(model, x, n_pe, False)
    row, result = measure(model, x, n_pe, True)
    path, mhz = fmax
    row = {
        "layer": spec.name, "n_in": spec.n_in, "n_out": spec.n_out, "weight_density": spec.weight_density,
        "act_density": spec.act_density, "n_pe": n_pe, "vectors": vectors, **row,
        "eie_cycles": spec.eie_cycles, "eie_ideal_cycles": round(spec.eie_ideal_us * eie.EIE_CLOCK_MHZ),
        "eie_efficiency": spec.eie_efficiency, "cycles_vs_eie": row["t_measured"] / spec.eie_cycles,
        "padding_entries": row["entries"] - int(model.layers[0].codes.nnz),
        "padding_share": 1 - model.layers[0].codes.nnz / row["entries"],
        **{f"{k}_unbalanced": plain[k] for k in ("t_measured", "t_ideal", "efficiency", "bit_exact", "model_exact",
                                                 "stall_cycles", "busy_max_over_mean")},
        "fmax_report": path, "fmax_mhz": mhz,
        "microseconds_at_fmax": row["t_measured"] / mhz if mhz else None,
        "eie_microseconds": spec.eie_actual_us,
        "scipy_csr_microseconds": csr_microseconds(model, x),
        "model_speedup": row["rtl_sim_seconds"] / row["model_seconds"],
    }
    return row, result


def plots(rows, sweeps, work, out: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name):
        save_figure(fig, out / name)

    names = [r["layer"] for r in rows]
    pos = np.arange(len(rows))
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    a1.bar(pos - 0.27, [r["efficiency"] for r in rows], 0.27, label="OpenEIE, balanced rows (RTL)")
    a1.bar(pos, [r["efficiency_unbalanced"] for r in rows], 0.27, label="OpenEIE, row r on PE r % n_pe")
    a1.bar(pos + 0.27, [r["eie_efficiency"] for r in rows], 0.27, label="EIE (published)")
    a1.axhline(0.95, color="grey", lw=0.8, ls="--")
    a1.set_ylabel("T_ideal / T_measured")
    a1.set_ylim(0, 1.05)
    a1.legend(loc="lower left")
    a1.set_title(f"Load-balance efficiency, {rows[0]['n_pe']} PEs")
    a2.bar(pos, [r["cycles_vs_eie"] for r in rows], 0.5, color="tab:green")
    a2.axhline(1.0, color="grey", lw=0.8)
    a2.set_ylabel("RTL cycles / EIE's cycles")
    a2.set_xticks(pos, names, rotation=30)
    save(fig, "eie_efficiency.png")

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in names:
        pts = [s for s in sweeps["queue_depth"] if s["layer"] == name]
        ax.plot([s["fifo_depth"] for s in pts], [s["efficiency"] for s in pts], marker="o", ms=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("activation queue depth (fifo_depth)")
    ax.set_ylabel("efficiency (cycle model)")
    ax.set_title(f"Efficiency against queue depth, {rows[0]['n_pe']} PEs (EIE's figure 8)")
    ax.legend(fontsize=8, ncol=3)
    save(fig, "eie_queue_depth.png")

    fig, ax = plt.subplots(figsize=(8, 5))
    for name in names:
        pts = sorted((s for s in sweeps["pe_count"] if s["layer"] == name), key=lambda s: s["n_pe"])
        base = pts[0]["t_measured"]
        ax.plot([s["n_pe"] for s in pts], [base / s["t_measured"] for s in pts], marker="o", ms=3, label=name)
    ax.plot(PE_COUNTS, PE_COUNTS, color="grey", lw=0.8, ls="--", label="linear")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("PEs")
    ax.set_ylabel("speedup over 1 PE (cycle model)")
    ax.set_title("Speedup against PE count (EIE's figure 11)")
    ax.legend(fontsize=8, ncol=3)
    save(fig, "eie_pe_scaling.png")

    name, result = work
    busy = result.pe_busy[0, 0]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(np.arange(len(busy)), busy, color="tab:blue")
    ax.axhline(result.ideal_cycles[0, 0], color="tab:green", label=f"T_ideal {int(result.ideal_cycles[0, 0]):,}")
    ax.axhline(result.layer_cycles[0, 0], color="tab:red", label=f"T_measured {int(result.layer_cycles[0, 0]):,}")
    ax.set_xlabel("PE")
    ax.set_ylabel("busy cycles (entries issued)")
    ax.set_title(f"{name}: work per PE, vector 0")
    ax.legend()
    save(fig, "eie_pe_work.png")


def markdown(rows) -> str:
    lines = ["| layer | T_measured | T_ideal | efficiency | unbalanced | EIE cycles | EIE efficiency "
             "| RTL / EIE cycles | padding | stalls | busy max/mean | bit-exact | model exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['layer']} | {r['t_measured']:,.0f} | {r['t_ideal']:,.0f} | {r['efficiency']:.3f} "
                     f"| {r['efficiency_unbalanced']:.3f} "
                     f"| {r['eie_cycles']:,} | {r['eie_efficiency']:.3f} | {r['cycles_vs_eie']:.2f} "
                     f"| {r['padding_share']:.1%} | {r['stall_cycles']:,.0f} | {r['busy_max_over_mean']:.3f} "
                     f"| {'yes' if r['bit_exact'] and r['bit_exact_unbalanced'] else 'NO'} "
                     f"| {'yes' if r['model_exact'] and r['model_exact_unbalanced'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-pe", type=int, default=eie.EIE_N_PE)
    parser.add_argument("--vectors", type=int, default=1)
    parser.add_argument("--layers", help="comma-separated subset (default: all nine)")
    parser.add_argument("--no-sweeps", action="store_true", help="skip the cycle-model sweeps and the plots")
    parser.add_argument("--jobs", type=int, default=2, help="processes for the sweeps")
    args = parser.parse_args()
    specs = list(eie.LAYERS)
    if args.layers:
        wanted = args.layers.split(",")
        unknown = set(wanted) - {s.name for s in specs}
        if unknown:
            parser.error(f"no such layers: {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in wanted]

    fmax = fmax_report(args.n_pe)
    print(f"EIE's layers at {args.n_pe} PEs, {args.vectors} vector(s) each; "
          f"{eie.suite_config(args.n_pe)}; Fmax from {fmax[0] or 'no synthesis report'}")
    rows, work = [], None
    for spec in specs:
        row, result = run_layer(spec, args.n_pe, args.vectors, fmax)
        rows.append(row)
        if spec.name == WORK_LAYER or work is None:
            work = (spec.name, result)
        print(f"  {spec.name:8s} T_measured {row['t_measured']:9,.0f}  T_ideal {row['t_ideal']:9,.0f}  "
              f"efficiency {row['efficiency']:.3f} (unbalanced {row['efficiency_unbalanced']:.3f}, "
              f"EIE {row['eie_efficiency']:.3f})  "
              f"cycles / EIE's {row['cycles_vs_eie']:.2f}  stalls {row['stall_cycles']:,.0f}  "
              f"bit-exact {'yes' if row['bit_exact'] else 'NO'}  model exact {'yes' if row['model_exact'] else 'NO'}  "
              f"(Verilator {row['rtl_sim_seconds']:.1f} s, model {row['model_seconds'] * 1e3:.1f} ms)")
    with atomic_file(OUT / "eie.json", "w") as f:
        json.dump(rows, f, indent=1)
    with atomic_file(OUT / "eie.md", "w") as f:
        f.write(markdown(rows))
    print(f"wrote {OUT / 'eie.json'} and eie.md")

    if not args.no_sweeps:
        names = [s.name for s in specs]
        least = queue_slack(eie.suite_config(args.n_pe)) + 1            # the hardware refuses shallower queues
        depths = sorted({least, *(d for d in QUEUE_DEPTHS if d > least)})
        suite = dict(run_bits=[eie.SUITE_RUN_BITS], input_width=[eie.SUITE_INPUT_WIDTH],
                     broadcast_width=[eie.SUITE_BROADCAST_WIDTH], balance=[True])
        points = {"queue_depth": grid(layer=names, n_pe=[args.n_pe], fifo_depth=depths, **suite),
                  "pe_count": grid(layer=names, n_pe=PE_COUNTS, fifo_depth=[eie.SUITE_FIFO_DEPTH], **suite)}
        sweeps = {}
        t0 = time.perf_counter()
        with ProcessPoolExecutor(args.jobs) as pool:
            for key, pts in points.items():
                print(f"cycle model: {key} sweep, {len(pts)} points ...", flush=True)
                sweeps[key] = sweep(pts, executor=pool)
        print(f"  sweeps took {time.perf_counter() - t0:.1f} s")
        with atomic_file(OUT / "eie_sweeps.json", "w") as f:
            json.dump(sweeps, f, indent=1)
        plots(rows, sweeps, work, OUT)
        print(f"wrote {OUT / 'eie_sweeps.json'} and the plots eie_*.png")
    bad = [r["layer"] for r in rows if not all(r[k] for k in ("bit_exact", "model_exact", "bit_exact_unbalanced",
                                                             "model_exact_unbalanced"))]
    if bad:
        print(f"NOT EXACT: {', '.join(bad)}")
        sys.exit(1)


if __name__ == "__main__":
    main()

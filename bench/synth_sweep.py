"""Synthesis, place and route of every PE count of both targets (`make
bench-synth`): the table of LUT4, FF, block RAM, DSP, Fmax and critical path.

    python bench/synth_sweep.py [--target ecp5|ice40] [--n-pe 1 4 16 64] [--seeds 1,2 --jobs 2] [--quick]

Each run is `python -m synth` (cached: a run whose inputs did not change is
not repeated), or with ``--seeds`` its sweep (one netlist, placed at each
seed, the fastest kept; the table gives every seed's Fmax); writes
``build/bench/synth.json`` and ``build/bench/synth.md``. Hours on two cores
for a first run: nextpnr on 64 PEs alone takes 20 to 45 minutes a seed in
WebAssembly.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import sw  # noqa: E402
import synth  # noqa: E402
from sw.files import atomic_file  # noqa: E402

SWEEP = {"ecp5": [1, 4, 16, 64], "ice40": [1, 2, 4]}     # 4 UP5K PEs do not fit: the table says so
KEYS = ["target", "n_pe", "lut4", "ff", "logic_cells", "block_ram", "dsp", "fmax_mhz", "seeds", "target_mhz",
        "critical_path", "synthesis_s", "pnr_s", "command"]


def command(target: str, n_pe: int, args) -> str:
    extra = (" QUICK=1" if args.quick else "") + (f" SEEDS={args.seeds} JOBS={args.jobs}" if args.seeds else "")
    return f"make synth TARGET={target} N_PE={n_pe}{extra}"


def row(report: dict, args) -> dict:
    c = report["cells"]
    ram = ", ".join(f"{u['used']}/{u['available']} {k}" for k, u in c["block_ram"].items())
    cp = report.get("critical_path") or {}
    return {
        "target": report["target"], "n_pe": report["n_pe"],
        "lut4": f"{c['lut4']['used']:,}/{c['lut4']['available']:,}", "ff": f"{c['ff']['used']:,}/{c['ff']['available']:,}",
        "logic_cells": f"{c['logic_cells']['used']:,}/{c['logic_cells']['available']:,}" if "logic_cells" in c else "-",
        "block_ram": ram, "dsp": f"{c['dsp']['used']}/{c['dsp']['available']}",
        "fmax_mhz": report["fmax_mhz"], "target_mhz": report["target_mhz"],
        "seeds": ", ".join(f"{r['seed']}: {r['fmax_mhz']}" for r in report["sweep"]) if "sweep" in report
                 else str(report.get("seed", 1)),
        "critical_path": f"{cp.get('delay_ns', 0):.2f} ns: {cp.get('from')} -> {cp.get('to')}",
        "synthesis_s": round(report["seconds"].get("synthesis", 0)),
        "pnr_s": round(report["seconds"].get("place_and_route", 0)),
        "command": command(report["target"], report["n_pe"], args),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=sorted(SWEEP), action="append")
    parser.add_argument("--n-pe", type=int, nargs="+")
    parser.add_argument("--seeds", help="place and route each netlist at these seeds (e.g. 1,2 or 1-3)")
    parser.add_argument("--jobs", type=int, default=1, help="with --seeds: nextpnr runs at a time")
    parser.add_argument("--quick", action="store_true", help="ecp5: without router2's timing-driven rip-up")
    args = parser.parse_args()
    try:
        seeds = synth.parse_seeds(args.seeds) if args.seeds else None
    except ValueError as e:
        parser.error(f"--seeds: {e}")
    rows = []
    for target in args.target or list(SWEEP):
        preset = synth.target(target).preset
        for n in args.n_pe or SWEEP[target]:
            config = sw.Config.preset(preset, n_pe=n)
            quick = args.quick and bool(synth.target(target).slow_args)
            try:
                if seeds:
                    report = synth.sweep(config, target, seeds, jobs=args.jobs, preset=preset, progress=print,
                                         quick=quick)
                else:
                    report = synth.run(config, target, preset=preset, progress=print, quick=quick)
            except synth.SynthesisError as e:           # e.g. it does not fit: say so in the table
                why = str(e).strip().splitlines()[0][:200]
                rows.append({**dict.fromkeys(KEYS, "-"), "target": target, "n_pe": n, "fmax_mhz": None,
                             "target_mhz": synth.target(target).target_mhz, "critical_path": f"failed: {why}",
                             "seeds": args.seeds or "1", "command": command(target, n, args)})
                continue
            rows.append(row(report, args))
            print(json.dumps(rows[-1]))
    out = ROOT / "build" / "bench"
    with atomic_file(out / "synth.json", "w") as f:
        json.dump(rows, f, indent=1)
    lines = ["| " + " | ".join(KEYS) + " |", "|" + "---|" * len(KEYS)]
    lines += ["| " + " | ".join(str(r[k]) for k in KEYS) + " |" for r in rows]
    with atomic_file(out / "synth.md", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out / 'synth.json'} and {out / 'synth.md'}")


if __name__ == "__main__":
    main()

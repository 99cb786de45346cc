"""``python -m synth`` (``make synth``): synthesise, place and route the
accelerator for an FPGA and report what it became.

    python -m synth --target ecp5                  # the ecp5-85f preset, 64 PEs
    python -m synth --target ecp5 --n-pe 16        # the same PEs, fewer of them
    python -m synth --target ice40 --image IMG     # memories initialised from an image
    python -m synth --target ecp5 --seeds 1-4 --jobs 2   # one netlist, four placements; the best kept
    python -m synth --target ice40 --n-pe 4 --blocks   # each block's LUT4, FF, RAM and DSP cells (no placement)

Writes ``build/synth/<target>-<n_pe>pe/report.json`` (``-yosys`` with
``--no-pnr``) and prints a summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import sw
from sw.cli import cli_errors

from .blocks import block_table, blocks
from .flow import SynthesisError, parse_seeds, run, sweep
from .targets import TARGETS


def _log(line=""):
    print(line, flush=True)


def summary(report: dict) -> list[str]:
    """A few lines for the terminal."""
    c = report["cells"]
    lines = [f"{report['device']} ({report['board']}), {report['n_pe']} PEs"
             f"{' (preset ' + report['preset'] + ')' if report.get('preset') else ''}:"]
    if report["fmax_mhz"] is not None:
        met = "met" if report["timing_met"] else "NOT met"
        lines.append(f"  Fmax {report['fmax_mhz']:.1f} MHz against {report['target_mhz']:g} MHz ({met})")
        cp = report.get("critical_path")
        if cp:
            lines.append(f"  critical path {cp['delay_ns']:.2f} ns ({cp['logic_ns']:.2f} logic, "
                         f"{cp['routing_ns']:.2f} routing): {cp['from']} -> {cp['to']}")
    if report.get("slow_options_dropped"):
        lines.append(f"  note: {report['slow_options_dropped']}")
    for key, label in (("lut4", "LUT4"), ("ff", "FF"), ("logic_cells", "LC")):
        if key in c:
            lines.append(f"  {label:<10} {_used(c[key])}")
    for kind, u in c["block_ram"].items():
        lines.append(f"  {kind:<10} {_used(u)}")
    lines.append(f"  {'DSP':<10} {_used(c['dsp'])}")
    if "lut_ram" in c:
        lines.append(f"  {'LUT RAM':<10} {c['lut_ram']['used']} TRELLIS_DPR16X4")
    kinds = {}
    for name, mem in report["memories"].items():
        kinds.setdefault(mem["kind"], []).append(name)
    lines.append("  memories: " + "; ".join(f"{k}: {_names(v)}" for k, v in sorted(kinds.items())))
    for run in report.get("sweep", []):
        cp = run["critical_path"] or {}
        lines.append(f"  seed {run['seed']}: {run['fmax_mhz']} MHz ({'met' if run['timing_met'] else 'not met'}; "
                     f"{cp.get('from')} -> {cp.get('to')})")
    secs = report["seconds"]
    lines.append("  time: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in secs.items())
                 + (" (cached)" if report.get("cached") else ""))
    return lines


def _used(u: dict) -> str:
    if u.get("available"):
        return f"{u['used']:>7,} / {u['available']:,} ({100 * u['used'] / u['available']:.0f}%)"
    return f"{u['used']:>7,}"


def _names(names: list[str]) -> str:
    """pe0.entries .. pe63.entries as pe*.entries."""
    kinds = sorted({n.split(".", 1)[1] if n.startswith("pe") and "." in n else n for n in names})
    return ", ".join(f"pe*.{k}" if any(n.endswith("." + k) and n.startswith("pe") for n in names) else k
                     for k in kinds)


def _seeds(text: str) -> list[int]:
    try:
        return parse_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=sorted(TARGETS), default="ecp5")
    parser.add_argument("--preset", choices=sorted(sw.config.PRESETS),
                        help="configuration (default: the target's own preset)")
    parser.add_argument("--n-pe", type=int, help="PEs (default: the preset's; the per-PE memories stay)")
    parser.add_argument("--image", type=Path, help="initialise the memories from this image (its configuration is used)")
    parser.add_argument("--no-pnr", action="store_true", help="synthesise only (Yosys), no place and route")
    parser.add_argument("--freq", type=float, help="clock constraint in MHz (default: the target's goal)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr's placement seed (default 1)")
    parser.add_argument("--seeds", type=_seeds, metavar="LIST",
                        help="place and route one netlist at each of these seeds (e.g. 1,2,3 or 1-4) and keep the "
                             "fastest; the report lists every seed")
    parser.add_argument("--jobs", type=int, default=1, help="with --seeds: nextpnr runs at a time (default 1)")
    parser.add_argument("--force", action="store_true", help="run again even if a cached report exists")
    parser.add_argument("--blocks", action="store_true",
                        help="only synthesise with the hierarchy kept and print each block's cells (the PEs' "
                             "blocks summed and per PE): where the logic goes, not the report")
    parser.add_argument("--quick", action="store_true",
                        help="ecp5: place and route without router2's timing-driven rip-up (--tmg-ripup): minutes "
                             "sooner, at less MHz where timing is close (16 PEs, seed 1, heap placer: 86.7 against "
                             "100.6). Without --quick a rip-up that stalls (a legal routing, the same failing paths "
                             "for 50 iterations) is stopped and the run repeated without it")
    args = parser.parse_args(argv)
    try:
        with cli_errors():
            t = TARGETS[args.target]
            image = sw.Image.load(args.image) if args.image else None
            preset = args.preset or t.preset
            if image is not None:
                if args.n_pe or args.preset:
                    raise ValueError("--image brings its own configuration; --n-pe and --preset do not apply")
                config, preset = image.config, None
            else:
                config = sw.Config.preset(preset, **({"n_pe": args.n_pe} if args.n_pe else {}))
            if args.blocks:
                if args.seeds:
                    raise ValueError("--blocks places nothing; --seeds do not apply")
                try:
                    result = blocks(config, t.name, image=image, progress=_log)
                except SynthesisError as e:
                    raise ValueError(str(e)) from None
                for line in block_table(result):
                    _log(line)
                _log(f"blocks: {result['path']}")
                return 0
            if args.seeds and args.no_pnr:
                raise ValueError("--seeds are placement seeds; --no-pnr places nothing")
            if args.jobs < 1:
                raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
            try:
                if args.seeds:
                    report = sweep(config, t.name, args.seeds, jobs=args.jobs, image=image, freq_mhz=args.freq,
                                   force=args.force, progress=_log, preset=preset, quick=args.quick)
                else:
                    report = run(config, t.name, image=image, place=not args.no_pnr, seed=args.seed,
                                 freq_mhz=args.freq, force=args.force, progress=_log, preset=preset,
                                 quick=args.quick)
            except SynthesisError as e:
                raise ValueError(str(e)) from None
    except SystemExit as e:
        return e.code
    _log()
    for line in summary(report):
        _log(line)
    _log(f"report: {report['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

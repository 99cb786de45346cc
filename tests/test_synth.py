"""Synthesis: every large memory in block RAM, every multiplier in a DSP,
and (opt-in, ``-m pnr``) place and route with a report."""

import json

import pytest

import sw
import synth
from synth.__main__ import summary
from synth.flow import memory_mapping

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


def test_ecp5_memories_and_multipliers(tmp_path):
    memories, stat = synth.yosys_only(SMALL, "ecp5", tmp_path)
    for k in range(SMALL.n_pe):
        for what in LARGE:
            m = memories[f"pe{k}.{what}"]
            assert m["kind"] == "block RAM", (f"pe{k}.{what}", m)
    cells = stat["modules"]["\\openeie_top"]["num_cells_by_type"]
    assert cells.get("MULT18X18D") == SMALL.n_pe          # one per PE: the multiplier is in a DSP
    assert not any(k.startswith("$") and k not in ("$scopeinfo",) for k in cells), cells   # nothing left unmapped


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

"""The cycle model (`sw.perf`) on its own. Its agreement with the RTL on every
counter is in tests/test_sim.py (`test_cycle_model_matches_the_rtl`, every
configuration of the RTL suite); here: its nonzero tree against the
hardware's, cycle by cycle in Amaranth's simulator, and its properties."""

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

import sw
from hw.broadcast import NonzeroTree
from hw.layouts import Widths
from sw import eie, perf
from sw.perf import kernels

from models import random_inputs, random_model


@pytest.mark.parametrize("n_pe", [1, 2, 4, 16, 64])
def test_tree_model_equals_the_nonzero_tree(n_pe):
    # random offers and a random ready at the root: the model's outputs, and
    # which leaves it takes, equal the RTL's in every cycle
    config = sw.Config(n_pe=n_pe, weight_depth=1024, pointer_depth=256, row_depth=16)
    dut = NonzeroTree(Widths(config))
    rng = random.Random(n_pe)
    fan_in = NonzeroTree.FAN_IN
    starts, lo, hi = kernels.tree_shape(n_pe, fan_in)
    nodes = int(starts[-1])
    ov, free = np.zeros(nodes, dtype=np.bool_), np.zeros(nodes, dtype=np.bool_)
    out = np.zeros(nodes, dtype=np.int64)
    hv = np.zeros(nodes * fan_in, dtype=np.bool_)
    held = np.zeros(nodes * fan_in, dtype=np.int64)
    leaf_taken = np.zeros(n_pe, dtype=np.bool_)
    mismatches = []

    async def bench(ctx):
        offered = [0] * n_pe                # 0: nothing offered, else the pair's index
        serial = 0
        for cycle in range(400):
            for k in range(n_pe):
                if not offered[k] and rng.random() < 0.35:
                    serial = serial % 200 + 1            # fits the index field
                    offered[k] = serial
            ready = rng.random() < 0.6
            for k in range(n_pe):
                ctx.set(dut.ins[k].valid, offered[k] != 0)
                ctx.set(dut.ins[k].payload.index, offered[k])
            ctx.set(dut.out.ready, ready)
            rtl = (ctx.get(dut.out.valid), ctx.get(dut.out.payload.index) if ctx.get(dut.out.valid) else None,
                   [bool(ctx.get(dut.ins[k].ready)) and offered[k] != 0 for k in range(n_pe)])    # handed over
            root = (bool(ov[-1]), int(out[-1]) if ov[-1] else None)
            kernels.tree_step(starts, lo, hi, ov, out, hv, held, np.array([o != 0 for o in offered]),
                              np.array(offered, dtype=np.int64), ready, free, leaf_taken, fan_in)
            if (bool(rtl[0]), rtl[1]) != root or rtl[2] != leaf_taken.tolist():
                mismatches.append((cycle, rtl, root, leaf_taken.tolist()))
                return
            for k in range(n_pe):
                if leaf_taken[k]:
                    offered[k] = 0
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert not mismatches, f"first difference (cycle, RTL, model root, model takes): {mismatches[0]}"


def test_report_has_the_rtl_fields_and_busy_equals_work():
    config = sw.Config(n_pe=4)
    rng = np.random.default_rng(3)
    image = sw.pack(random_model(rng, config, [30, 20, 10]), config)
    x = random_inputs(rng, 5, 30, config.act_bits, density=0.6)
    r = perf.simulate(image, x)
    assert r.cycles.shape == (5,) and r.layer_cycles.shape == (5, 2) and r.pe_busy.shape == (5, 2, 4)
    assert np.array_equal(r.pe_busy, sw.metrics.work(image, x))
    assert np.all(r.layer_cycles >= r.ideal_cycles)
    assert np.all(r.cycles > r.layer_cycles.sum(axis=1))
    # one vector at a time gives the same numbers
    one = perf.simulate(image, x[2])
    assert one.layer_cycles.tolist() == [r.layer_cycles[2].tolist()]


def test_deeper_queues_never_cost_cycles_and_stalls_fall():
    model, x = eie.layer("NT-We", 1)
    prev = None
    for depth in (8, 16, 32):
        r = perf.simulate(sw.pack(model, eie.suite_config(fifo_depth=depth)), x)
        if prev is not None:
            assert r.layer_cycles[0, 0] <= prev.layer_cycles[0, 0]
            assert r.stall_cycles[0, 0] <= prev.stall_cycles[0, 0]
        prev = r


def test_eie_layers_are_seeded():
    a, xa = eie.layer("Alex-8", 2, seed=5)
    b, xb = eie.layer("Alex-8", 2, seed=5)
    assert np.array_equal(xa, xb) and (a.layers[0].codes != b.layers[0].codes).nnz == 0
    spec = {s.name: s for s in eie.LAYERS}["Alex-8"]
    assert a.layers[0].codes.shape == (spec.n_out, spec.n_in)
    assert abs(a.layers[0].codes.nnz / (spec.n_in * spec.n_out) - spec.weight_density) < 0.01
    assert abs(np.count_nonzero(xa) / xa.size - spec.act_density) < 0.03
    with pytest.raises(KeyError, match="no EIE layer"):
        eie.layer("Alex-9")


def test_two_lanes_send_a_later_layers_activations_two_a_cycle():
    # 256 mostly nonzero inputs to a layer of 16 rows (one per PE, at most one
    # entry per column and PE): the broadcast is the bound, and with a nonzero
    # tree per lane it sends two a cycle in later layers too, not only layer 0's
    x = random_inputs(np.random.default_rng(7), 1, 8, 16, density=1.0)
    cycles, nonzero = {}, None
    for lanes in (1, 2):
        config = sw.Config(n_pe=16, input_width=2, broadcast_width=lanes, fifo_depth=16)
        model = random_model(np.random.default_rng(7), config, [8, 256, 16], density=0.5, relu=[False, True])
        image = sw.pack(model, config)
        cycles[lanes] = perf.simulate(image, x).layer_cycles[0, 1]
        ys = sw.golden.run_layers(image, x)
        nonzero = np.count_nonzero(sw.metrics.layer_inputs(image, x, ys)[1])
    assert nonzero > 150 and cycles[1] >= nonzero
    # two a cycle save half a cycle per nonzero at best; at least 80% of that
    # (the layer's fixed latency is the same in both)
    assert cycles[1] - cycles[2] >= 0.4 * nonzero, (cycles, nonzero)

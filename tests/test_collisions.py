"""No result depends on a block RAM read of a word written in the same
cycle (`hw.collisions`): the iCE40 flow declares such reads undefined, so
the RTL suite's cases run on the build that inverts every one of them, and
must still equal the golden model bit for bit (and the counters the work)."""

from contextlib import nullcontext

import numpy as np
import pytest
from amaranth import *
from amaranth.lib import memory
from amaranth.sim import Simulator

import sim
from hw.collisions import poisoned, poisoning, read_data
from sim.runner import make_result

from test_sim import CONFIGS, cases, check


def _ram(poison: bool):
    m = Module()
    m.submodules.mem = mem = memory.Memory(shape=signed(8), depth=4, init=[5, 6, 7, 8])
    rd, wr = mem.read_port(), mem.write_port()
    with poisoning() if poison else nullcontext():
        data = read_data(m, rd, wr)
    return m, rd, wr, data


@pytest.mark.parametrize("poison", [False, True])
def test_read_data_inverts_only_collided_reads(poison):
    m, rd, wr, data = _ram(poison)
    seen = []

    async def bench(ctx):
        ctx.set(wr.addr, 1); ctx.set(wr.data, -3); ctx.set(wr.en, 1)
        ctx.set(rd.addr, 1)                                 # a collision
        await ctx.tick()
        seen.append(ctx.get(data))
        ctx.set(rd.addr, 2)                                 # not one (the write goes on at 1)
        await ctx.tick()
        seen.append(ctx.get(data))
        ctx.set(wr.en, 0); ctx.set(rd.addr, 1)
        await ctx.tick()
        seen.append(ctx.get(data))

    s = Simulator(m)
    s.add_clock(1e-6)
    s.add_testbench(bench)
    s.run()
    old = 6                                                 # Amaranth's read: the word before the write
    assert seen == ([~old, 7, -3] if poison else [old, 7, -3])
    assert not poisoned()


@pytest.mark.parametrize("name", ["up5k", "4pe-narrow"])
def test_rtl_suite_on_the_poisoned_build(name, tmp_path):
    config = CONFIGS[name]
    main, steps, expect = cases(config, tmp_path)
    results, info, seconds, _ = sim.run_job(main, steps, poison=True)
    assert "-poison" in info.build_dir.name
    runs = [i for i, step in enumerate(steps) if step["op"] == "run"]
    assert len(runs) == len(expect)
    for i, (_, image, x) in zip(runs, expect):
        result = make_result(image, x, results, f"s{i}", info, seconds, seconds)
        check(image, x, result)

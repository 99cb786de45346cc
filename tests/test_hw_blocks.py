"""Single blocks in Amaranth's simulator: their documented cycle behaviour."""

import gc
import re
import warnings

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.sim import Simulator

import hw
import sw
from hw.arithmetic import ArithmeticUnit
from hw.broadcast import NonzeroTree
from hw.exit_test import ExitTest
from hw.hostmap import HostMap
from hw.layouts import Widths
from hw.pe import ProcessingElement
from hw.pointer_reader import PointerReader
from hw.writeback import WriteBack
from sw.fixedpoint import writeback as sw_writeback

SMALL = sw.Config(n_pe=1, weight_depth=256, pointer_depth=64, row_depth=64, max_layers=2, entries_per_word=4)


def simulate(dut, testbench, cycles=None):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


async def bus_access(ctx, bus, addr, data=None):
    """One Wishbone access (a write if `data` is given): the read data."""
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    ctx.set(bus.adr, addr)
    ctx.set(bus.we, data is not None)
    ctx.set(bus.dat_w, data or 0)
    while True:
        await ctx.tick()
        if ctx.get(bus.ack):
            break
    ctx.set(bus.cyc, 0)
    ctx.set(bus.stb, 0)
    return ctx.get(bus.dat_r)


def pe_for_columns(columns, config=SMALL):
    """A PE whose layer-0 columns hold `columns` (lists of (local row, code))."""
    n_in = len(columns)
    rows = 1 + max((r for col in columns for r, _ in col), default=0)
    codes = np.zeros((rows, n_in), dtype=np.int64)
    for j, col in enumerate(columns):
        for r, c in col:
            codes[r, j] = c
    layer = sw.CompressedLayer(codes, np.arange(16) - 3 + (np.arange(16) == 0) * 3, None, False, 0, 0, 0)
    image = sw.pack(sw.CompressedModel([layer], 0), config)
    m = image.memories()
    init = {"entries": [int(w) for w in m["pe0.entries"].words], "ptr_even": [int(w) for w in m["pe0.ptr_even"].words],
            "ptr_odd": [int(w) for w in m["pe0.ptr_odd"].words]}
    return image, ProcessingElement(Widths(config), 0, 8, init=init)


def issue_cycles(pe, activations, max_cycles=200):
    """Push `(j, a)` pairs into the PE's queue, one per cycle; return the
    cycles in which an entry was issued."""
    issued = []

    async def tb(ctx):
        pending = list(activations)
        for cycle in range(max_cycles):
            if pending:
                j, a = pending[0]
                ctx.set(pe.act[0].valid, 1)
                ctx.set(pe.act[0].payload.pointer, j)          # g = ptr_base + j, ptr_base 0
                ctx.set(pe.act[0].payload.value, a)
            else:
                ctx.set(pe.act[0].valid, 0)
            _, _, ready, issue = await ctx.tick().sample(pe.act[0].ready, pe.matrix.issue)
            if pending and ready:
                pending.pop(0)
            if issue:
                issued.append(cycle)

    simulate(pe, tb)
    return issued


SHORT = SMALL.replace(short_pipeline=1)


@pytest.mark.parametrize("config", [SMALL, SHORT], ids=["deep", "short"])
def test_no_bubble_between_columns_any_lane(config):
    # columns of 1..5 entries starting in every lane of a 4-entry word
    columns = [[(r, 1 + r % 15) for r in range(n)] for n in (3, 1, 5, 2, 4, 1, 1, 3)]
    image, pe = pe_for_columns(columns, config)
    issued = issue_cycles(pe, [(j, 1) for j in range(len(columns))])
    total = sum(len(c) for c in columns)
    assert len(issued) == total
    assert issued[-1] - issued[0] == total - 1          # one entry every cycle, no bubble


@pytest.mark.parametrize("config", [SMALL, SHORT], ids=["deep", "short"])
def test_first_entry_issues_as_the_pe_docstring_says(config):
    # an activation written into the queue in cycle 0 issues its column's
    # first entry in cycle 9, or 8 with the short pipeline (the table in hw/pe.py)
    image, pe = pe_for_columns([[(0, 1)]], config)
    assert issue_cycles(pe, [(0, 1)], max_cycles=40) == [9 - config.short_pipeline]


@pytest.mark.parametrize("config", [SMALL, SHORT], ids=["deep", "short"])
def test_empty_column_costs_at_most_one_cycle(config):
    columns = [[(0, 1), (1, 2)], [], [(0, 3)], [], [], [(2, 4), (3, 5)], [], [(1, 1)]]
    image, pe = pe_for_columns(columns, config)
    issued = issue_cycles(pe, [(j, 1) for j in range(len(columns))])
    total = sum(len(c) for c in columns)
    empty = sum(1 for c in columns if not c)
    assert len(issued) == total
    assert issued[-1] - issued[0] + 1 <= total + empty


@pytest.mark.parametrize("short", [0, 1])
@pytest.mark.parametrize("pattern", ["one-entry columns", "one entry, then empty"])
def test_one_activation_per_cycle_for_long(pattern, short):
    """A long run of short columns: the pointer reader takes one activation
    per cycle for as long as it lasts (its credits must all come back: a
    credit lost when a column leaves the FIFO in the cycle an empty one is
    dropped would slow it down, then stop it)."""
    config = sw.Config(n_pe=1, weight_depth=512, pointer_depth=512, row_depth=64, max_layers=2, entries_per_word=1,
                       short_pipeline=short)
    n = 120
    if pattern == "one-entry columns":
        columns = [[(j % 7, 1 + j % 15)] for j in range(n)]
    else:
        columns = [[(j % 7, 1 + j % 15)] if j % 2 == 0 else [] for j in range(n)]
    image, pe = pe_for_columns(columns, config)
    issued = issue_cycles(pe, [(j, 1) for j in range(n)], max_cycles=n + 60)
    assert len(issued) == sum(len(c) for c in columns)
    assert issued[-1] - issued[0] <= n + 1         # one activation a cycle, from the first issue to the last


@pytest.mark.parametrize("config", [SMALL, SHORT], ids=["deep", "short"])
def test_forwarding_back_to_back_same_row(config):
    """Every entry hits row 0, or alternates, or repeats after a gap: the
    accumulators must hold the exact sums."""
    w = Widths(config)
    au = ArithmeticUnit(w)
    rng = np.random.default_rng(0)
    rows = [0, 0, 0, 1, 0, 1, 1, 2, 2, 0, 5, 5, 5, 0]
    codes = rng.integers(1, 6, len(rows))
    values = rng.integers(-300, 300, len(rows))
    cb = np.array([0, 1, -2, 3, 100, -7])
    expected = {}
    for r, c, v in zip(rows, codes, values):
        expected[r] = expected.get(r, 0) + int(cb[c]) * int(v)

    async def tb(ctx):
        for code, value in enumerate(cb):              # the layer's codebook, as the codebook store loads it
            ctx.set(au.cb_load.en, 1)
            ctx.set(au.cb_load.addr, code)
            ctx.set(au.cb_load.data, int(value))
            await ctx.tick()
        ctx.set(au.cb_load.en, 0)
        prev = -1
        for r, c, v in zip(rows, codes, values):
            first = r <= prev
            run = r if first else r - prev - 1
            ctx.set(au.entry_valid, 1)
            ctx.set(au.entry.first, int(first or prev < 0))
            ctx.set(au.entry.run, run if prev >= 0 and not first else r)
            ctx.set(au.entry.code, int(c))
            ctx.set(au.entry.value, int(v))
            prev = r
            await ctx.tick()
        ctx.set(au.entry_valid, 0)
        await ctx.tick().repeat(6)
        for r, total in expected.items():
            assert ctx.get(au.acc.data[r]) == total, f"row {r}"

    simulate(au, tb)


@pytest.mark.parametrize("short", [0, 1])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("acc_bits,act_bits", [(32, 16), (24, 8), (20, 12), (20, 16), (18, 12)])
def test_writeback_matches_fixedpoint(relu, acc_bits, act_bits, short):
    config = sw.Config(n_pe=1, row_depth=128, acc_bits=acc_bits, act_bits=act_bits, weight_bits=act_bits,
                       short_pipeline=short)
    rng = np.random.default_rng(int(relu) + acc_bits)
    lo, hi = -2**(acc_bits - 1), 2**(acc_bits - 1)
    # random sums, the extremes, and values right at the saturation limits of every shift
    acc = np.concatenate([rng.integers(lo, hi, 40), [hi - 1, lo, 0, -1, 1, 3, -3],
                          rng.integers(-2**(act_bits + 3), 2**(act_bits + 3), 20)])
    bias = np.concatenate([rng.integers(lo, hi, 40), [hi - 1, 0, 0, 0, 0, 0, 0], np.zeros(20, dtype=np.int64)])
    for shift in sorted({0, 1, 2, 5, act_bits - 2, act_bits - 1, act_bits, act_bits + 1, acc_bits - 2,
                         acc_bits - 1}):
        wb = WriteBack(Widths(config))
        expected = sw_writeback(sw.fixedpoint.wrap(acc + bias, acc_bits), shift, relu, act_bits)
        got, addrs = [], []

        async def tb(ctx):
            ctx.set(wb.shift, shift)
            # the control unit's mask: a sign change at bit i >= shift + act_bits means saturation
            ctx.set(wb.overflow_mask, sum(1 << i for i in range(acc_bits - 1) if i >= shift + act_bits))
            ctx.set(wb.relu, int(relu))
            ctx.set(wb.bias_base, 5)
            for i in range(len(acc) + WriteBack.latency(config) + 1):
                ctx.set(wb.valid, int(i < len(acc)))
                ctx.set(wb.row, min(i, len(acc) - 1))
                # the accumulator arrives in W1, the bias (from the pointer banks) bias_latency after W0
                ctx.set(wb.acc_data, int(acc[i - 1]) if 1 <= i <= len(acc) else 0)
                b = i - PointerReader.bias_latency(config)
                ctx.set(wb.bias_data, int(bias[b]) if 0 <= b < len(acc) else 0)
                _, _, en, data, read, addr = await ctx.tick().sample(wb.out_en, wb.out_data, wb.bias_read,
                                                                   wb.bias_addr)
                if en:
                    got.append(data)
                if read:
                    addrs.append(addr)

        simulate(wb, tb)
        assert got == expected.tolist(), f"shift {shift}"
        assert addrs == [5 + i for i in range(len(acc))]           # bias_base + row, in W0


@pytest.mark.parametrize("seed", range(4))
def test_exit_test_margin_of_the_top_two(seed):
    """`passed` says whether the largest value less the second largest,
    among those given since `start` (gaps and ties included), reaches the
    threshold, counting a value given in cycle t from t + 3."""
    rng = np.random.default_rng(seed)
    config = sw.Config(act_bits=4)
    dut = ExitTest(Widths(config))
    runs = [(rng.integers(-8, 8, size=rng.integers(1, 12)), int(rng.integers(0, 17))) for _ in range(12)]
    fails = []

    async def tb(ctx):
        for values, threshold in runs:
            ctx.set(dut.threshold, threshold)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            given = []
            for v in values:
                while rng.random() < 0.3:               # a gap: nothing given
                    ctx.set(dut.valid, 0)
                    await ctx.tick()
                ctx.set(dut.valid, 1)
                ctx.set(dut.value, int(v))
                given.append(int(v))
                await ctx.tick()
                ctx.set(dut.valid, 0)
                await ctx.tick().repeat(2)              # given in t, counted in `passed` from t + 3
                top = sorted(given + [-8, -8])[::-1]    # fewer than two: the lowest value fills in
                if ctx.get(dut.passed) != (top[0] - top[1] >= threshold):
                    fails.append((given, threshold, ctx.get(dut.passed)))

    simulate(dut, tb)
    assert not fails


def test_nonzero_tree_delivers_one_per_cycle():
    config = sw.Config(n_pe=8)
    tree = NonzeroTree(Widths(config))
    offers = {k: [(k + 8 * i, k * 10 + i + 1) for i in range(k % 3 + 1)] for k in range(8)}
    total = sum(len(v) for v in offers.values())
    got = []

    async def tb(ctx):
        queues = {k: list(v) for k, v in offers.items()}
        ctx.set(tree.out.ready, 1)
        for cycle in range(60):
            for k in range(8):
                if queues[k]:
                    ctx.set(tree.ins[k].valid, 1)
                    ctx.set(tree.ins[k].payload.index, queues[k][0][0])
                    ctx.set(tree.ins[k].payload.value, queues[k][0][1])
                else:
                    ctx.set(tree.ins[k].valid, 0)
            sampled = await ctx.tick().sample(*(tree.ins[k].ready for k in range(8)), tree.out.valid,
                                              tree.out.payload)
            readies, valid, payload = sampled[2:10], sampled[10], sampled[11]
            for k in range(8):
                if queues[k] and readies[k]:
                    queues[k].pop(0)
            if valid:
                got.append((cycle, payload.index, payload.value))

    simulate(tree, tb)
    assert sorted((j, a) for _, j, a in got) == sorted(p for v in offers.values() for p in v)
    cycles = [c for c, _, _ in got]
    assert cycles == list(range(cycles[0], cycles[0] + total))    # back to back
    assert got[0][1] == 0                                          # lowest-numbered PE first


def test_host_port_identity_config_and_status():
    config = sw.Config(n_pe=2, weight_depth=64, pointer_depth=16, row_depth=64, max_layers=2)
    dut = hw.Accelerator(config)
    mp = dut.map
    seen = {}

    def wb(ctx, addr, data=None):
        return bus_access(ctx, dut.bus, addr, data)

    async def tb(ctx):
        seen["id"] = await wb(ctx, mp.reg(HostMap.ID))
        seen["status_clearing"] = await wb(ctx, mp.reg(HostMap.STATUS))
        await ctx.tick().repeat(config.row_depth)
        seen["status_idle"] = await wb(ctx, mp.reg(HostMap.STATUS))
        for f in ("n_pe", "weight_depth", "max_layers", "acc_bits"):
            seen[f] = await wb(ctx, mp.config_reg(f))

    simulate(dut, tb)
    assert seen["id"] == hw.hostmap.ID_VALUE
    assert not seen["status_clearing"] & HostMap.STATUS_READY        # zeroing accumulators after reset
    assert seen["status_idle"] & HostMap.STATUS_READY
    assert [seen[f] for f in ("n_pe", "weight_depth", "max_layers", "acc_bits")] == [2, 64, 2, 32]


def test_accelerator_rejects_what_it_cannot_build():
    with pytest.raises(hw.HardwareError, match="acc_bits is 40 bits"):
        hw.Accelerator(sw.Config(acc_bits=40))
    image = sw.pack(sw.CompressedModel([sw.CompressedLayer(np.ones((2, 2), dtype=int), [0, 1])], 0),
                    sw.Config(n_pe=2))
    with pytest.raises(hw.HardwareError, match="another configuration"):
        hw.Accelerator(sw.Config(n_pe=4), image)


def test_export_writes_verilog_and_rtlil(tmp_path):
    from hw.export import main as export_main
    assert export_main(["export", "--n-pe", "2", "--weight-depth", "64", "--pointer-depth", "16",
                        "--row-depth", "8", "--max-layers", "2", "-o", str(tmp_path / "a.v")]) == 0
    verilog = (tmp_path / "a.v").read_text()
    assert "module openeie_top(" in verilog and "bus__adr" in verilog
    assert "$meminit" not in (tmp_path / "a.il").read_text()          # empty memories carry no init
    # with an image, memory contents go into side files the Verilog reads
    config = sw.Config(n_pe=2, weight_depth=64, pointer_depth=16, row_depth=8, max_layers=2)
    image = sw.pack(sw.CompressedModel([sw.CompressedLayer(np.eye(4, dtype=int), [0, 7])], 0), config)
    image.save(tmp_path / "img")
    assert export_main(["export", "--image", str(tmp_path / "img"), "-o", str(tmp_path / "b" / "b.v")]) == 0
    assert "$readmemb" in (tmp_path / "b" / "b.v").read_text()
    assert list((tmp_path / "b").glob("b-*.mem"))
    assert export_main(["export", "--n-pe", "3", "-o", str(tmp_path / "c.v")]) == 2


def _blocks(component, seen=None):
    """`component` and every `hw` component reachable through its attributes,
    one per class."""
    seen = {} if seen is None else seen
    if type(component) not in seen:
        seen[type(component)] = component
        for value in vars(component).values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, wiring.Component) and type(item).__module__.startswith("hw."):
                    _blocks(item, seen)
    return seen


def test_every_block_drives_its_outputs():
    """Converted on its own, no block may leave an output port tied to a
    constant: that is what a signature member of the wrong direction looks
    like (inside the accelerator Amaranth infers directions from use, so the
    mistake would otherwise show only when a block is reused or synthesised
    alone)."""
    config = sw.Config(n_pe=4, weight_depth=256, pointer_depth=64, row_depth=16, max_layers=2)
    texts = {}
    with warnings.catch_warnings():             # the rest of each fresh copy is never elaborated
        warnings.simplefilter("ignore")
        for cls in _blocks(hw.Accelerator(config)):
            block = _blocks(hw.Accelerator(config))[cls]      # fresh: a memory elaborates only once
            texts[cls.__name__] = rtlil.convert(block, name="top")
        del block
        gc.collect()
    assert {"ProcessingElement", "WriteBack", "PointerReader", "ControlUnit", "HostPort"} <= set(texts)
    for name, text in texts.items():
        top = text[text.index("module \\top\n"):]
        outputs = re.findall(r"wire width \d+ output \d+\s+(?:signed\s+)?\\(\S+)", top)
        tied = [o for o in outputs if re.search(rf"^\s*connect \\{re.escape(o)} \d+'[01]+$", top, re.M)]
        assert outputs, f"{name}: no output ports found (has the RTLIL syntax changed?)"
        assert not tied, f"{name}: outputs tied to a constant: {tied}"


@pytest.mark.parametrize("code_bits", [2, 4, 5, 6])
def test_codebook_store_done_and_nearly_done_as_documented(code_bits):
    """`done` is low from the cycle after `start` until `load_cycles` after
    it; `nearly_done` until `nearly_cycles` after it (the control unit starts
    a layer on it, so one cycle early would be a race in the PEs); the
    values leave in order, value i in t + 3 + i."""
    from hw.codebook import CodebookStore
    config = SMALL.replace(code_bits=code_bits, entries_per_word=2)
    n = 1 << code_bits
    values = [0] + [(-1) ** i * i for i in range(1, n)]
    store = CodebookStore(Widths(config), init=values + [0] * (n * (config.max_layers - 1)))
    load, nearly = CodebookStore.load_cycles(config), CodebookStore.nearly_cycles(config)

    async def tb(ctx):
        await ctx.tick().repeat(2)
        ctx.set(store.layer, 0)
        ctx.set(store.start, 1)
        await ctx.tick()
        ctx.set(store.start, 0)
        got = {}
        for k in range(1, load + 4):          # cycle t + k
            if ctx.get(store.load.en):
                got[ctx.get(store.load.addr)] = (k, ctx.get(store.load.data))
            assert ctx.get(store.done) == (k >= load), f"done at t + {k}"
            assert ctx.get(store.nearly_done) == (k >= nearly), f"nearly_done at t + {k}"
            await ctx.tick()
        assert got == {i: (3 + i, values[i]) for i in range(n)}

    simulate(store, tb)


@pytest.mark.parametrize("copies", [False, True])
@pytest.mark.parametrize("n", [1, 5, 16, 40, 64, 300])
def test_select_tree(n, copies):
    """`hw.pipeline.select`: ``values[index]`` `reduce_stages(n)` cycles
    after the values, the index given a cycle earlier (each multiplexer
    registers its own copy); a new pair every cycle. `copies`: the index
    reaches the first-level multiplexers through `index_copies` (set as
    many cycles earlier as its fan-out tree takes, at least one)."""
    from amaranth import Module, Signal
    from amaranth.utils import ceil_log2

    from hw.pipeline import fanout_stages, index_copies, reduce_stages, select, select_nodes
    m = Module()
    values = [Signal(12, name=f"v{i}") for i in range(n)]
    index = Signal(max(ceil_log2(n), 1))
    early = max(1, fanout_stages(select_nodes(n))) if copies else 0
    given = index_copies(m, index, n, early, "copy") if copies else index
    if copies:
        assert len(given) == select_nodes(n)
    out = select(m, values, given, "pick")
    rng = np.random.default_rng(n)
    steps = [(rng.integers(0, 4096, n), int(rng.integers(0, n))) for _ in range(12)]
    seen = []

    async def tb(ctx):
        for cycle in range(len(steps) + reduce_stages(n) + 2 + early):
            if cycle < len(steps):
                ctx.set(index, steps[cycle][1])
            if 1 + early <= cycle <= len(steps) + early:
                for v, x in zip(values, steps[cycle - 1 - early][0]):
                    ctx.set(v, int(x))
            seen.append(ctx.get(out))
            await ctx.tick()

    simulate(m, tb)
    lag = 1 + early + reduce_stages(n)  # values set in cycle t + 1 come out in t + 1 + stages
    assert [seen[t + lag] for t in range(len(steps))] == [int(x[i]) for x, i in steps]


@pytest.mark.parametrize("n", [1, 4, 5, 16, 32, 64, 200])
def test_fanout_and_reduce_trees(n):
    """`hw.pipeline.fanout`: every copy is the value `fanout_stages(n)`
    cycles late; `reduce_and`: the AND of the bits `reduce_stages(n)` cycles late."""
    from amaranth import Module, Signal

    from hw.pipeline import fanout, fanout_stages, reduce_and, reduce_stages
    m = Module()
    value = Signal(8)
    copies = fanout(m, value, n, "f")
    bits = [Signal(name=f"b{i}") for i in range(n)]
    anded = reduce_and(m, bits, "all")
    assert len(copies) == n
    rng = np.random.default_rng(n)
    values = [int(v) for v in rng.integers(0, 256, 10)]
    patterns = [np.ones(n, int) if t % 3 == 0 else (rng.random(n) > 0.05).astype(int) for t in range(10)]
    got, got_and = [], []

    async def tb(ctx):
        for cycle in range(16):
            if cycle < 10:
                ctx.set(value, values[cycle])
                for b, x in zip(bits, patterns[cycle]):
                    ctx.set(b, int(x))
            got.append([ctx.get(c) for c in copies])
            got_and.append(ctx.get(anded))
            await ctx.tick()

    simulate(m, tb)
    f, r = fanout_stages(n), reduce_stages(n)
    assert [got[t + f] for t in range(10)] == [[v] * n for v in values]
    assert got_and[r:r + 10] == [int(p.all()) for p in patterns]


@pytest.mark.parametrize("n", [1, 2, 4, 5, 8, 17, 20, 48, 64, 100, 256])
def test_fanout_decoded(n):
    """`hw.pipeline.fanout_decoded`: PE `k` gets the enables `fanout_stages(n)`
    cycles late when the index is `k`, and 0 otherwise; an index beyond the
    last PE (the index is wider than needed) enables none."""
    from amaranth import Module, Signal
    from amaranth.utils import ceil_log2

    from hw.pipeline import fanout_decoded, fanout_stages
    m = Module()
    enables, index = Signal(2), Signal(ceil_log2(n) + 1)
    out = fanout_decoded(m, enables, index, n, "d")
    assert len(out) == n
    rng = np.random.default_rng(n)
    steps = [(int(rng.integers(0, 4)), int(rng.integers(0, 2 * n))) for _ in range(40)]
    steps += [(3, k) for k in range(n)]          # every PE once
    got = []

    async def tb(ctx):
        for cycle in range(len(steps) + 6):
            if cycle < len(steps):
                ctx.set(enables, steps[cycle][0])
                ctx.set(index, steps[cycle][1])
            got.append([ctx.get(o) for o in out])
            await ctx.tick()

    simulate(m, tb)
    f = fanout_stages(n)
    assert [got[t + f] for t in range(len(steps))] == \
        [[e if k == i else 0 for k in range(n)] for e, i in steps]


@pytest.mark.parametrize("busy", [0, 1])
@pytest.mark.parametrize("memory", ["pe0.entries", "pe1.ptr_odd", "layers", "codebook"])
def test_host_port_drops_memory_writes_while_busy(memory, busy):
    """While the accelerator is busy, a write into any memory never lands
    (and is still acknowledged): a PE memory's address register belongs to
    the datapath then, and the running program reads the layer table and the
    codebook store. While idle it lands, with that memory's strobe only."""
    from hw.hostport import HostPort
    config = sw.Config(n_pe=2, weight_depth=64, pointer_depth=16, row_depth=8, max_layers=2)
    port = HostPort(config)
    addr = HostMap(config).memory(memory, 3)
    strobe_of = {"layers": port.layers_we, "codebook": port.codebook_we}
    strobes = {name: [] for name in ("pe", "layers", "codebook")}
    acks = []

    async def tb(ctx):
        ctx.set(port.status.busy, busy)
        ctx.set(port.bus.cyc, 1)
        ctx.set(port.bus.stb, 1)
        ctx.set(port.bus.we, 1)
        ctx.set(port.bus.adr, addr)
        ctx.set(port.bus.dat_w, 0x5A)
        for _ in range(port.read_latency + 4):
            await ctx.tick()
            for name, strobe in (("pe", port.pe_we), *strobe_of.items()):
                strobes[name].append(ctx.get(strobe))
            acks.append(ctx.get(port.bus.ack))
            if acks[-1]:
                ctx.set(port.bus.cyc, 0)
                ctx.set(port.bus.stb, 0)

    simulate(port, tb)
    assert sum(acks) == 1
    target = memory if memory in strobe_of else "pe"
    assert {name: sum(s) for name, s in strobes.items()} == \
        {name: int(name == target and not busy) for name in strobes}


# n_pe 2, row_depth 4, bank_depth 8: rows = ceil(n_out / 2)
@pytest.mark.parametrize("n_out, bias_base", [(8, 4), (9, 0), (7, 4), (7, 5), (6, 5), (1, 7), (1, 8), (2, 2**31)])
def test_control_checks_a_layers_rows(n_out, bias_base):
    """A descriptor whose rows (``ceil(n_out / n_pe)``) pass `row_depth`, or
    whose biases (two a row, from `bias_base`) pass the pointer banks, ends
    the run in ERROR before it computes; one that fits starts computing (it
    then waits for the input)."""
    config = sw.Config(n_pe=2, weight_depth=64, pointer_depth=16, row_depth=4, max_layers=2)
    rows = -(-n_out // config.n_pe)
    expect_error = rows > config.row_depth or bias_base + rows > config.bank_depth
    dut = hw.Accelerator(config)
    mp = dut.map
    desc = sw.format.Descriptor(n_in=1, n_out=n_out, ptr_base=0, bias_base=bias_base, shift=0, relu=False,
                                last=True)
    seen = {}

    def wb(ctx, addr, data=None):
        return bus_access(ctx, dut.bus, addr, data)

    async def tb(ctx):
        await ctx.tick().repeat(config.row_depth + 2)           # the accumulators are cleared
        for i, word in enumerate(desc.words()):
            await wb(ctx, mp.memory("layers", i), word)
        await wb(ctx, mp.reg(HostMap.CTRL), HostMap.CTRL_START)
        await ctx.tick().repeat(40)
        seen["status"] = await wb(ctx, mp.reg(HostMap.STATUS))

    simulate(dut, tb)
    status = seen["status"]
    assert bool(status & HostMap.STATUS_ERROR) == expect_error, f"status {status:#x}"
    assert bool(status & HostMap.STATUS_BUSY) == (not expect_error), f"status {status:#x}"


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_register_fifo_is_sync_fifo_buffered_cycle_for_cycle(depth):
    """The column FIFO in registers (`hw.register_fifo`) and Amaranth's
    `SyncFIFOBuffered`, driven alike at random as the pointer reader drives
    them (a write whenever a credit is free: one per word, back a cycle
    after the word is read), agree in every output every cycle, and both
    take every write: the cycle model, written for the latter, holds for
    both. (At depth 2 neither takes every write: `Config.column_fifo_depth`
    is at least 3.)"""
    from amaranth import Module
    from amaranth.lib import fifo
    from hw.register_fifo import RegisterFIFO

    m = Module()
    m.submodules.ref = ref = fifo.SyncFIFOBuffered(width=8, depth=depth)
    m.submodules.dut = dut = RegisterFIFO(width=8, depth=depth)
    rng = np.random.default_rng(depth)

    async def bench(ctx):
        reads, credits = 0, depth
        for cycle in range(600):
            busy = cycle % 200 < 100                # phases of a reader that often waits, then one that rarely does
            w_en = int(rng.random() < 0.7 and credits > 0)
            r_en = int(rng.random() < (0.3 if busy else 0.9))
            if w_en:
                assert ctx.get(ref.w_rdy) and ctx.get(dut.w_rdy), cycle
            credits += int(r_en and ctx.get(ref.r_rdy)) - w_en
            for f in (ref, dut):
                ctx.set(f.w_en, w_en)
                ctx.set(f.w_data, cycle & 0xFF)
                ctx.set(f.r_en, r_en)
            for name in ("w_rdy", "r_rdy", "level"):
                assert ctx.get(getattr(dut, name)) == ctx.get(getattr(ref, name)), (cycle, name)
            if ctx.get(ref.r_rdy):
                assert ctx.get(dut.r_data) == ctx.get(ref.r_data), cycle
                reads += r_en
            await ctx.tick()
        assert reads > 150                       # it was exercised, not stuck

    simulate(m, bench)


def test_column_fifo_depth_chooses_registers_when_shallow():
    from amaranth.lib import fifo
    from hw.register_fifo import RegisterFIFO, column_fifo
    with warnings.catch_warnings():             # neither is elaborated
        warnings.simplefilter("ignore")
        assert isinstance(column_fifo(width=5, depth=4), RegisterFIFO)
        assert isinstance(column_fifo(width=5, depth=7), fifo.SyncFIFOBuffered)
        gc.collect()
    with pytest.raises(sw.ConfigError, match="column_fifo_depth"):
        sw.Config(column_fifo_depth=2)

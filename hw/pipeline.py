"""Registered fan-out, reduction and selection trees between the central
blocks and the PEs.

At 64 PEs one net driving every PE, or one AND over every PE, is far too slow
for 100 MHz. Everything that crosses between the centre and the PEs goes
through trees of registers instead, each node driving at most `BRANCH`
others. The latency is a fixed number of cycles for a configuration, the
same for every PE, so timing stays deterministic:

* `fanout_stages(n)` cycles from the centre to every PE (`fanout`: a root
  register beside the source, then the tree);
* `reduce_stages(n)` cycles from every PE to the centre (`reduce_and`,
  `select`).

The copies a tree makes have no reset: a reset lasts `drain_cycles(n)`,
long enough for what the trees hold to drain into parts held in reset. A
reset would put a LUT (``D & ~rst``) in front of each copy, and Yosys
merges identical LUTs: copies meant to sit beside far-apart PEs then shared
one, and its output crossed the ECP5-85F (9.4 to 11.1 ns of routing at 64
PEs).
"""

from __future__ import annotations

from amaranth import *
from amaranth.utils import ceil_log2

__all__ = ["BRANCH", "fanout_stages", "reduce_stages", "fanout", "fanout_decoded", "reduce_and", "select",
           "select_nodes", "index_copies", "delay_line", "drain_cycles", "flat"]

BRANCH = 16         # loads per register in a fan-out tree, inputs per node in a reduction
ROOT_BRANCH = 4     # up to this many PEs, the root register drives them all: no tree


def _levels(n: int, branch: int) -> int:
    return max(1, -(-ceil_log2(max(n, 1)) // ceil_log2(branch)))


def _branch(n: int, levels: int) -> int:
    """The loads per node of a `levels`-level tree over `n` leaves: the
    smallest power of two that reaches them (at most `BRANCH`). The levels
    are what `BRANCH` sets; spreading the leaves evenly over them keeps the
    nodes small: 64 PEs are 8 x 8, not 4 x 16 (a node driving 16 of 64 PEs
    spans a quarter of an ECP5-85F, and set its Fmax at 32 PEs)."""
    return 1 << -(-ceil_log2(max(n, 2)) // levels)


def fanout_stages(n: int) -> int:
    """Register stages from the centre to each of `n` PEs: a root register
    beside the source, then (beyond `ROOT_BRANCH` PEs) a tree."""
    return 1 if n <= ROOT_BRANCH else 1 + _levels(n, BRANCH)


def reduce_stages(n: int) -> int:
    """Register stages from `n` PEs to the centre (at least one)."""
    return _levels(n, BRANCH)


def drain_cycles(n: int, fanout: int | None = None) -> int:
    """Cycles a reset (the domain's, or the host's soft reset) must last for
    whatever the trees between the centre and `n` PEs hold to drain into
    parts held in reset: out (`fanout` stages, `fanout_stages(n)` unless
    given), back (`reduce_stages(n)`), out again, and 2."""
    f = fanout_stages(n) if fanout is None else fanout
    return 2 * f + reduce_stages(n) + 2


def flat(interface) -> Value:
    """Every member of an interface, concatenated in its signature's order
    (the same order on both ends of a connection)."""
    return Cat(*(value for _, _, value in interface.signature.flatten(interface)))


def delay_line(m: Module, value, n: int, name: str, *, data: bool = False) -> list:
    """`value` delayed by 1, 2, ... `n` cycles: the list of the `n` registers.
    `data`: the registers need no (soft) reset, since a valid bit beside
    them says whether they mean anything."""
    value = Value.cast(value)
    out = []
    for i in range(n):
        r = Signal(len(value), name=f"{name}_d{i + 1}", reset_less=data)
        m.d.sync += r.eq(out[-1] if out else value)
        out.append(r)
    return out


def fanout(m: Module, value, n: int, name: str) -> list:
    """`n` copies of `value`, each `fanout_stages(n)` cycles late, from a
    tree of registers in which no register drives more than `BRANCH` others."""
    value = Value.cast(value)
    level = [value]
    stages = fanout_stages(n)
    branch = _branch(n, stages - 1) if stages > 1 else n
    for s in range(stages):
        # the number of copies at this level: one at the root, then enough
        # that the last level has n
        remaining = stages - s - 1
        count = 1 if s == 0 else -(-n // branch ** remaining)
        nxt = []
        for i in range(count):
            # keep: otherwise Yosys merges the copies back into one register
            r = Signal(len(value), name=f"{name}_f{s}_{i}", attrs={"keep": 1}, reset_less=True)
            m.d.sync += r.eq(level[i * len(level) // count])
            nxt.append(r)
        level = nxt
    return level[:n] if len(level) >= n else level * n        # few PEs: the root drives them all


def fanout_decoded(m: Module, enables, index, n: int, name: str) -> list:
    """For each of `n` PEs, ``enables`` if ``index`` is that PE's number,
    else 0: `fanout_stages(n)` cycles late, like `fanout`. The comparison
    is spread over the tree (each level compares its own bits of the
    index against its node's), so every PE gets a registered enable with no
    logic behind it (a compare of the whole index beside each PE, feeding its
    block RAMs' address multiplexers, set the ECP5's Fmax at 64 PEs). An
    index of no PE enables none."""
    enables, index = Value.cast(enables), Value.cast(index)
    stages = fanout_stages(n)
    if stages == 1:
        out = []
        for k in range(n):
            r = Signal(len(enables), name=f"{name}_f0_{k}")
            m.d.sync += r.eq(Mux(index == k, enables, 0))
            out.append(r)
        return out
    branch = _branch(n, stages - 1)
    bits = ceil_log2(branch)
    root_en, root_index = Signal(len(enables), name=f"{name}_f0_0"), Signal(len(index), name=f"{name}_i0_0")
    m.d.sync += [root_en.eq(enables), root_index.eq(index)]
    level = [(root_en, root_index)]
    for s in range(1, stages):
        remaining = stages - s - 1          # levels below this one
        lsb = bits * remaining
        nxt = []
        for i in range(-(-n // branch ** remaining)):
            en, idx = level[i // branch]
            # the first level also checks every bit above its own: no node matches
            # an index beyond the last PE
            field, want = (idx[lsb:], i) if s == 1 else (idx[lsb:lsb + bits], i % branch)
            r = Signal(len(enables), name=f"{name}_f{s}_{i}", attrs={"keep": 1})
            m.d.sync += r.eq(Mux(field == want, en, 0))
            r_idx = None                    # the last level passes no index on
            if lsb:
                r_idx = Signal(lsb, name=f"{name}_i{s}_{i}", attrs={"keep": 1}, reset_less=True)
                m.d.sync += r_idx.eq(idx[:lsb])
            nxt.append((r, r_idx))
        level = nxt
    return [en for en, _ in level]


def reduce_and(m: Module, bits: list, name: str) -> Value:
    """The AND of `bits` (one per PE), `reduce_stages(len(bits))` cycles late."""
    level = [Value.cast(b) for b in bits]
    stages = reduce_stages(len(bits))
    branch = _branch(len(bits), stages)
    for s in range(stages):
        nxt = []
        for i in range(0, len(level), branch):
            r = Signal(name=f"{name}_r{s}_{i // branch}")
            m.d.sync += r.eq(Cat(*level[i:i + branch]).all())
            nxt.append(r)
        level = nxt
    assert len(level) == 1
    return level[0]


def select_nodes(n: int) -> int:
    """The multiplexers at the first level of `select` over `n` values: how
    many copies of the index it takes (`index_copies`)."""
    return -(-max(n, 1) // _branch(n, reduce_stages(n)))


def index_copies(m: Module, index, n: int, delay: int, name: str) -> list:
    """`select_nodes(n)` copies of `index`, each `delay` cycles late: a delay
    line, then a fan-out tree for the last `fanout_stages` of them (one
    register driving the first-level multiplexers of far-apart PEs set the
    ECP5's Fmax at 64 PEs)."""
    copies = select_nodes(n)
    tree = fanout_stages(copies) if copies > 1 else 0
    assert delay >= tree, (delay, tree)
    line = delay_line(m, index, delay - tree, f"{name}_d")
    early = line[-1] if line else Value.cast(index)
    return fanout(m, early, copies, f"{name}_t") if tree else [early]


def select(m: Module, values: list, index, name: str) -> Value:
    """``values[index]``, through registered `BRANCH`-way multiplexers:
    `reduce_stages(len(values))` cycles after the values. The index is
    given a cycle earlier than the values: every multiplexer registers its
    own copy of it (one register driving the selects of multiplexers placed
    by far-apart PEs set the ECP5's Fmax at 32 PEs). `index` may be a list,
    one copy for each first-level multiplexer (`index_copies`)."""
    width = len(Value.cast(values[0]))
    level = [Value.cast(v) for v in values]
    # the index: the copies given for the first level's nodes, then a copy
    # beside each node of the level before
    copies = list(index) if isinstance(index, (list, tuple)) else [Value.cast(index)]
    stages = reduce_stages(len(values))
    branch = _branch(len(values), stages)
    bits = ceil_log2(branch)
    for s in range(stages):
        lsb = s * bits
        nxt, nxt_copies = [], []
        for i in range(0, len(level), branch):
            node = i // branch
            source = copies[min(node if s == 0 else i, len(copies) - 1)]
            # keep: otherwise Yosys merges the copies back into one register
            own = Signal(len(source), name=f"{name}_i{s}_{node}", reset_less=True,
                         attrs={"keep": 1} if len(level) > branch else {})
            m.d.sync += own.eq(source)
            sel = own[lsb:lsb + bits] if lsb < len(own) else C(0, 1)
            group = level[i:i + branch]
            r = Signal(width, name=f"{name}_s{s}_{node}")
            m.d.sync += r.eq(Array(group)[sel] if len(group) > 1 else group[0])
            nxt.append(r)
            nxt_copies.append(own)
        level, copies = nxt, nxt_copies
    assert len(level) == 1
    return level[0]

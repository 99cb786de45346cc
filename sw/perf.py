"""An exact cycle model of the RTL: `simulate(image, x)` predicts every
counter `sim.run` reads (docs/design.md §7 and §8) from the packed image and
the inputs, without simulating the design.

Each block of the hardware has a fixed timing (the docstrings of `hw/`); the
model follows an activation through it as a chain of ``max`` recurrences,
one activation at a time, all PEs at once (numpy over PEs):

* broadcast: activation ``i`` is loaded in cycle ``L_i`` (when its source
  offers it and the broadcast register is free) and pushed in the first
  cycle ``B_i > L_i`` in which no queue was almost full ``reduce + 1``
  cycles earlier;
* queue: written in ``W_i = B_i + fanout``; read into the output register
  in ``max(W_i + 1, Rd_{i-1})``; taken by the pointer reader in ``Rd_i``,
  the first cycle after that with a column credit free (seven credits, one
  per column-FIFO entry, back four cycles after an empty column is taken,
  or when a nonempty one leaves the FIFO);
* matrix reader: a nonempty column leaves the FIFO in ``M = max(Rd + 6,
  end of the previous column)`` and issues its ``n`` entries in ``M + 1 ..
  M + n``; the arithmetic unit's last stage is six cycles after an issue.

A queue's level in cycle ``t`` is the number of activations written before
``t`` less those taken before ``t``, so "no queue almost full" only needs,
per activation, the latest take over all PEs. Later layers' sources (the
per-PE scanners and the nonzero tree, whose arbitration decides the order of
the broadcast) are stepped cycle by cycle, the PEs still per activation.
The tests compare this model with the RTL on random images and require zero
difference on every counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .golden import check_input
from .image import Image
from . import metrics

__all__ = ["simulate", "PerfReport", "Timing"]

# latencies that follow from the blocks' structure (their docstrings give them)
QUEUE_TO_TAKE = 2          # queue write -> earliest take (lib.fifo.SyncFIFOBuffered: memory, then a register)
TAKE_TO_FIFO_READ = 6      # take -> earliest column-FIFO read (P0 .. P4, then the buffered FIFO)
EMPTY_CREDIT_BACK = 4      # take of an empty column -> its credit returns (dropped at P4)
ISSUE_TO_LAST_STAGE = 6    # issue -> the arithmetic unit's S4
NEVER = -(1 << 40)


@dataclass(frozen=True)
class Timing:
    """The configuration's fixed numbers, taken from the hardware's own
    classes (`hw.pipeline`, `hw.accelerator`, `hw.control`, ...)."""
    fanout: int
    reduce: int
    threshold: int       # a queue is almost full at this level
    room_delay: int
    credits: int         # column-FIFO entries
    drain: int           # write-back cycles after the last row
    desc: int            # DESC cycles when the codebook is ready
    codebook_load: int   # codebook store: start -> done
    output_latency: int

    @classmethod
    def of(cls, config) -> "Timing":
        from hw.accelerator import ROOM_DELAY, queue_slack
        from hw.control import LayerTable
        from hw.pipeline import fanout_stages, reduce_stages
        from hw.pointer_reader import PointerReader
        from hw.writeback import WriteBack
        f, r = fanout_stages(config.n_pe), reduce_stages(config.n_pe)
        return cls(fanout=f, reduce=r, threshold=config.fifo_depth - queue_slack(config), room_delay=ROOM_DELAY,
                   credits=PointerReader.COLUMN_FIFO_DEPTH, drain=WriteBack.LATENCY + f,
                   desc=LayerTable.LATENCY + 3, codebook_load=config.n_codes + 3,
                   output_latency=f + 1 + r)     # OutputStage.latency


@dataclass
class PerfReport:
    """The timing fields of `sim.SimResult`, with the same shapes and
    meanings: per input ``b``, layer ``l``, PE ``k``."""
    cycles: np.ndarray            # (B,) start to done
    layer_cycles: np.ndarray      # (B, L) T_measured
    stall_cycles: np.ndarray      # (B, L) broadcast stalls
    pe_busy: np.ndarray           # (B, L, K) issue cycles (= work)
    ideal_cycles: np.ndarray      # (B, L)
    efficiency: np.ndarray        # (B, L)
    extra: dict = field(default_factory=dict)


class _PEs:
    """Every PE's pipeline state between activations (numpy over PEs)."""

    def __init__(self, n_pe: int, credits: int):
        self.credits_n = credits
        self.rd = np.full(n_pe, NEVER, dtype=np.int64)            # the last take
        self.credits = np.full((n_pe, self.credits_n), NEVER, dtype=np.int64)   # credit i back after cycle
        self.col_end = np.full(n_pe, NEVER, dtype=np.int64)       # the last issue so far
        self.last_busy = np.full(n_pe, NEVER, dtype=np.int64)
        self.busy = np.zeros(n_pe, dtype=np.int64)
        self._rows = np.arange(n_pe)

    def push(self, w: int, counts: np.ndarray) -> int:
        """An activation written into every queue in cycle `w`, its column
        holding `counts[k]` entries in PE ``k``; returns the latest take."""
        ir = np.maximum(w + 1, self.rd)                           # into the queue's output register
        t0 = ir + 1
        held = self.credits.min(axis=1)
        full = (self.credits >= t0[:, None]).all(axis=1)          # all seven credits out in t0
        rd = np.where(full, held + 1, t0)       # the first credit back
        nonempty = counts > 0
        fifo_read = np.maximum(rd + TAKE_TO_FIFO_READ, self.col_end)
        back = np.where(nonempty, fifo_read, rd + EMPTY_CREDIT_BACK)
        self.credits[self._rows, self.credits.argmin(axis=1)] = back
        end = fifo_read + counts
        self.col_end = np.where(nonempty, end, self.col_end)
        self.last_busy = np.maximum(self.last_busy, np.where(nonempty, end + ISSUE_TO_LAST_STAGE,
                                                              rd + EMPTY_CREDIT_BACK))
        self.busy += counts
        self.rd = rd
        return int(rd.max())


class _Broadcast:
    """The broadcast register's flow control: a push in cycle ``t`` needs
    every queue below its threshold in ``t - reduce - ROOM_DELAY``."""

    def __init__(self, t: Timing, n_pe: int):
        self.t = t
        self.pes = _PEs(n_pe, t.credits)
        self.max_rd = []           # per activation, the latest take over PEs
        self.writes = []           # per activation, its queue write cycle
        self.seen = 0              # writes before the last tau asked about
        self.first = None          # the first push
        self.last = None           # the last push

    def ok(self, b: int) -> bool:
        """No queue was almost full as seen in cycle `b` (ask with `b` non-decreasing)."""
        tau = b - self.t.reduce - self.t.room_delay
        while self.seen < len(self.writes) and self.writes[self.seen] < tau:
            self.seen += 1
        over = self.seen - self.t.threshold
        return over < 0 or self.max_rd[over] < tau

    def push(self, b: int, counts: np.ndarray):
        """Push in cycle `b` an activation whose column holds `counts[k]` entries in PE ``k``."""
        if self.first is None:
            self.first = b
        self.last = b
        w = b + self.t.fanout
        self.writes.append(w)
        self.max_rd.append(self.pes.push(w, counts))

    def settled(self, cycle: int) -> bool:
        """The control unit trusts the PEs' status: ``fanout + reduce`` cycles
        after the last push (or after the layer's start)."""
        return cycle >= (self.last + 1 if self.last is not None else 0) + self.t.fanout + self.t.reduce

    def idle_seen(self) -> int:
        """The first cycle the control unit sees every PE idle."""
        return max(int(self.pes.last_busy.max()) + self.t.reduce + 1, 0)


def _first_layer(t: Timing, counts: np.ndarray, a: np.ndarray, n_pe: int):
    """Layer 0: the input stream offers one value per cycle from the first
    COMPUTE cycle (cycle 0); zeros pass one per cycle, a nonzero waits for the
    broadcast register. Returns the broadcast state, the exit cycle and the
    stall cycles."""
    bc = _Broadcast(t, n_pe)
    b_prev = NEVER
    cursor = pos = stalls = 0      # the input stage reaches position `pos` in cycle `cursor`
    for p in np.flatnonzero(a).tolist():
        cursor += p - pos
        load = max(cursor, b_prev)
        b = load + 1
        while not bc.ok(b):
            b += 1
        stalls += b - load - 1
        bc.push(b, counts[:, p])
        b_prev, cursor, pos = b, load + 1, p + 1
    cursor += len(a) - pos         # the stage has taken all n_in values
    exit_ = cursor
    while not (bc.settled(exit_) and exit_ > b_prev):
        exit_ += 1
    return bc, max(exit_, bc.idle_seen()), stalls


class _Tree:
    """`hw.broadcast.NonzeroTree`: `ArbiterNode`s of fan-in 4, each with an
    output register and a skid register, the lowest-numbered input first."""

    FAN_IN = 4

    def __init__(self, n: int):
        self.levels = []           # per level, per node: its inputs' indices in the level below
        width, depth = n, 0
        while width > 1 or depth == 0:
            groups = [list(range(i, min(i + self.FAN_IN, width))) for i in range(0, width, self.FAN_IN)]
            self.levels.append(groups)
            width, depth = len(groups), depth + 1
        self.out_valid = [[False] * len(lv) for lv in self.levels]
        self.out = [[0] * len(lv) for lv in self.levels]
        self.skid_valid = [[False] * len(lv) for lv in self.levels]
        self.skid = [[0] * len(lv) for lv in self.levels]

    def idle(self) -> bool:
        return not any(any(v) for v in self.out_valid)

    def step(self, leaf_valid: list, leaf_payload: list, root_ready: bool) -> list:
        """One cycle; returns which leaves were taken."""
        takes = []                                  # per level, per node: the input taken or None
        valid = leaf_valid
        for d, groups in enumerate(self.levels):
            lv = []
            for n, inputs in enumerate(groups):
                taken = None
                if not self.skid_valid[d][n]:
                    for i in inputs:
                        if valid[i]:
                            taken = i
                            break
                lv.append(taken)
            takes.append(lv)
            valid = self.out_valid[d]
        leaf_taken = [False] * len(leaf_valid)
        for i in takes[0]:
            if i is not None:
                leaf_taken[i] = True
        for d in reversed(range(len(self.levels))):         # the root first: it reads its inputs' old registers
            groups = self.levels[d]
            below = leaf_payload if d == 0 else self.out[d - 1]
            if d + 1 < len(self.levels):
                ready = [False] * len(groups)
                for i in takes[d + 1]:
                    if i is not None:
                        ready[i] = True
            else:
                ready = [root_ready]
            ov, o, sv, s = self.out_valid[d], self.out[d], self.skid_valid[d], self.skid[d]
            for n in range(len(groups)):
                taken = takes[d][n]
                if not ov[n] or ready[n]:
                    if sv[n]:
                        o[n], sv[n] = s[n], False
                    elif taken is not None:
                        ov[n], o[n] = True, below[taken]
                    else:
                        ov[n] = False
                elif taken is not None:
                    s[n], sv[n] = below[taken], True
        return leaf_taken


def _later_layer(t: Timing, counts: np.ndarray, a: np.ndarray, n_pe: int):
    """A layer fed from the PEs' activation buffers: per PE a scanner (row
    ``r`` holds element ``r * n_pe + k``), the nonzero tree, the broadcast,
    stepped cycle by cycle from the first COMPUTE cycle (cycle 0); the PEs
    see the scan's start `fanout` cycles later."""
    n_in = len(a)
    rows = -(-n_in // n_pe)
    vals = np.zeros((n_pe, rows + 1), dtype=np.int64)
    padded = np.zeros(rows * n_pe, dtype=np.int64)
    padded[:n_in] = a
    vals[:, :rows] = padded.reshape(rows, n_pe).T
    last_row = np.array([(n_in - 1 - k) // n_pe if k < n_in else 0 for k in range(n_pe)])
    ks = np.arange(n_pe)
    scanning = ks < n_in
    row = np.zeros(n_pe, dtype=np.int64)
    r1_valid = np.zeros(n_pe, dtype=bool)
    r1_row = np.zeros(n_pe, dtype=np.int64)
    out_valid = np.zeros(n_pe, dtype=bool)
    out_j = np.zeros(n_pe, dtype=np.int64)
    tree = _Tree(n_pe)
    bc = _Broadcast(t, n_pe)
    bc_valid, bc_j = False, 0
    stalls = 0
    done_at = []           # per cycle, every PE's scan_done (stale, high, before the PEs see the start)
    cycle = 0
    while True:
        if cycle >= t.fanout:
            data = vals[ks, r1_row]
            nonzero = r1_valid & (data != 0)
            taken = r1_valid & ((data == 0) | ~out_valid)
            advance = ~r1_valid | taken
            load_out = nonzero & ~out_valid
            done_at.append(bool((~scanning & ~r1_valid & ~out_valid).all()))
        else:
            done_at.append(True)
        ok = bc.ok(cycle)
        push = bc_valid and ok
        if bc_valid and not ok:
            stalls += 1
        # the control unit's exit test (registers of this cycle)
        seen_done = done_at[cycle - t.reduce] if cycle >= t.reduce else True
        if (seen_done and tree.idle() and not bc_valid and bc.settled(cycle)
                and cycle >= bc.idle_seen()):
            return bc, cycle, stalls
        load = not bc_valid or push
        root_valid, root_j = tree.out_valid[-1][0], tree.out[-1][0]
        if push:
            bc.push(cycle, counts[:, bc_j])
        if load:
            bc_valid, bc_j = root_valid, root_j
        if cycle >= t.fanout:
            leaf_taken = np.array(tree.step(out_valid.tolist(), out_j.tolist(), load), dtype=bool)
            out_j = np.where(load_out, r1_row * n_pe + ks, out_j)
            out_valid = np.where(load_out, True, out_valid & ~leaf_taken)
            r1_valid = np.where(advance, scanning, r1_valid)
            r1_row = np.where(advance, row, r1_row)
            step = advance & scanning
            scanning = np.where(step, row != last_row, scanning)
            row = np.where(step, row + 1, row)
        else:
            tree.step([False] * n_pe, [0] * n_pe, load)
        cycle += 1


def simulate(image: Image, x) -> PerfReport:
    """The RTL's cycles for inputs `x` (``(n_in,)`` or ``(B, n_in)``),
    exactly as `sim.run` measures them: per vector the cycles from start to
    done, per layer ``T_measured`` and the broadcast's stalls, per PE its
    busy cycles. `cycles` assumes what `sim.run` does: the input stream
    offers a value in every cycle and the output stream is always ready,
    and layer 0's codebook is in the PEs when the run starts."""
    x = check_input(image, x)
    c = image.config
    t = Timing.of(c)
    inputs = metrics.layer_inputs(image, x)
    B, L = x.shape[0], len(image.layers)
    cycles = np.zeros(B, dtype=np.int64)
    layer_cycles = np.zeros((B, L), dtype=np.int64)
    stall_cycles = np.zeros((B, L), dtype=np.int64)
    pe_busy = np.zeros((B, L, c.n_pe), dtype=np.int64)
    for b in range(B):
        total, codebook_ready = 0, 0        # the codebook of the next layer is ready this many cycles into it
        for l, layer in enumerate(image.layers):
            run = _first_layer if l == 0 else _later_layer
            bc, exit_, stalls = run(t, layer.column_counts, inputs[l][b], c.n_pe)
            tail = layer.rows + t.drain                 # write-back rows, then the drain
            desc = max(t.desc, codebook_ready)
            if bc.first is not None:
                layer_cycles[b, l] = exit_ - bc.first + 1 + tail
                total += desc + bc.first + layer_cycles[b, l]
            else:                                       # counted from the first write-back cycle
                layer_cycles[b, l] = tail
                total += desc + exit_ + 1 + tail
            # the next codebook loads from the first write-back row: ready
            # codebook_load cycles later, counted from the next DESC's start
            codebook_ready = t.codebook_load - tail + 1
            stall_cycles[b, l] = stalls
            pe_busy[b, l] = bc.pes.busy
        cycles[b] = total + image.n_out + t.output_latency + 2
    work = metrics.work(image, x)
    ideal = metrics.ideal_cycles(work, c.n_pe)
    return PerfReport(cycles, layer_cycles, stall_cycles, pe_busy, ideal, metrics.efficiency(ideal, layer_cycles))

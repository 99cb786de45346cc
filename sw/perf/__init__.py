"""An exact cycle model of the RTL: `simulate(image, x)` predicts every
counter `sim.run` reads (docs/design.md §7 and §8) from the packed image and
the inputs, without simulating the design.

Each block of the hardware has a fixed timing (the docstrings of `hw/`); the
model follows an activation through it as a chain of ``max`` recurrences,
one activation at a time, PE by PE (loops in `sw.perf.kernels` that numba
compiles):

* broadcast: activation ``i`` is loaded in cycle ``L_i`` (when its source
  offers it and the broadcast register is free) and pushed in the first
  cycle ``B_i > L_i`` in which no queue was almost full ``reduce + 1``
  cycles earlier;
* queue: written in ``W_i = B_i + fanout``; read into the output register
  in ``max(W_i + 1, Rd_{i-1})``; taken by the pointer reader in ``Rd_i``,
  the first cycle after that with a column credit free (seven credits per
  lane, one per column-FIFO entry, back four cycles after an empty column
  is taken, or when a nonempty one leaves the FIFO); with
  ``broadcast_width`` 2, activation ``i`` goes to queue ``i % 2``, whose
  previous activation is ``i - 2``, and a PE takes up to two a cycle, in
  order;
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

from ..golden import check_input, exits_taken, run_layers
from ..image import Image
from .. import metrics
from . import kernels
from .kernels import NEVER

__all__ = ["simulate", "PerfReport", "Timing"]


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
    settle: int          # COMPUTE ends no earlier than this after the last push or the scan's start
    desc: int            # DESC cycles when the descriptor and the codebook are ready
    output_latency: int
    input_width: int
    lanes: int           # activations the broadcast sends a cycle (broadcast_width)
    wb_latency: int      # write-back: a row's cycle to its write (WriteBack.latency)
    table_latency: int   # a descriptor read ahead: ready this many cycles after the write-back starts
    codebook_nearly: int     # a codebook load: the next layer may start this many cycles after it starts
    exit_heads: bool     # the exit test is built (and with it the write-back's spacing)
    # a PE's latencies, as `kernels` indexes them: take -> column-FIFO read, an empty column's take ->
    # its credit back, issue -> the arithmetic unit's last stage (`ProcessingElement.latencies`)
    pe: tuple
    tree_fan_in: int     # the nonzero trees' inputs per node (NonzeroTree.FAN_IN)
    test_extra: int = 0  # an exit test: n_out + output_latency + this (ControlUnit.test_cycles)

    def exit_test(self, n_out: int) -> int:
        """Cycles an exit test adds after its head's write-back."""
        return n_out + self.output_latency + self.test_extra

    @classmethod
    def of(cls, config) -> "Timing":
        from hw.accelerator import ROOM_DELAY, queue_slack
        from hw.broadcast import NonzeroTree
        from hw.codebook import CodebookStore
        from hw.control import ControlUnit, LayerTable
        from hw.output_stage import OutputStage
        from hw.pe import ProcessingElement
        from hw.pipeline import fanout_stages, reduce_stages
        from hw.pointer_reader import PointerReader
        from hw.writeback import WriteBack
        f, r = fanout_stages(config.n_pe), reduce_stages(config.n_pe)
        return cls(fanout=f, reduce=r, threshold=config.fifo_depth - queue_slack(config), room_delay=ROOM_DELAY,
                   credits=PointerReader.credits_for(config), drain=ControlUnit.drain_cycles(config, f),
                   settle=ControlUnit.settle_cycles(f, r),
                   desc=ControlUnit.DESC_CYCLES,
                   output_latency=OutputStage.latency_for(config.n_pe, f),
                   input_width=config.input_width, lanes=config.broadcast_width,
                   test_extra=ControlUnit.TEST_EXTRA, wb_latency=WriteBack.latency(config),
                   table_latency=LayerTable.LATENCY, codebook_nearly=CodebookStore.nearly_cycles(config),
                   exit_heads=bool(config.exit_heads), pe=ProcessingElement.latencies(config),
                   tree_fan_in=NonzeroTree.FAN_IN)


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


def run_layer(t: Timing, counts_by_column: np.ndarray, a: np.ndarray, n_pe: int, first_layer: bool):
    """One layer for one input vector: (first push or None, exit cycle, stalls, busy per PE)."""
    rd = np.full(n_pe, NEVER, dtype=np.int64)
    rd2 = np.full(n_pe, NEVER, dtype=np.int64)
    cred = np.full((n_pe, t.credits), NEVER, dtype=np.int64)
    col_end = np.full(n_pe, NEVER, dtype=np.int64)
    last_busy = np.full(n_pe, NEVER, dtype=np.int64)
    busy = np.zeros(n_pe, dtype=np.int64)
    n_items = int(np.count_nonzero(a))
    writes = np.zeros(max(n_items, 1), dtype=np.int64)
    max_rd = np.zeros(max(n_items, 1), dtype=np.int64)
    state = (np.array(t.pe, dtype=np.int64), rd, rd2, cred, col_end, last_busy, busy, writes, max_rd)
    if first_layer:
        first, exit_, stalls = kernels.first_layer(a.astype(np.int64), t.input_width, t.lanes, counts_by_column,
                                                   t.fanout, t.reduce, t.settle, t.room_delay, t.threshold, *state)
    else:
        first, exit_, stalls = kernels.later_layer(a.astype(np.int64), n_pe, t.lanes, counts_by_column, t.fanout,
                                                   t.reduce, t.settle, t.room_delay, t.threshold, t.tree_fan_in,
                                                   *state)
    return (None if first == NEVER else int(first)), int(exit_), int(stalls), busy


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
    ys = run_layers(image, x)
    inputs = metrics.layer_inputs(image, x, ys)
    taken = exits_taken(image, ys)
    exit_number = {l: k for k, l in enumerate(image.exits, start=1)}
    B, L = x.shape[0], len(image.layers)
    cycles = np.zeros(B, dtype=np.int64)
    layer_cycles = np.zeros((B, L), dtype=np.int64)
    stall_cycles = np.zeros((B, L), dtype=np.int64)
    pe_busy = np.zeros((B, L, c.n_pe), dtype=np.int64)
    by_column = [np.ascontiguousarray(layer.column_counts.T, dtype=np.int64) for layer in image.layers]
    for b in range(B):
        # absolute cycles from the first DESC cycle: `entry` a layer's DESC
        # entry, `wb` the last write-back's first row (the next layer's codebook
        # starts loading there), `ready` when the next descriptor, read ahead,
        # is ready
        entry, wb, wb_rows, ready = 0, None, 0, 0
        n_out = image.n_out
        for l, layer in enumerate(image.layers):
            first, exit_, stalls, busy = run_layer(t, by_column[l], inputs[l][b], c.n_pe, l == 0)
            start = max(entry + t.desc - 1, ready)      # DESC's last cycle: the layer starts
            if wb is not None:
                start = max(start, wb + t.codebook_nearly)
            compute = start + 1
            # the write-back starts when the PEs are done, and not before the last one's rows are written
            new_wb = compute + exit_ + 1
            if wb is not None and t.exit_heads:
                new_wb = max(new_wb, wb + wb_rows + t.wb_latency)
            wb, wb_rows = new_wb, layer.rows
            tail = layer.rows + t.drain                 # write-back rows, then the drain
            layer_cycles[b, l] = tail + (wb - (compute + first) if first is not None else 0)
            stall_cycles[b, l] = stalls
            pe_busy[b, l] = busy
            if l == L - 1 or l in exit_number:
                entry = wb + tail
            else:                   # the next layer's descriptor is read from the cycle before the write-back
                entry, ready = wb + layer.rows, wb + t.table_latency
            if l in exit_number:            # the exit test reads the head's outputs, then decides
                entry += t.exit_test(layer.n_out)
                if taken[b] == exit_number[l]:
                    n_out = layer.n_out
                    break
                ready = entry + t.table_latency         # read from DECIDE
        cycles[b] = entry + n_out + t.output_latency + 2
    work = metrics.work(image, x, inputs, exits=taken)
    ideal = metrics.ideal_cycles(work, c.n_pe)
    return PerfReport(cycles, layer_cycles, stall_cycles, pe_busy, ideal, metrics.efficiency(ideal, layer_cycles))

"""The cycle model's inner loops (`sw.perf`), written as plain Python loops
over arrays so that numba compiles them (about 100 times faster than numpy
per activation); without numba they run as they are."""

import numpy as np

# a PE's latencies (`sw.perf.Timing.pe`, from the hardware's blocks), in this order
TAKE_TO_FIFO_READ = 0      # take -> earliest column-FIFO read (P0 .. P4, then the buffered FIFO)
EMPTY_CREDIT_BACK = 1      # take of an empty column -> its credit returns (dropped at P4)
ISSUE_TO_LAST_STAGE = 2    # issue -> the arithmetic unit's S4
NEVER = -(1 << 40)


try:                        # the kernels below are plain Python; numba compiles them when it is there
    from numba import njit as _njit

    def _kernel(f):
        return _njit(cache=True, nogil=True)(f)
except ImportError:         # pragma: no cover - numba is a dependency; this keeps the model usable without it
    def _kernel(f):
        return f


@_kernel
def push(w, counts, lanes, rd, rd2, cred, col_end, last_busy, busy, lat):
    """An activation written into every queue in cycle `w`, its column holding
    `counts[k]` entries in PE ``k``: each PE's take, column-FIFO read and
    issue cycles. `rd` and `rd2` hold each PE's takes of the previous two
    activations, `cred[k]` the cycles after which each of PE ``k``'s column
    credits comes back. With one lane a PE takes an activation a cycle; with
    two (``broadcast_width`` 2) activations alternate between two queues and
    a PE takes up to two a cycle, in order. `lat`: the PE's latencies, indexed
    by `TAKE_TO_FIFO_READ` and the like. Returns the latest take."""
    latest = NEVER
    for k in range(rd.shape[0]):
        if lanes == 1:
            t0 = max(w + 1, rd[k]) + 1      # in the queue's output register, then taken
        else:                               # its queue's previous activation is two back
            t0 = max(max(w + 1, rd2[k]) + 1, rd[k] + 1 if rd[k] == rd2[k] else rd[k])
        low, slot, full = cred[k, 0], 0, True
        for s in range(cred.shape[1]):
            v = cred[k, s]
            if v < t0:
                full = False                # a credit is free in t0
            if v < low:
                low, slot = v, s
        take = low + 1 if full else t0      # every credit out: the first one back
        n = counts[k]
        if n > 0:
            read = max(take + lat[TAKE_TO_FIFO_READ], col_end[k])
            cred[k, slot] = read
            col_end[k] = read + n
            end = read + n + lat[ISSUE_TO_LAST_STAGE]
        else:
            cred[k, slot] = take + lat[EMPTY_CREDIT_BACK]
            end = take + lat[EMPTY_CREDIT_BACK]
        if end > last_busy[k]:
            last_busy[k] = end
        busy[k] += n
        rd2[k] = rd[k]
        rd[k] = take
        if take > latest:
            latest = take
    return latest


@_kernel
def room(b, reduce, room_delay, threshold, lanes, writes, max_rd, n_items, seen):
    """Whether no queue was almost full as the broadcast sees it in cycle
    `b` (activation ``i`` went to queue ``i % lanes`` of every PE), updating
    `seen[q]`, the count of queue ``q``'s writes before that (ask with `b`
    non-decreasing)."""
    tau = b - reduce - room_delay
    ok = True
    for q in range(lanes):
        while q + lanes * seen[q] < n_items and writes[q + lanes * seen[q]] < tau:
            seen[q] += 1
        over = seen[q] - threshold
        if over >= 0 and max_rd[q + lanes * over] >= tau:
            ok = False
    return ok


@_kernel
def first_layer(a, width, lanes, counts, fanout, reduce, settle, room_delay, threshold, lat, rd, rd2, cred, col_end,
                last_busy, busy, writes, max_rd):
    """Layer 0 (`hw.broadcast.InputStage`): the input stream offers a beat of
    `width` values in every cycle from the first COMPUTE cycle (cycle 0); a
    beat taken in cycle ``t`` offers its nonzeros from ``t + 1``, `lanes` a
    cycle as the broadcast register takes them, and the next beat is taken as
    the last leave (the cycle after, for an all-zero beat). Returns (first
    push or NEVER, exit cycle, stalls)."""
    n_in = a.shape[0]
    b_prev, stalls, first, n_items = NEVER, 0, NEVER, 0
    seen = np.zeros(lanes, dtype=np.int64)
    take, done = 0, 0                       # the cycle the stage takes the beat; the cycle it is done
    group = np.zeros(lanes, dtype=np.int64)
    for base in range(0, n_in, width):
        offer, last_load = take + 1, NEVER
        j = base
        end = min(base + width, n_in)
        while True:
            g = 0                           # the next `lanes` nonzeros of the beat
            while j < end and g < lanes:
                if a[j] != 0:
                    group[g] = j
                    g += 1
                j += 1
            if g == 0:
                break
            load = max(offer, b_prev)       # the broadcast register is free
            b = load + 1
            while not room(b, reduce, room_delay, threshold, lanes, writes, max_rd, n_items, seen):
                b += 1
            stalls += b - load - 1
            if first == NEVER:
                first = b
            for i in range(g):
                writes[n_items] = b + fanout
                max_rd[n_items] = push(b + fanout, counts[group[i]], lanes, rd, rd2, cred, col_end, last_busy,
                                       busy, lat)
                n_items += 1
            b_prev, offer, last_load = b, load + 1, load
        if last_load == NEVER:
            take = take + 1                 # an all-zero beat
            done = take
        else:
            take = last_load                # the next beat comes in as the last nonzeros leave
            done = last_load + 1
    # the control unit registers `quiet` (input done, broadcast register empty)
    exit_ = max(done + 1, b_prev + 1 + settle if first != NEVER else settle)
    return first, max(exit_, last_busy.max() + reduce + 1), stalls


@_kernel
def tree_shape(n, fan_in):
    """`hw.broadcast.NonzeroTree`'s nodes, level by level: per node the range
    of its inputs in the level below (level 0's inputs are the PEs).
    Returns (first node of each level, input ranges)."""
    starts, lo, hi = [0], [0], [0]
    lo.pop()
    hi.pop()
    width, depth = n, 0
    while width > 1 or depth == 0:
        count = 0
        for i in range(0, width, fan_in):
            lo.append(i)
            hi.append(min(i + fan_in, width))
            count += 1
        starts.append(starts[-1] + count)
        width, depth = count, depth + 1
    return np.array(starts), np.array(lo), np.array(hi)


@_kernel
def tree_step(starts, lo, hi, ov, out, hv, held, leaf_valid, leaf_payload, root_ready, free, leaf_taken, fan_in):
    """One cycle of the tree (`hw.broadcast.ArbiterNode`): an input whose
    holding register (``hv``, ``held``: `fan_in` slots per node) is
    empty hands its pair over; a node's output register, when free (read by
    the node above, or by the broadcast for the root), takes its
    lowest-numbered input that has a pair (held, else handed over now); a
    pair handed over and not taken is held. `leaf_taken[k]` says whether
    PE ``k``'s pair was handed over. `free` is scratch, one per node."""
    levels = starts.shape[0] - 1
    for d in range(levels):                 # every node's `free`, from this cycle's registers
        for node in range(starts[d], starts[d + 1]):
            if d + 1 < levels:
                pos = node - starts[d]
                ready = not hv[(starts[d + 1] + pos // fan_in) * fan_in + pos % fan_in]
            else:
                ready = root_ready
            free[node] = not ov[node] or ready
    for k in range(leaf_taken.shape[0]):
        leaf_taken[k] = False
    for d in range(levels - 1, -1, -1):     # the root first: it reads its inputs' old registers
        for node in range(starts[d], starts[d + 1]):
            picked = False
            value = 0
            for i in range(lo[node], hi[node]):
                slot = node * fan_in + i - lo[node]
                if d == 0:
                    valid, payload = leaf_valid[i], leaf_payload[i]
                else:
                    valid, payload = ov[starts[d - 1] + i], out[starts[d - 1] + i]
                arriving = valid and not hv[slot]
                if d == 0 and arriving:
                    leaf_taken[i] = True
                if not picked and (hv[slot] or valid):
                    picked = True
                    value = held[slot] if hv[slot] else payload
                    if free[node]:
                        hv[slot] = False    # it leaves, held or straight through
                        continue
                if arriving:
                    hv[slot], held[slot] = True, payload
            if free[node]:
                ov[node] = picked
                if picked:
                    out[node] = value


@_kernel
def later_layer(a, n_pe, lanes, counts, fanout, reduce, settle, room_delay, threshold, fan_in, lat, rd, rd2, cred,
                col_end, last_busy, busy, writes, max_rd):
    """A layer fed from the PEs' activation buffers (`hw.activation_buffer`:
    row ``r`` of PE ``k`` holds element ``r * n_pe + k``; a scanner per PE
    reads a row per cycle and offers each nonzero through a one-pair
    register), merged by the nonzero trees into the broadcast (one tree per
    lane, ``min(lanes, n_pe)`` of them: PE ``k`` feeds tree ``k % trees`` as
    its leaf ``k // trees``; the broadcast loads every root that holds a
    pair, tree 0's first); stepped cycle by cycle from the first COMPUTE
    cycle (cycle 0), the PEs seeing the scan's start `fanout` cycles later;
    `fan_in`: the trees' inputs per node. Returns as `first_layer`."""
    n_in = a.shape[0]
    scanning = np.zeros(n_pe, dtype=np.bool_)
    row = np.zeros(n_pe, dtype=np.int64)
    last_row = np.zeros(n_pe, dtype=np.int64)
    r1_valid = np.zeros(n_pe, dtype=np.bool_)
    r1_row = np.zeros(n_pe, dtype=np.int64)
    out_valid = np.zeros(n_pe, dtype=np.bool_)
    out_j = np.zeros(n_pe, dtype=np.int64)
    for k in range(n_pe):
        scanning[k] = k < n_in
        last_row[k] = (n_in - 1 - k) // n_pe if k < n_in else 0
    trees = min(lanes, n_pe)
    n_leaves = np.zeros(trees, dtype=np.int64)     # tree q's leaves: PEs q, q + trees, ...
    for q in range(trees):
        n_leaves[q] = (n_pe - q + trees - 1) // trees
    shapes = [tree_shape(n_leaves[q], fan_in) for q in range(trees)]
    nodes = np.zeros(trees, dtype=np.int64)
    for q in range(trees):
        nodes[q] = shapes[q][0][-1]
    width = nodes.max()
    ov = np.zeros((trees, width), dtype=np.bool_)
    out = np.zeros((trees, width), dtype=np.int64)
    hv = np.zeros((trees, width * fan_in), dtype=np.bool_)
    held = np.zeros((trees, width * fan_in), dtype=np.int64)
    free = np.zeros((trees, width), dtype=np.bool_)
    leaf_valid = np.zeros(n_leaves[0], dtype=np.bool_)
    leaf_j = np.zeros(n_leaves[0], dtype=np.int64)
    leaf_taken = np.zeros(n_leaves[0], dtype=np.bool_)
    taken = np.zeros(n_pe, dtype=np.bool_)
    advance = np.zeros(n_pe, dtype=np.bool_)
    load_out = np.zeros(n_pe, dtype=np.bool_)
    done_at = []            # per cycle: every scanner done (stale, high, before the PEs see the start)
    bc_n, stalls, first, last, n_items, cycle = 0, 0, NEVER, NEVER, 0, 0
    bc_j = np.zeros(trees, dtype=np.int64)     # the broadcast register's pairs, in order
    seen = np.zeros(lanes, dtype=np.int64)
    quiet = False           # registered by the control unit: scanners done, trees idle, broadcast register empty
    while True:
        scanned = cycle >= fanout
        all_done = True
        for k in range(n_pe):
            if scanned:
                j = r1_row[k] * n_pe + k
                value = a[j] if r1_valid[k] and j < n_in else 0
                nonzero = r1_valid[k] and value != 0
                advance[k] = not r1_valid[k] or not nonzero or not out_valid[k]
                load_out[k] = nonzero and not out_valid[k]
                if scanning[k] or r1_valid[k] or out_valid[k]:
                    all_done = False
        done_at.append(all_done)
        ok = room(cycle, reduce, room_delay, threshold, lanes, writes, max_rd, n_items, seen)
        pushing = bc_n > 0 and ok
        if bc_n > 0 and not ok:
            stalls += 1
        # the control unit's exit test, on this cycle's registers
        seen_done = done_at[cycle - reduce] if cycle >= reduce else True
        trees_idle = not ov.any() and not hv.any()
        settled = cycle >= (last + 1 if first != NEVER else 0) + settle
        if quiet and settled and cycle >= last_busy.max() + reduce + 1:
            return first, cycle, stalls
        quiet = seen_done and trees_idle and bc_n == 0
        load = bc_n == 0 or pushing
        if pushing:
            if first == NEVER:
                first = cycle
            last = cycle
            for i in range(bc_n):
                writes[n_items] = cycle + fanout
                max_rd[n_items] = push(cycle + fanout, counts[bc_j[i]], lanes, rd, rd2, cred, col_end, last_busy,
                                       busy, lat)
                n_items += 1
        if load:                            # every root that holds a pair, tree 0's first
            bc_n = 0
            for q in range(trees):
                if ov[q, nodes[q] - 1]:
                    bc_j[bc_n] = out[q, nodes[q] - 1]
                    bc_n += 1
        for k in range(n_pe):
            taken[k] = False
        for q in range(trees):
            n = n_leaves[q]
            for i in range(n):              # before the scan the trees see no offers
                leaf_valid[i] = scanned and out_valid[q + i * trees]
                leaf_j[i] = out_j[q + i * trees]
            starts, lo, hi = shapes[q]
            tree_step(starts, lo, hi, ov[q], out[q], hv[q], held[q], leaf_valid[:n], leaf_j[:n], load, free[q],
                      leaf_taken[:n], fan_in)
            for i in range(n):
                taken[q + i * trees] = leaf_taken[i]
        if scanned:
            for k in range(n_pe):
                if load_out[k]:
                    out_valid[k], out_j[k] = True, r1_row[k] * n_pe + k
                elif taken[k]:
                    out_valid[k] = False
                if advance[k]:
                    r1_valid[k], r1_row[k] = scanning[k], row[k]
                    if scanning[k]:
                        scanning[k] = row[k] != last_row[k]
                        row[k] += 1
        cycle += 1

"""`python -m formal` (`make formal`): every proof, build/formal/report.json."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import harnesses as H
from hw.activation_buffer import ActivationBuffer
from hw.broadcast import InputStage
from hw.output_stage import OutputStage
from hw.pointer_reader import PointerReader

from .runner import FormalToolError, Proof, run

# mode "prove": base case and k-induction (holds for every trace);
# "bmc": every trace of `depth` cycles from reset
PROOFS = [
    Proof("queue_order", H.QueueOrder, "bmc", 14, "activation queue: in order, each pair once, no over/underflow"),
    Proof("stream_rules", H.StreamRules, "bmc", 12,
          "nonzero-tree node: stream rule kept, each input's pairs in order, none dropped or repeated"),
    Proof("flow_control", H.FlowControl, "prove", 10, "broadcast never writes a full queue (2 PEs, slack as built)"),
    Proof("delivery", H.Delivery, "bmc", 12, "broadcast: every activation to every PE once, in order, none lost"),
    Proof("delivery_2lanes", lambda: H.Delivery(H.small(broadcast_width=2, input_width=2)), "bmc", 12,
          "the same with two activations a cycle, alternating between two queues per PE"),
    Proof("matrix_order", H.MatrixOrder, "bmc", 14, "matrix reader issues start..end-1 of each column, in order"),
    Proof("host_ack", H.HostAck, "bmc", 16, "host port: one ack per Wishbone transfer, at read_latency + 2"),
    Proof("scan_hold", lambda: H.StreamHold(lambda: ActivationBuffer(H.small(), 1), "scan"), "prove", 8,
          "PE scan stream (to the nonzero tree) keeps the stream rule", cover_depth=14),
    Proof("column_hold", lambda: H.StreamHold(lambda: PointerReader(H.small()), "col"), "bmc", 12,
          "pointer reader's column stream keeps the stream rule", cover_depth=14),
    Proof("input_order", H.InputOrder, "bmc", 12,
          "input stage: the nonzeros below n_in, each once, in order, with their indices (two a cycle)",
          cover_depth=14),
    # a start restarts the input stage; the control unit gives one only after the last input left
    *(Proof(f"input_hold_{lane}", lambda lane=lane: H.StreamHold(
              lambda: InputStage(H.small(input_width=2, broadcast_width=2)), "out", lane,
              rules=lambda s: [~s.start | s.done]),
            "bmc", 12, f"input stage's lane {lane} (two a cycle) keeps the stream rule", cover_depth=14)
      for lane in (0, 1)),
    Proof("output_hold", lambda: H.StreamHold(lambda: OutputStage(H.small(), fanout=1), "o"), "bmc", 12,
          "output stream keeps the stream rule", cover_depth=14),
    Proof("control_bound", H.ControlBound, "bmc", 60,
          "control unit: done or error within (layers run + 1) x per-layer cycles of a start, any table",
          cover_depth=60),
    # the multiplier makes each step beyond 11 cost minutes to hours for the
    # solver: narrower widths, and a bound that still holds two back-to-back
    # entries on one row, a clear and the read (the cover is reached in 8)
    Proof("forwarding", lambda: H.Forwarding(H.small(act_bits=3, weight_bits=3, acc_bits=6, row_depth=2)), "bmc", 11,
          "accumulator sums equal a stall-free reference"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m formal", description="Run the formal proofs (SymbiYosys).")
    parser.add_argument("names", nargs="*", help=f"proofs to run (default: all): {', '.join(p.name for p in PROOFS)}")
    args = parser.parse_args(argv)
    known = {p.name: p for p in PROOFS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"no proof named {', '.join(unknown)}; the proofs are {', '.join(known)}")
    out = Path("build/formal")
    results = []
    for proof in [known[n] for n in args.names] or PROOFS:
        try:
            r = run(proof, out)
        except FormalToolError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{r.name:16s} {r.mode:5s} depth {r.depth:3d}  {r.status:16s} {r.seconds:6.1f} s  {r.claim}", flush=True)
        results.append(vars(r))
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(out / "report.json")
    return 0 if all(r["status"] == "pass" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

